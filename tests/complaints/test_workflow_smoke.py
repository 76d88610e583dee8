from models.staff import Role
from tests.complaints.helpers import do, file
from tests.customers.helpers import create


async def test_a_complaint_from_intake_to_close(gql, admin, staff_factory):
    _, token = admin
    handler, handler_token = await staff_factory(Role.COMPLAINT_HANDLER, department="COMPLAINTS")
    customer = await create(gql, token)
    filed = await file(gql, token, customer["id"])
    assert filed["referenceNo"].startswith("CMP-") and len(filed["referenceNo"]) == 19
    assert (filed["status"], filed["category"], filed["reason"]) == ("RECEIVED", "CREDIT_CARD", "FEES_AND_PRICING")
    assert filed["slaState"] == "ON_TRACK" and filed["events"][0]["type"] == "RECEIVED"
    cid = filed["id"]
    assert (await do(gql, handler_token, "acknowledge", id=cid))["complaint"]["status"] == "ACKNOWLEDGED"
    assigned = (await do(gql, handler_token, "assign", id=cid, department="COMPLAINTS",
                         handlerId=(await gql("{ me { id } }", token=handler_token))["me"]["id"]))["complaint"]
    assert assigned["department"] == "COMPLAINTS" and assigned["handler"]["username"] == handler.username
    started = (await do(gql, handler_token, "start", id=cid))["complaint"]
    resolved = (await do(gql, handler_token, "resolve", id=cid, version=started["version"],
                         resolution="退还年费", compensationAmount="300.00"))["complaint"]
    assert resolved["status"] == "RESOLVED" and resolved["slaState"] == "MET"
    closed = (await do(gql, handler_token, "close", id=cid, customerAccepted=True))["complaint"]
    assert closed["status"] == "CLOSED" and closed["customerAccepted"] is True
    assert [e["type"] for e in closed["events"]] == ["RECEIVED", "ACKNOWLEDGED", "ASSIGNED", "STARTED", "RESOLVED",
                                                     "CLOSED"]
    again = await do(gql, handler_token, "start", id=cid)
    assert again["errors"][0]["code"] == "INVALID_TRANSITION"
