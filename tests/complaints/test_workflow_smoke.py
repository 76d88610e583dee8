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
    assigned = (
        await do(
            gql,
            handler_token,
            "assign",
            id=cid,
            department="COMPLAINTS",
            handlerId=(await gql("{ me { id } }", token=handler_token))["me"]["id"],
        )
    )["complaint"]
    assert assigned["department"] == "COMPLAINTS" and assigned["handler"]["username"] == handler.username
    started = (await do(gql, handler_token, "start", id=cid))["complaint"]
    resolved = (
        await do(
            gql,
            handler_token,
            "resolve",
            id=cid,
            version=started["version"],
            resolution="退还年费",
            compensationAmount="300.00",
        )
    )["complaint"]
    assert resolved["status"] == "RESOLVED" and resolved["slaState"] == "MET"
    closed = (await do(gql, handler_token, "close", id=cid, customerAccepted=True))["complaint"]
    assert closed["status"] == "CLOSED" and closed["customerAccepted"] is True
    assert [e["type"] for e in closed["events"]] == [
        "RECEIVED",
        "ACKNOWLEDGED",
        "ASSIGNED",
        "STARTED",
        "RESOLVED",
        "CLOSED",
    ]
    again = await do(gql, handler_token, "start", id=cid)
    assert again["errors"][0]["code"] == "INVALID_TRANSITION"


async def test_statistics_and_the_report_through_the_api(gql, client, admin, staff_factory):
    from datetime import timedelta

    from services import clock
    from tests.jobs.helpers import wait_for_job

    _, token = admin
    customer = await create(gql, token)
    await file(gql, token, customer["id"])
    await file(gql, token, customer["id"], summary="手机银行闪退", description="app crashes on login")
    _, analyst = await staff_factory(Role.ANALYST)
    period = {
        "from": (clock.now() - timedelta(days=1)).isoformat(),
        "to": (clock.now() + timedelta(days=1)).isoformat(),
    }
    stats = await gql(
        """query($p: DateRange!) { complaintStats(period: $p, groupBy: CATEGORY) {
        key count openCount resolvedCount slaMetRate compensationTotal } }""",
        {"p": period},
        token=analyst,
    )
    assert {b["key"]: b["count"] for b in stats["complaintStats"]} == {"CREDIT_CARD": 1, "E_BANKING": 1}
    _, agent = await staff_factory(Role.SERVICE_AGENT)
    denied = await gql.errors(
        """query($p: DateRange!) { complaintStats(period: $p, groupBy: DAY) { key } }""", {"p": period}, token=agent
    )
    assert denied[0]["extensions"]["code"] == "FORBIDDEN"
    report = (
        await gql(
            """mutation($p: DateRange!) { exportComplaintReport(input: {period: $p}) {
        job { id status } errors { code } } }""",
            {"p": period},
            token=analyst,
        )
    )["exportComplaintReport"]
    assert report["errors"] == []
    job = await wait_for_job(gql, analyst, report["job"]["id"])
    assert job["status"] == "SUCCEEDED" and job["result"]["rows"] >= 2
    download = await client.get(job["result"]["downloadPath"], headers={"Authorization": f"Bearer {analyst}"})
    assert download.status_code == 200
    assert "信用卡" in download.text and "电子银行" in download.text
