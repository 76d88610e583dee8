"""The bank CRM from Python with `gql`: sign in, import a CSV by multipart upload, follow the job over
graphql-transport-ws. Run: python gql_example.py http://127.0.0.1:8000/graphql USERNAME PASSWORD customers.csv"""

import asyncio
import sys

from gql import Client, FileVar, GraphQLRequest
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

LOGIN = """
    mutation Login($input: LoginInput!) {
      login(input: $input) { token errors { message code } }
    }
"""
IMPORT = """
    mutation Import($input: ImportCustomersInput!) {
      importCustomers(input: $input) { job { id status } errors { field message code } }
    }
"""
PROGRESS = """
    subscription Progress($id: ID!) {
      jobProgress(id: $id) { id status progress processed failed result }
    }
"""


async def import_customers(url: str, username: str, password: str, csv_path: str) -> dict:
    """Signs in, uploads the file, and returns the import job as it finished."""
    async with Client(transport=HTTPXAsyncTransport(url=url)) as session:
        credentials = {"input": {"username": username, "password": password}}
        signed_in = await session.execute(GraphQLRequest(LOGIN, variable_values=credentials))
        if signed_in["login"]["errors"]:
            raise RuntimeError(signed_in["login"]["errors"][0]["message"])
        token = signed_in["login"]["token"]

    headers = {"Authorization": f"Bearer {token}"}
    async with Client(transport=HTTPXAsyncTransport(url=url, headers=headers)) as session:
        # A GraphQL multipart request: gql puts the file in the form and null in the variables.
        upload = {"input": {"file": FileVar(csv_path, content_type="text/csv")}}
        imported = await session.execute(GraphQLRequest(IMPORT, variable_values=upload), upload_files=True)
        if imported["importCustomers"]["errors"]:
            raise RuntimeError(imported["importCustomers"]["errors"][0]["message"])
        job_id = imported["importCustomers"]["job"]["id"]

    # graphql-transport-ws: the token goes in the connection_init payload.
    websocket = WebsocketsTransport(
        url=url.replace("http", "ws", 1),
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload=headers,
    )
    job = None
    async with Client(transport=websocket) as session:
        # The current state first, then each change, until the server completes the subscription.
        async for update in session.subscribe(GraphQLRequest(PROGRESS, variable_values={"id": job_id})):
            job = update["jobProgress"]
            print(f"job {job['id']}: {job['status']} {job['progress']:.0%}", file=sys.stderr)
    return job


if __name__ == "__main__":
    finished = asyncio.run(import_customers(*sys.argv[1:5]))
    print(finished)
    sys.exit(0 if finished["status"] == "SUCCEEDED" else 1)
