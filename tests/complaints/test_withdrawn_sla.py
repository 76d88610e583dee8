"""A WITHDRAWN complaint was never resolved: it has no SLA outcome (never MET or MISSED) and counts in neither
statistic. `slaState` is non-null in the API contract, with no value for "no outcome", so a withdrawn complaint
keeps saying where its clock stood when it was withdrawn: BREACHED if past its due time, else ON_TRACK."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models.complaints import ComplaintStatus
from services import clock, complaint_rules as rules
from tests.complaints.helpers import do, fetch, file, new_customer
from tests.conftest import with_overrides

T0 = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)
LIST = """query($filter: ComplaintFilter) { complaints(filter: $filter, first: 100) { edges { node { id } } } }"""
STATS = """query($period: DateRange!) { complaintStats(period: $period, groupBy: CHANNEL) {
  key count openCount resolvedCount slaMetRate } }"""


@pytest.fixture
def settings(settings):
    return with_overrides(settings, token_ttl_minutes=120 * 24 * 60)  # tokens outlive the trip in time below


@pytest.fixture(autouse=True)
def frozen():
    with clock.freeze(T0):
        yield


@pytest.mark.parametrize("withdrawn_after", [DAY, 14 * DAY, 15 * DAY, 15 * DAY + timedelta(seconds=1), 40 * DAY])
def test_the_rule_gives_a_withdrawn_complaint_no_outcome(withdrawn_after):
    due = T0 + 15 * DAY
    withdrawn_at = T0 + withdrawn_after
    for now in (withdrawn_at, withdrawn_at + 100 * DAY):
        state = rules.sla_state(ComplaintStatus.WITHDRAWN, due, withdrawn_at, now)
        assert state not in ("MET", "MISSED")
        assert state == ("BREACHED" if withdrawn_at > due else "ON_TRACK")


async def _ids(gql, token, state: str) -> set[str]:
    data = (await gql(LIST, {"filter": {"slaState": [state]}}, token=token))["complaints"]
    return {e["node"]["id"] for e in data["edges"]}


async def test_withdrawn_complaints_are_neither_met_nor_missed(gql, admin):
    _, token = admin
    customer = await new_customer(gql, token)

    async def filed(days_ago: int) -> dict:
        return await file(gql, token, customer["id"], receivedAt=(T0 - days_ago * DAY).isoformat())

    in_time, late, resolved = await filed(5), await filed(20), await filed(5)
    for complaint in (in_time, late):
        assert (await do(gql, token, "withdraw", id=complaint["id"], reason="客户撤回"))["errors"] == []
    escalated = (await do(gql, token, "escalate", id=resolved["id"], reason="急"))["complaint"]
    done = await do(gql, token, "resolve", id=resolved["id"], version=escalated["version"], resolution="已处理")
    assert done["errors"] == []

    assert (await fetch(gql, token, in_time["id"]))["slaState"] == "ON_TRACK"
    assert (await fetch(gql, token, late["id"]))["slaState"] == "BREACHED"
    assert (await fetch(gql, token, resolved["id"]))["slaState"] == "MET"
    # The list filter agrees with the field.
    assert await _ids(gql, token, "MET") == {resolved["id"]}
    assert await _ids(gql, token, "MISSED") == set()
    assert await _ids(gql, token, "ON_TRACK") == {in_time["id"]}
    assert await _ids(gql, token, "BREACHED") == {late["id"]}

    # The clock stopped when they were withdrawn: time passing changes nothing.
    clock.travel(30 * DAY)
    assert (await fetch(gql, token, in_time["id"]))["slaState"] == "ON_TRACK"
    assert await _ids(gql, token, "ON_TRACK") == {in_time["id"]}
    assert await _ids(gql, token, "BREACHED") == {late["id"]}

    # Statistics: only the resolved complaint is judged (the late withdrawal is not a miss).
    period = {"from": (T0 - 60 * DAY).isoformat(), "to": (T0 + DAY).isoformat()}
    buckets = (await gql(STATS, {"period": period}, token=token))["complaintStats"]
    assert buckets == [{"key": "PHONE", "count": 3, "openCount": 0, "resolvedCount": 1, "slaMetRate": 1.0}]
