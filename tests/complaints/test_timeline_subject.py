"""A customer's timeline links each COMPLAINT_EVENT item to its complaint (TimelineItem.subject), fetched for the
whole page at once."""

from __future__ import annotations

from tests.complaints.helpers import do, file, new_customer
from tests.conftest import QueryCounter

TIMELINE = """query($id: ID!) { customer(id: $id) { timeline(first: 100) { totalCount edges { node {
  kind title subject { __typename id ... on Complaint { referenceNo status } } } } } } }"""


async def _timeline(gql, token: str, customer_id: str) -> list[dict]:
    data = (await gql(TIMELINE, {"id": customer_id}, token=token))["customer"]["timeline"]
    return [e["node"] for e in data["edges"]]


async def test_complaint_events_have_their_complaint_as_subject(gql, admin):
    _, token = admin
    customer = await new_customer(gql, token)
    first = await file(gql, token, customer["id"])
    second = await file(gql, token, customer["id"], summary="手机银行闪退", description="无法登录")
    await do(gql, token, "acknowledge", id=first["id"])
    await do(gql, token, "extend", id=first["id"], reason="案情复杂")  # + CUSTOMER_NOTIFIED
    await do(gql, token, "withdraw", id=second["id"], reason="客户撤回")

    items = await _timeline(gql, token, customer["id"])
    events = [i for i in items if i["kind"] == "COMPLAINT_EVENT"]
    assert len(events) == 6  # RECEIVED x2, ACKNOWLEDGED, DEADLINE_EXTENDED, CUSTOMER_NOTIFIED, WITHDRAWN
    assert all(e["subject"] is not None and e["subject"]["__typename"] == "Complaint" for e in events)
    by_complaint = {}
    for event in events:
        by_complaint.setdefault(event["subject"]["id"], []).append(event["title"])
    assert sorted(by_complaint) == sorted([first["id"], second["id"]])
    assert len(by_complaint[first["id"]]) == 4 and len(by_complaint[second["id"]]) == 2
    assert "Complaint withdrawn" in by_complaint[second["id"]]
    subjects = {e["subject"]["id"]: e["subject"] for e in events}
    assert subjects[first["id"]] == {
        "__typename": "Complaint",
        "id": first["id"],
        "referenceNo": first["referenceNo"],
        "status": "ACKNOWLEDGED",
    }
    assert subjects[second["id"]]["status"] == "WITHDRAWN"
    # The COMPLAINT items themselves still show the complaint.
    assert {i["subject"]["id"] for i in items if i["kind"] == "COMPLAINT"} == {first["id"], second["id"]}


async def test_the_subjects_cost_one_statement_whatever_the_number_of_complaints(gql, admin):
    _, token = admin
    few, many = await new_customer(gql, token), await new_customer(gql, token)
    complaint = await file(gql, token, few["id"])
    await do(gql, token, "acknowledge", id=complaint["id"])
    for _ in range(8):
        complaint = await file(gql, token, many["id"])
        await do(gql, token, "acknowledge", id=complaint["id"])

    counts = []
    for customer in (few, many):
        with QueryCounter() as counter:
            items = await _timeline(gql, token, customer["id"])
        assert all(i["subject"] for i in items if i["kind"] == "COMPLAINT_EVENT")
        counts.append(counter.count)
    assert len([i for i in items if i["kind"] == "COMPLAINT_EVENT"]) == 16
    assert counts[0] == counts[1], counts
