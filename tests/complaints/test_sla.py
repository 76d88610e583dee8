"""The regulatory SLA clock: 15 days, extended to 30 and (approved) 60; slaState over time; the SLA monitor.

services.clock is frozen at T0 for each test (clock.freeze, so "exactly due" is exact) and moved with
clock.travel; the fixture always puts it back.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from models.complaints import ComplaintEvent as ComplaintEventModel
from models.follow_ups import FollowUp
from models.notifications import Notification, NotificationStatus
from models.staff import Role
from services import clock, complaints as complaint_service
from tasks import complaints as complaint_tasks
from tests.complaints.helpers import codes, do, fetch, file, new_customer, pk, staff_gid
from tests.conftest import with_overrides
from tests.jobs.helpers import drain

T0 = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)

LIST = """query($filter: ComplaintFilter, $first: Int) { complaints(filter: $filter, first: $first) {
  totalCount edges { node { id slaState } } } }"""
FOLLOW_UPS = """query($id: ID!) { complaint(id: $id) { escalationLevel version events { type actor { username } }
  followUps { title department priority status complaint { id } customer { id } } } }"""


@pytest.fixture
def settings(settings):
    # Tokens outlive the 60-day trips in time below.
    return with_overrides(settings, token_ttl_minutes=120 * 24 * 60)


@pytest.fixture(autouse=True)
def frozen():
    with clock.freeze(T0):
        yield


@pytest.fixture
async def desk(gql, admin, staff_factory):
    _, admin_token = admin
    handler, token = await staff_factory(Role.COMPLAINT_HANDLER, department="COMPLAINTS")
    customer = await new_customer(gql, admin_token)
    return {"gql": gql, "admin": admin_token, "handler": handler, "token": token, "customer": customer}


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def travel_to(moment: datetime) -> None:
    """Put the (frozen) clock at `moment`."""
    clock.travel(moment - clock.now())


async def listed(gql, token: str, state: str | list[str]) -> list[str]:
    states = [state] if isinstance(state, str) else state
    data = (await gql(LIST, {"filter": {"slaState": states}, "first": 100}, token=token))["complaints"]
    assert data["totalCount"] == len(data["edges"])
    return sorted(e["node"]["id"] for e in data["edges"])


async def events_of(complaint_id: str, event_type: str) -> int:
    return await ComplaintEventModel.filter(complaint_id=pk(complaint_id), type=event_type).count()


# ---------------------------------------------------------------- slaState over time


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (timedelta(0), "ON_TRACK"),
        (11 * DAY, "ON_TRACK"),
        (12 * DAY - timedelta(seconds=1), "ON_TRACK"),  # a hair more than 3 days left
        (12 * DAY, "AT_RISK"),  # exactly 3 days left
        (14 * DAY, "AT_RISK"),
        (15 * DAY - timedelta(seconds=1), "AT_RISK"),
        (15 * DAY, "AT_RISK"),  # exactly due: not yet past due
        (15 * DAY + timedelta(seconds=1), "BREACHED"),
        (16 * DAY, "BREACHED"),
        (45 * DAY, "BREACHED"),
    ],
    ids=lambda v: str(v) if not isinstance(v, timedelta) else f"+{v}",
)
async def test_sla_state_of_an_open_complaint_over_time(desk, offset, expected):
    gql, token = desk["gql"], desk["token"]
    complaint = await file(gql, desk["admin"], desk["customer"]["id"])
    assert at(complaint["receivedAt"]) == T0 and at(complaint["dueAt"]) == T0 + 15 * DAY
    clock.travel(offset)
    assert (await fetch(gql, token, complaint["id"]))["slaState"] == expected
    # The list filter agrees with the field, at the same moment.
    assert await listed(gql, token, expected) == [complaint["id"]]
    others = {"ON_TRACK", "AT_RISK", "BREACHED", "MET", "MISSED"} - {expected}
    assert await listed(gql, token, sorted(others)) == []


async def test_sla_state_walks_day_0_12_15_16(desk):
    gql, token = desk["gql"], desk["token"]
    complaint = await file(gql, desk["admin"], desk["customer"]["id"])
    seen = []
    for day in (0, 12, 15, 16):
        travel_to(T0 + day * DAY)
        seen.append((await fetch(gql, token, complaint["id"]))["slaState"])
    assert seen == ["ON_TRACK", "AT_RISK", "AT_RISK", "BREACHED"]


async def test_due_counts_from_received_at_not_from_filing(desk):
    received = T0 - 13 * DAY
    complaint = await file(desk["gql"], desk["admin"], desk["customer"]["id"], receivedAt=received.isoformat())
    assert at(complaint["dueAt"]) == received + 15 * DAY
    assert complaint["slaState"] == "AT_RISK"
    late = await file(desk["gql"], desk["admin"], desk["customer"]["id"], receivedAt=(T0 - 16 * DAY).isoformat())
    assert late["slaState"] == "BREACHED"


@pytest.mark.parametrize(
    ("resolved_on", "expected"),
    [
        (0 * DAY, "MET"),
        (14 * DAY, "MET"),
        (15 * DAY, "MET"),  # resolved by (at) its due time
        (15 * DAY + timedelta(seconds=1), "MISSED"),
        (16 * DAY, "MISSED"),
    ],
)
async def test_met_or_missed_on_resolution(desk, resolved_on, expected):
    gql, token = desk["gql"], desk["token"]
    complaint = await file(gql, desk["admin"], desk["customer"]["id"])
    started = (
        await do(gql, token, "start", id=(await do(gql, token, "acknowledge", id=complaint["id"]))["complaint"]["id"])
    )["complaint"]
    clock.travel(resolved_on)
    resolved = (await do(gql, token, "resolve", id=started["id"], version=started["version"], resolution="已处理"))[
        "complaint"
    ]
    assert resolved["slaState"] == expected
    clock.travel(30 * DAY)  # time passing after the end changes nothing
    closed = (await do(gql, token, "close", id=started["id"], customerAccepted=True))["complaint"]
    assert closed["slaState"] == expected
    assert await listed(gql, token, expected) == [complaint["id"]]


async def test_a_reopened_complaint_runs_on_the_same_clock(desk):
    gql, token = desk["gql"], desk["token"]
    complaint = await file(gql, desk["admin"], desk["customer"]["id"])
    escalated = (await do(gql, token, "escalate", id=complaint["id"], reason="紧急"))["complaint"]
    resolved = (await do(gql, token, "resolve", id=escalated["id"], version=escalated["version"], resolution="已处理"))[
        "complaint"
    ]
    assert resolved["slaState"] == "MET"
    clock.travel(16 * DAY)
    reopened = (await do(gql, token, "reopen", id=complaint["id"], reason="客户不满意"))["complaint"]
    assert reopened["slaState"] == "BREACHED"  # open again, and past the original due time
    assert reopened["dueAt"] == complaint["dueAt"]


# ---------------------------------------------------------------- extensions


async def test_the_first_extension_moves_due_to_30_days_and_notifies_the_customer(desk):
    gql, token = desk["gql"], desk["token"]
    complaint = await file(gql, desk["admin"], desk["customer"]["id"])
    clock.travel(13 * DAY)
    assert (await fetch(gql, token, complaint["id"]))["slaState"] == "AT_RISK"
    result = await do(gql, token, "extend", id=complaint["id"], reason="需调取监控录像，案情复杂")
    assert result["errors"] == []
    extended = result["complaint"]
    assert at(extended["dueAt"]) == T0 + 30 * DAY
    assert (extended["extensionCount"], extended["slaState"], extended["status"]) == (1, "ON_TRACK", "RECEIVED")
    new = extended["events"][len(complaint["events"]) :]
    assert [e["type"] for e in new] == ["DEADLINE_EXTENDED", "CUSTOMER_NOTIFIED"]
    assert "需调取监控录像" in new[0]["message"] and new[0]["actor"] == {"username": desk["handler"].username}
    assert new[1]["actor"] is None

    [notification] = await Notification.filter(complaint_id=pk(complaint["id"]))
    assert notification.customer_id == pk(desk["customer"]["id"])
    # In the outbox; the embedded worker may have sent it already (delivery: tests/notifications).
    assert notification.status in (NotificationStatus.QUEUED, NotificationStatus.SENT)
    assert notification.channel.value == "SMS" and notification.recipient.endswith("5678")
    assert extended["referenceNo"] in notification.body

    clock.travel(14 * DAY)  # day 27: 3 days left of 30
    assert (await fetch(gql, token, complaint["id"]))["slaState"] == "AT_RISK"
    clock.travel(3 * DAY + timedelta(seconds=1))
    assert (await fetch(gql, token, complaint["id"]))["slaState"] == "BREACHED"


async def test_an_extension_is_measured_from_received_at(desk):
    received = T0 - 10 * DAY
    complaint = await file(desk["gql"], desk["admin"], desk["customer"]["id"], receivedAt=received.isoformat())
    extended = (await do(desk["gql"], desk["token"], "extend", id=complaint["id"], reason="复杂"))["complaint"]
    assert at(extended["dueAt"]) == received + 30 * DAY


async def test_an_extension_notifies_on_the_preferred_email(gql, admin, staff_factory):
    _, admin_token = admin
    _, token = await staff_factory(Role.COMPLAINT_HANDLER)
    customer = await new_customer(gql, admin_token, preferredChannel="EMAIL")
    complaint = await file(gql, admin_token, customer["id"])
    await do(gql, token, "extend", id=complaint["id"], reason="复杂")
    [notification] = await Notification.filter(complaint_id=pk(complaint["id"]))
    assert (notification.channel.value, notification.recipient.lower()) == ("EMAIL", "zhang.wei@example.com")


async def test_an_extension_for_a_customer_without_any_address_still_records_the_duty(gql, admin, staff_factory):
    _, admin_token = admin
    _, token = await staff_factory(Role.COMPLAINT_HANDLER)
    customer = await new_customer(gql, admin_token, phone=None, email=None, address=None)
    complaint = await file(gql, admin_token, customer["id"])
    extended = (await do(gql, token, "extend", id=complaint["id"], reason="复杂"))["complaint"]
    assert extended["extensionCount"] == 1
    assert await Notification.filter(complaint_id=pk(complaint["id"])).count() == 0
    assert extended["events"][-1]["type"] == "CUSTOMER_NOTIFIED"


@pytest.mark.parametrize("approver_role", [Role.MANAGER, Role.ADMIN])
async def test_the_second_extension_needs_a_manager_and_there_is_no_third(desk, staff_factory, approver_role):
    gql, token = desk["gql"], desk["token"]
    complaint = await file(gql, desk["admin"], desk["customer"]["id"])
    first = (await do(gql, token, "extend", id=complaint["id"], reason="复杂"))["complaint"]
    clock.travel(28 * DAY)
    assert (await fetch(gql, token, complaint["id"]))["slaState"] == "AT_RISK"

    def unchanged(after: dict) -> None:
        assert (after["extensionCount"], after["dueAt"], after["version"], after["events"]) == (
            1,
            first["dueAt"],
            first["version"],
            first["events"],
        )

    # The handler cannot make the second extension, with or without somebody else's name on it.
    missing = await do(gql, token, "extend", id=complaint["id"], reason="仍需调查")
    assert codes(missing) == ["FORBIDDEN"] and missing["errors"][0]["field"] == ["approvedById"]
    assert "ADMIN, MANAGER" in missing["errors"][0]["message"]
    unchanged(await fetch(gql, token, complaint["id"]))

    for role in (Role.COMPLAINT_HANDLER, Role.RELATIONSHIP_MANAGER, Role.ANALYST, Role.AUDITOR, approver_role):
        somebody, _ = await staff_factory(role)
        wrong = await do(gql, token, "extend", id=complaint["id"], reason="仍需调查", approvedById=staff_gid(somebody))
        assert codes(wrong) == ["FORBIDDEN"] and wrong["errors"][0]["field"] == ["approvedById"], role
    own = await do(gql, token, "extend", id=complaint["id"], reason="仍需调查", approvedById=staff_gid(desk["handler"]))
    assert codes(own) == ["FORBIDDEN"]
    unchanged(await fetch(gql, token, complaint["id"]))
    assert await Notification.filter(complaint_id=pk(complaint["id"])).count() == 1

    # A MANAGER or ADMIN makes it themselves (naming themselves as the approver, or not at all).
    approver, approver_token = await staff_factory(approver_role)
    second = await do(
        gql, approver_token, "extend", id=complaint["id"], reason="仍需调查", approvedById=staff_gid(approver)
    )
    assert second["errors"] == []
    extended = second["complaint"]
    assert at(extended["dueAt"]) == T0 + 60 * DAY
    assert (extended["extensionCount"], extended["slaState"]) == (2, "ON_TRACK")
    new = extended["events"][len(first["events"]) :]
    assert [e["type"] for e in new] == ["DEADLINE_EXTENDED", "CUSTOMER_NOTIFIED"]
    assert approver.username in new[0]["message"]
    assert await Notification.filter(complaint_id=pk(complaint["id"])).count() == 2

    third = await do(gql, approver_token, "extend", id=complaint["id"], reason="再延一次")
    assert codes(third) == ["LIMIT_EXCEEDED"]
    after = await fetch(gql, token, complaint["id"])
    assert (after["extensionCount"], after["dueAt"], after["version"], len(after["events"])) == (
        2,
        extended["dueAt"],
        extended["version"],
        len(extended["events"]),
    )
    assert await Notification.filter(complaint_id=pk(complaint["id"])).count() == 2

    travel_to(T0 + 57 * DAY)
    assert (await fetch(gql, token, complaint["id"]))["slaState"] == "AT_RISK"
    travel_to(T0 + 60 * DAY + timedelta(seconds=1))
    assert (await fetch(gql, token, complaint["id"]))["slaState"] == "BREACHED"


async def test_an_inactive_manager_cannot_approve(desk, staff_factory):
    from models.staff import Staff

    gql, token = desk["gql"], desk["token"]
    complaint = await file(gql, desk["admin"], desk["customer"]["id"])
    await do(gql, token, "extend", id=complaint["id"], reason="复杂")
    manager, _ = await staff_factory(Role.MANAGER)
    await Staff.filter(id=manager.id).update(active=False)
    result = await do(gql, token, "extend", id=complaint["id"], reason="复杂", approvedById=staff_gid(manager))
    assert codes(result) == ["FORBIDDEN"]
    assert (await fetch(gql, token, complaint["id"]))["extensionCount"] == 1


async def test_a_breached_complaint_extended_is_back_on_track(desk):
    gql, token = desk["gql"], desk["token"]
    complaint = await file(gql, desk["admin"], desk["customer"]["id"])
    clock.travel(16 * DAY)
    assert (await fetch(gql, token, complaint["id"]))["slaState"] == "BREACHED"
    extended = (await do(gql, token, "extend", id=complaint["id"], reason="复杂"))["complaint"]
    assert extended["slaState"] == "ON_TRACK"


# ---------------------------------------------------------------- the SLA monitor


async def _monitored(gql, token, complaint_id: str) -> dict:
    return (await gql(FOLLOW_UPS, {"id": complaint_id}, token=token))["complaint"]


@pytest.mark.parametrize("run", ["service", "actor"])
async def test_the_monitor_run_twice_records_each_event_once(desk, run):
    gql, token = desk["gql"], desk["token"]
    complaint = await file(gql, desk["admin"], desk["customer"]["id"])
    cid = complaint["id"]

    async def monitor():
        if run == "service":
            return await complaint_service.monitor_sla()
        return await complaint_tasks.monitor_complaint_sla()

    await monitor()
    assert await events_of(cid, "SLA_AT_RISK") == 0  # day 0: nothing to say

    clock.travel(12 * DAY)
    first = await monitor()
    second = await monitor()
    if run == "service":
        assert (first.at_risk, first.breached) == ([pk(cid)], [])
        assert (second.at_risk, second.breached) == ([], [])
    assert (await events_of(cid, "SLA_AT_RISK"), await events_of(cid, "SLA_BREACHED")) == (1, 0)
    seen = await _monitored(gql, token, cid)
    assert seen["escalationLevel"] == 0 and seen["followUps"] == []
    assert seen["events"][-1] == {"type": "SLA_AT_RISK", "actor": None}

    clock.travel(4 * DAY)  # day 16
    fresh = await file(gql, desk["admin"], desk["customer"]["id"])  # on track: left alone
    first = await monitor()
    second = await monitor()
    if run == "service":
        assert (first.at_risk, first.breached) == ([], [pk(cid)])
        assert (second.at_risk, second.breached) == ([], [])
    clock.travel(5 * DAY)
    await monitor()
    assert (await events_of(cid, "SLA_AT_RISK"), await events_of(cid, "SLA_BREACHED")) == (1, 1)
    seen = await _monitored(gql, token, cid)
    assert seen["escalationLevel"] == 1
    assert [e["type"] for e in seen["events"]][-2:] == ["SLA_AT_RISK", "SLA_BREACHED"]
    [follow_up] = seen["followUps"]
    assert (follow_up["department"], follow_up["priority"], follow_up["status"]) == ("COMPLAINTS", "URGENT", "OPEN")
    assert follow_up["complaint"] == {"id": cid} and follow_up["customer"] == {"id": desk["customer"]["id"]}
    assert complaint["referenceNo"] in follow_up["title"]
    assert await FollowUp.filter(complaint_id=pk(cid)).count() == 1
    assert await FollowUp.filter(department="COMPLAINTS").count() == 1
    # The complaint filed on day 16 was not touched.
    assert await ComplaintEventModel.filter(complaint_id=pk(fresh["id"])).count() == 1


async def test_the_monitor_through_the_queue_of_the_app(app, desk):
    gql, token = desk["gql"], desk["token"]
    complaint = await file(gql, desk["admin"], desk["customer"]["id"])
    clock.travel(16 * DAY)
    queue = app.runtime.queue
    queue.send("monitor_complaint_sla")
    queue.send("monitor_complaint_sla")
    await drain(queue)  # both runs have finished
    assert await events_of(complaint["id"], "SLA_BREACHED") == 1
    assert await FollowUp.filter(complaint_id=pk(complaint["id"])).count() == 1
    assert (await fetch(gql, token, complaint["id"]))["escalationLevel"] == 1


async def test_a_complaint_already_past_due_is_breached_once_without_an_at_risk_event(desk):
    gql = desk["gql"]
    complaint = await file(gql, desk["admin"], desk["customer"]["id"], receivedAt=(T0 - 20 * DAY).isoformat())
    await asyncio.gather(complaint_service.monitor_sla(), complaint_service.monitor_sla())
    await complaint_service.monitor_sla()
    assert (await events_of(complaint["id"], "SLA_AT_RISK"), await events_of(complaint["id"], "SLA_BREACHED")) == (0, 1)
    assert await FollowUp.filter(complaint_id=pk(complaint["id"])).count() == 1


async def test_the_monitor_leaves_ended_and_extended_complaints_alone(desk):
    gql, token = desk["gql"], desk["token"]
    customer_id = desk["customer"]["id"]
    resolved = await file(gql, desk["admin"], customer_id)
    escalated = (await do(gql, token, "escalate", id=resolved["id"], reason="急"))["complaint"]
    await do(gql, token, "resolve", id=resolved["id"], version=escalated["version"], resolution="已处理")
    withdrawn = await file(gql, desk["admin"], customer_id)
    await do(gql, token, "withdraw", id=withdrawn["id"], reason="撤回")
    extended = await file(gql, desk["admin"], customer_id)
    await do(gql, token, "extend", id=extended["id"], reason="复杂")
    clock.travel(16 * DAY)
    report = await complaint_service.monitor_sla()
    assert (report.at_risk, report.breached) == ([], [])
    assert await FollowUp.all().count() == 0
    clock.travel(11 * DAY)  # day 27: the extended one is at risk now
    report = await complaint_service.monitor_sla()
    assert (report.at_risk, report.breached) == ([pk(extended["id"])], [])


async def test_the_monitor_publishes_to_subscribers(app, desk):
    complaint = await file(desk["gql"], desk["admin"], desk["customer"]["id"])
    pubsub = app.runtime.pubsub
    clock.travel(16 * DAY)
    async with (
        pubsub.subscribe(complaint_service.channel_for(pk(complaint["id"]))) as one,
        pubsub.subscribe(complaint_service.channel_for_all()) as every,
    ):
        await complaint_tasks.monitor_complaint_sla()
        assert await asyncio.wait_for(anext(one), 5) == {"id": pk(complaint["id"])}
        assert await asyncio.wait_for(anext(every), 5) == {"id": pk(complaint["id"])}


async def test_at_exactly_the_due_time_the_monitor_agrees_with_sla_state(desk):
    gql, token = desk["gql"], desk["token"]
    complaint = await file(gql, desk["admin"], desk["customer"]["id"])
    clock.travel(15 * DAY)
    assert (await fetch(gql, token, complaint["id"]))["slaState"] == "AT_RISK"
    report = await complaint_service.monitor_sla()
    assert report.breached == []
    assert await events_of(complaint["id"], "SLA_BREACHED") == 0
    assert await events_of(complaint["id"], "SLA_AT_RISK") == 1


# ---------------------------------------------------------------- the list, filtered by slaState


async def test_complaints_filtered_by_each_sla_state(desk):
    gql, token, admin = desk["gql"], desk["token"], desk["admin"]
    customer_id = desk["customer"]["id"]

    async def filed(days_ago: int) -> dict:
        return await file(gql, admin, customer_id, receivedAt=(T0 - days_ago * DAY).isoformat())

    async def resolved(days_ago: int) -> dict:
        complaint = await filed(days_ago)
        escalated = (await do(gql, token, "escalate", id=complaint["id"], reason="急"))["complaint"]
        return (await do(gql, token, "resolve", id=complaint["id"], version=escalated["version"], resolution="已处理"))[
            "complaint"
        ]

    on_track, at_risk, breached = await filed(0), await filed(13), await filed(20)
    met, missed = await resolved(5), await resolved(20)
    closed_met = await resolved(3)
    await do(gql, token, "close", id=closed_met["id"], customerAccepted=True)
    expected = {
        "ON_TRACK": [on_track],
        "AT_RISK": [at_risk],
        "BREACHED": [breached],
        "MET": [met, closed_met],
        "MISSED": [missed],
    }
    for state, wanted in expected.items():
        assert await listed(gql, token, state) == sorted(c["id"] for c in wanted), state
        for c in wanted:
            assert (await fetch(gql, token, c["id"]))["slaState"] == state
    assert await listed(gql, token, ["AT_RISK", "BREACHED"]) == sorted([at_risk["id"], breached["id"]])
    assert await listed(gql, token, ["ON_TRACK", "AT_RISK", "BREACHED", "MET", "MISSED"]) == sorted(
        c["id"] for c in (on_track, at_risk, breached, met, missed, closed_met)
    )
    # The filter follows the clock.
    clock.travel(3 * DAY)
    assert await listed(gql, token, "BREACHED") == sorted([at_risk["id"], breached["id"]])
