"""Shared pieces of the complaint tests."""

from __future__ import annotations

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
    data = {"customerId": customer_id, "channel": "PHONE", "summary": "信用卡年费争议",
            "description": "客户称未被告知信用卡年费，要求退还。", **overrides}
    result = (await gql(FILE, {"input": data}, token=token))["fileComplaint"]
    assert result["errors"] == [], result["errors"]
    return result["complaint"]


async def do(gql, token: str, name: str, **input_fields) -> dict:
    mutation = f"{name}Complaint" if name != "extend" else "extendComplaintDeadline"
    return (await gql(move(name), {"input": input_fields}, token=token))[mutation]
