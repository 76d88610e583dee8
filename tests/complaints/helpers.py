"""Shared pieces of the complaint tests."""

from __future__ import annotations

import itertools

from schema.base import from_global_id, to_global_id
from tests.customers.helpers import create, resident_id

COMPLAINT_FIELDS = """id referenceNo status category reason suggestedCategory suggestedReason priority dueAt
  extensionCount slaState escalationLevel department handler { username } version resolution
  compensationAmount customerAccepted receivedAt resolvedAt closedAt
  events { type fromStatus toStatus actor { username } message }"""

FILE = f"""mutation($input: FileComplaintInput!) {{ fileComplaint(input: $input) {{
  complaint {{ {COMPLAINT_FIELDS} }} errors {{ field message code }} }} }}"""


def move(name: str) -> str:
    """The mutation for one workflow move, e.g. move("acknowledge")."""
    mutation = f"{name}Complaint" if name != "extend" else "extendComplaintDeadline"
    type_name = mutation[0].upper() + mutation[1:]
    return f"""mutation($input: {type_name}Input!) {{ {mutation}(input: $input) {{
      complaint {{ {COMPLAINT_FIELDS} }} errors {{ field message code }} }} }}"""


async def file(gql, token: str, customer_id: str, **overrides) -> dict:
    data = {
        "customerId": customer_id,
        "channel": "PHONE",
        "summary": "信用卡年费争议",
        "description": "客户称未被告知信用卡年费，要求退还。",
        **overrides,
    }
    result = (await gql(FILE, {"input": data}, token=token))["fileComplaint"]
    assert result["errors"] == [], result["errors"]
    return result["complaint"]


async def do(gql, token: str, name: str, **input_fields) -> dict:
    mutation = f"{name}Complaint" if name != "extend" else "extendComplaintDeadline"
    return (await gql(move(name), {"input": input_fields}, token=token))[mutation]


# ---------------------------------------------------------------- added for the transition, SLA, intake and
# subscription tests

_sequence = itertools.count()

GET = f"""query($id: ID!) {{ complaint(id: $id) {{ {COMPLAINT_FIELDS} }} }}"""


async def new_customer(gql, token: str, **overrides) -> dict:
    """A customer with its own resident ID (the default one may exist only once)."""
    n = 200 + next(_sequence) % 800  # never the default resident ID's sequence, 123
    return await create(gql, token, idNumber=resident_id(sequence=f"{n:03d}"), **overrides)


async def file_raw(gql, token: str, customer_id: str, **overrides) -> dict:
    """The fileComplaint payload, errors included."""
    data = {
        "customerId": customer_id,
        "channel": "PHONE",
        "summary": "信用卡年费争议",
        "description": "客户称未被告知信用卡年费，要求退还。",
        **overrides,
    }
    return (await gql(FILE, {"input": data}, token=token))["fileComplaint"]


async def fetch(gql, token: str, complaint_id: str) -> dict | None:
    return (await gql(GET, {"id": complaint_id}, token=token))["complaint"]


def pk(global_id: str) -> int:
    return int(from_global_id(global_id)[1])


def staff_gid(member) -> str:
    return to_global_id("Staff", member.id)


def codes(payload: dict) -> list[str]:
    return [e["code"] for e in payload["errors"]]
