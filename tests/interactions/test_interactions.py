"""Interactions through HTTP: logging and resolving consultations, bad inputs, roles, filters, scoping, paging."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from models.audit import AuditEntry
from models.customers import Customer
from models.interactions import Interaction
from models.staff import Role
from schema.base import to_global_id
from services import clock
from tests.customers.helpers import create
from tests.interactions.helpers import HERE, THERE, at, audit_of, pk, second_customer

FIELDS = """id channel direction kind status subject content outcome occurredAt durationSeconds resolvedAt createdAt
  customer { id } staff { id username }"""
LOG = f"""mutation($input: LogInteractionInput!) {{ logInteraction(input: $input) {{
  interaction {{ {FIELDS} }} errors {{ field message code }} }} }}"""
RESOLVE = f"""mutation($input: ResolveInteractionInput!) {{ resolveInteraction(input: $input) {{
  interaction {{ {FIELDS} }} errors {{ field message code }} }} }}"""
LIST = """query($filter: InteractionFilter, $first: Int) { interactions(filter: $filter, first: $first) {
  totalCount edges { node { id subject } } } }"""
CUSTOMER_PAGE = """query($id: ID!, $first: Int, $after: String) { customer(id: $id) {
  interactions(first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id subject occurredAt } } } } }"""
NODE = """query($id: ID!) { node(id: $id) { __typename id ... on Interaction { subject customer { id } } } }"""


def iso(moment: datetime) -> str:
    return moment.isoformat()


def entry(customer_id: str, **overrides) -> dict:
    return {
        "customerId": customer_id,
        "channel": "PHONE",
        "direction": "INBOUND",
        "kind": "INQUIRY",
        "subject": "信用卡额度咨询",
        **overrides,
    }


async def log(gql, token: str, customer_id: str, **overrides) -> dict:
    """The logInteraction payload (interaction and errors)."""
    return (await gql(LOG, {"input": entry(customer_id, **overrides)}, token=token))["logInteraction"]


async def logged(gql, token: str, customer_id: str, **overrides) -> dict:
    result = await log(gql, token, customer_id, **overrides)
    assert result["errors"] == [], result["errors"]
    return result["interaction"]


# --- logging ---------------------------------------------------------------------------------------------


async def test_an_inquiry_stays_open_is_logged_by_the_caller_now_and_marks_the_portrait_stale(
    gql, staff_factory, customer
):
    member, token = await staff_factory(Role.RELATIONSHIP_MANAGER)
    # A new customer starts stale (no portrait yet): as if computed since.
    await Customer.filter(id=pk(customer["id"])).update(portrait_stale_since=None)
    before = clock.now()
    made = await logged(gql, token, customer["id"], content="客户询问临时额度", durationSeconds=180)
    after = clock.now()
    assert made["status"] == "OPEN" and made["kind"] == "INQUIRY"
    assert made["outcome"] is None and made["resolvedAt"] is None
    assert (made["subject"], made["content"], made["durationSeconds"]) == ("信用卡额度咨询", "客户询问临时额度", 180)
    assert (made["channel"], made["direction"]) == ("PHONE", "INBOUND")
    assert before <= at(made["occurredAt"]) <= after
    assert made["staff"] == {"id": to_global_id("Staff", member.id), "username": member.username}
    assert made["customer"]["id"] == customer["id"]
    stored = await Interaction.get(id=pk(made["id"]))
    assert stored.staff_id == member.id and stored.customer_id == pk(customer["id"])
    assert before <= stored.occurred_at <= after
    stale = (await Customer.get(id=pk(customer["id"]))).portrait_stale_since
    assert stale is not None and before <= stale <= after
    audit = await audit_of("interaction.log", made["id"])
    assert audit.actor_id == member.id and audit.subject_type == "Interaction"


@pytest.mark.parametrize("kind", ["SERVICE_REQUEST", "ADVICE", "MARKETING", "FOLLOW_UP", "COMPLAINT_INTAKE", "OTHER"])
async def test_other_kinds_are_records_of_something_done_and_are_resolved(gql, admin, customer, kind):
    made = await logged(gql, admin[1], customer["id"], kind=kind, subject="挂失补卡", channel="BRANCH")
    assert made["status"] == "RESOLVED" and made["kind"] == kind
    assert made["resolvedAt"] is not None
    assert (await Interaction.get(id=pk(made["id"]))).status == "RESOLVED"


async def test_an_inquiry_answered_on_the_spot_is_resolved_with_its_outcome(gql, admin, customer):
    made = await logged(gql, admin[1], customer["id"], outcome="  已告知额度调整流程  ")
    assert made["status"] == "RESOLVED" and made["outcome"] == "已告知额度调整流程"
    assert made["resolvedAt"] is not None


async def test_a_past_occurrence_time_is_kept(gql, admin, customer):
    when = (clock.now() - timedelta(days=3)).replace(microsecond=0)
    made = await logged(gql, admin[1], customer["id"], occurredAt=iso(when))
    assert at(made["occurredAt"]) == when
    assert (await Interaction.get(id=pk(made["id"]))).occurred_at == when


async def test_a_service_agent_may_log(gql, staff_factory, customer):
    member, token = await staff_factory(Role.SERVICE_AGENT)
    made = await logged(gql, token, customer["id"])
    assert made["staff"]["username"] == member.username


@pytest.mark.parametrize("role", [Role.ANALYST, Role.AUDITOR, Role.COMPLAINT_HANDLER])
async def test_read_only_roles_may_not_log(gql, staff_factory, customer, role):
    _, token = await staff_factory(role)
    result = await log(gql, token, customer["id"])
    assert result["interaction"] is None
    assert [e["code"] for e in result["errors"]] == ["FORBIDDEN"]
    assert await Interaction.all().count() == 0
    assert await AuditEntry.filter(action="interaction.log.rejected").count() == 1


# --- bad inputs ------------------------------------------------------------------------------------------


async def test_an_unknown_customer_is_not_found(gql, admin, customer):
    for missing in (to_global_id("Customer", pk(customer["id"]) + 1000), to_global_id("Staff", admin[0].id), "garbage"):
        result = await log(gql, admin[1], missing)
        assert result["errors"] == [{"field": ["customerId"], "message": "Customer not found", "code": "NOT_FOUND"}]
    assert await Interaction.all().count() == 0


async def test_a_customer_of_another_branch_is_not_found_for_branch_bound_staff(gql, admin, staff_factory):
    there = await create(gql, admin[1], branch=THERE)
    await Customer.filter(id=pk(there["id"])).update(portrait_stale_since=None)  # as if computed since creation
    _, bound = await staff_factory(Role.RELATIONSHIP_MANAGER, branch=HERE)
    result = await log(gql, bound, there["id"])
    assert [(e["code"], e["field"]) for e in result["errors"]] == [("NOT_FOUND", ["customerId"])]
    assert await Interaction.all().count() == 0
    assert (await Customer.get(id=pk(there["id"]))).portrait_stale_since is None


@pytest.mark.parametrize("subject", ["", "   "])
async def test_an_empty_subject_is_required(gql, admin, customer, subject):
    result = await log(gql, admin[1], customer["id"], subject=subject)
    assert [(e["code"], e["field"]) for e in result["errors"]] == [("REQUIRED", ["subject"])]
    assert await Interaction.all().count() == 0


async def test_a_too_long_subject_is_invalid(gql, admin, customer):
    result = await log(gql, admin[1], customer["id"], subject="x" * 201)
    assert [(e["code"], e["field"]) for e in result["errors"]] == [("INVALID", ["subject"])]


async def test_a_future_occurrence_is_invalid(gql, admin, customer):
    result = await log(gql, admin[1], customer["id"], occurredAt=iso(clock.now() + timedelta(hours=1)))
    assert [(e["code"], e["field"]) for e in result["errors"]] == [("INVALID", ["occurredAt"])]
    assert await Interaction.all().count() == 0


@pytest.mark.parametrize("seconds", [-1, 86_401])
async def test_a_duration_out_of_range_is_invalid(gql, admin, customer, seconds):
    result = await log(gql, admin[1], customer["id"], durationSeconds=seconds)
    assert [(e["code"], e["field"]) for e in result["errors"]] == [("INVALID", ["durationSeconds"])]


@pytest.mark.parametrize("seconds", [0, 86_400])
async def test_durations_at_the_bounds_are_kept(gql, admin, customer, seconds):
    made = await logged(gql, admin[1], customer["id"], durationSeconds=seconds)
    assert made["durationSeconds"] == seconds


async def test_an_erased_customer_takes_no_new_interactions(gql, admin, customer):
    erased = await gql(
        """mutation($input: EraseCustomerInput!) { eraseCustomer(input: $input) { errors { code } } }""",
        {"input": {"id": customer["id"], "reason": "PIPL art. 47 request, ticket 7"}},
        token=admin[1],
    )
    assert erased["eraseCustomer"]["errors"] == []
    result = await log(gql, admin[1], customer["id"])
    assert [(e["code"], e["field"]) for e in result["errors"]] == [("INVALID", ["customerId"])]
    assert await Interaction.all().count() == 0


async def test_a_resolved_inquiry_needs_its_outcome(gql, admin, customer):
    result = await log(gql, admin[1], customer["id"], status="RESOLVED")
    assert [(e["code"], e["field"]) for e in result["errors"]] == [("REQUIRED", ["outcome"])]
    blank = await log(gql, admin[1], customer["id"], status="RESOLVED", outcome="  ")
    assert [(e["code"], e["field"]) for e in blank["errors"]] == [("REQUIRED", ["outcome"])]
    assert await Interaction.all().count() == 0


async def test_an_occurrence_time_without_an_offset_is_a_client_error_not_a_server_error(gql, admin, customer):
    body = (
        await gql.raw(LOG, {"input": entry(customer["id"], occurredAt="2024-05-01T10:00:00")}, token=admin[1])
    ).json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "UTC offset" in body["errors"][0]["message"]


# --- resolving -------------------------------------------------------------------------------------------


async def test_resolving_an_open_consultation_records_its_outcome_once(gql, staff_factory, customer):
    member, token = await staff_factory(Role.SERVICE_AGENT)
    made = await logged(gql, token, customer["id"])
    before = clock.now()
    result = (await gql(RESOLVE, {"input": {"id": made["id"], "outcome": " 已回电说明 "}}, token=token))[
        "resolveInteraction"
    ]
    assert result["errors"] == []
    assert result["interaction"]["status"] == "RESOLVED" and result["interaction"]["outcome"] == "已回电说明"
    assert at(result["interaction"]["resolvedAt"]) >= before
    stored = await Interaction.get(id=pk(made["id"]))
    assert stored.status == "RESOLVED" and stored.outcome == "已回电说明"
    audit = await audit_of("interaction.resolve", made["id"])
    assert audit.actor_id == member.id and audit.subject_type == "Interaction"

    again = (await gql(RESOLVE, {"input": {"id": made["id"], "outcome": "再次"}}, token=token))["resolveInteraction"]
    assert again["interaction"] is None
    assert [(e["code"], e["field"]) for e in again["errors"]] == [("INVALID_TRANSITION", ["id"])]
    assert (await Interaction.get(id=pk(made["id"]))).outcome == "已回电说明"


async def test_a_non_inquiry_record_is_resolved_already(gql, admin, customer):
    made = await logged(gql, admin[1], customer["id"], kind="SERVICE_REQUEST")
    result = (await gql(RESOLVE, {"input": {"id": made["id"], "outcome": "x"}}, token=admin[1]))["resolveInteraction"]
    assert [e["code"] for e in result["errors"]] == ["INVALID_TRANSITION"]


@pytest.mark.parametrize("outcome", ["", "   "])
async def test_resolving_needs_an_outcome(gql, admin, customer, outcome):
    made = await logged(gql, admin[1], customer["id"])
    result = (await gql(RESOLVE, {"input": {"id": made["id"], "outcome": outcome}}, token=admin[1]))[
        "resolveInteraction"
    ]
    assert [(e["code"], e["field"]) for e in result["errors"]] == [("REQUIRED", ["outcome"])]
    assert (await Interaction.get(id=pk(made["id"]))).status == "OPEN"


async def test_resolving_an_unknown_or_hidden_interaction_is_not_found(gql, admin, staff_factory):
    there = await create(gql, admin[1], branch=THERE)
    made = await logged(gql, admin[1], there["id"])
    _, bound = await staff_factory(Role.SERVICE_AGENT, branch=HERE)
    for target, token in (
        (made["id"], bound),
        (to_global_id("Interaction", pk(made["id"]) + 1000), admin[1]),
        (there["id"], admin[1]),
    ):
        result = (await gql(RESOLVE, {"input": {"id": target, "outcome": "答复"}}, token=token))["resolveInteraction"]
        assert [(e["code"], e["field"]) for e in result["errors"]] == [("NOT_FOUND", ["id"])], target
    assert (await Interaction.get(id=pk(made["id"]))).status == "OPEN"


@pytest.mark.parametrize("role", [Role.ANALYST, Role.AUDITOR, Role.COMPLAINT_HANDLER])
async def test_read_only_roles_may_not_resolve(gql, admin, staff_factory, customer, role):
    made = await logged(gql, admin[1], customer["id"])
    _, token = await staff_factory(role)
    result = (await gql(RESOLVE, {"input": {"id": made["id"], "outcome": "答复"}}, token=token))["resolveInteraction"]
    assert [e["code"] for e in result["errors"]] == ["FORBIDDEN"]
    assert (await Interaction.get(id=pk(made["id"]))).status == "OPEN"


# --- the list and its filters ----------------------------------------------------------------------------


@pytest.fixture
async def seeded(gql, admin, staff_factory):
    """Five interactions, each filter below picking a different known subset of them."""
    token = admin[1]
    c1 = await create(gql, token, branch=HERE)
    c2 = await second_customer(gql, token, branch=THERE)
    s1, t1 = await staff_factory(Role.RELATIONSHIP_MANAGER)
    s2, t2 = await staff_factory(Role.SERVICE_AGENT)
    base = (clock.now() - timedelta(days=10)).replace(microsecond=0)
    days = {n: base + timedelta(days=n) for n in range(1, 6)}
    rows = [
        (t1, c1, dict(channel="PHONE", kind="INQUIRY", subject="信用卡额度咨询", content="客户询问临时额度")),
        (t2, c1, dict(channel="BRANCH", kind="SERVICE_REQUEST", subject="挂失补卡", content="Lost debit card")),
        (t1, c2, dict(channel="WECHAT", kind="ADVICE", subject="理财建议", content="推荐稳健型基金")),
        (t2, c2, dict(channel="PHONE", kind="INQUIRY", subject="Mortgage rate question", outcome="LPR 4.2%")),
        (t1, c1, dict(channel="EMAIL", kind="MARKETING", subject="新年活动邀请", direction="OUTBOUND")),
    ]
    made = {}
    for n in (3, 1, 5, 2, 4):  # logged out of order: the list sorts by occurredAt, not by when logged
        tok, cust, fields = rows[n - 1]
        made[n] = await logged(gql, tok, cust["id"], occurredAt=iso(days[n]), **fields)
    return {"c1": c1, "c2": c2, "s1": s1, "s2": s2, "days": days, "made": made, "token": token}


async def subjects(gql, token: str, filter_: dict | None) -> list[str]:
    data = (await gql(LIST, {"filter": filter_}, token=token))["interactions"]
    found = [e["node"]["subject"] for e in data["edges"]]
    assert data["totalCount"] == len(found)
    return found


SUBJECTS = {1: "信用卡额度咨询", 2: "挂失补卡", 3: "理财建议", 4: "Mortgage rate question", 5: "新年活动邀请"}


def named(*numbers: int) -> set[str]:
    return {SUBJECTS[n] for n in numbers}


async def test_the_list_is_newest_first_without_a_filter(gql, seeded):
    assert await subjects(gql, seeded["token"], None) == [SUBJECTS[n] for n in (5, 4, 3, 2, 1)]
    assert await subjects(gql, seeded["token"], {}) == [SUBJECTS[n] for n in (5, 4, 3, 2, 1)]


async def test_filter_by_customer(gql, seeded):
    token = seeded["token"]
    assert set(await subjects(gql, token, {"customerId": seeded["c1"]["id"]})) == named(1, 2, 5)
    assert set(await subjects(gql, token, {"customerId": seeded["c2"]["id"]})) == named(3, 4)


async def test_filter_by_staff(gql, seeded):
    token = seeded["token"]
    assert set(await subjects(gql, token, {"staffId": to_global_id("Staff", seeded["s1"].id)})) == named(1, 3, 5)
    assert set(await subjects(gql, token, {"staffId": to_global_id("Staff", seeded["s2"].id)})) == named(2, 4)


async def test_filter_by_channel(gql, seeded):
    token = seeded["token"]
    assert set(await subjects(gql, token, {"channel": ["PHONE"]})) == named(1, 4)
    assert set(await subjects(gql, token, {"channel": ["WECHAT", "EMAIL"]})) == named(3, 5)
    assert await subjects(gql, token, {"channel": ["VIDEO"]}) == []


async def test_filter_by_kind(gql, seeded):
    token = seeded["token"]
    assert set(await subjects(gql, token, {"kind": ["INQUIRY"]})) == named(1, 4)
    assert set(await subjects(gql, token, {"kind": ["SERVICE_REQUEST", "MARKETING"]})) == named(2, 5)


async def test_filter_by_status(gql, seeded):
    token = seeded["token"]
    assert set(await subjects(gql, token, {"status": "OPEN"})) == named(1)
    assert set(await subjects(gql, token, {"status": "RESOLVED"})) == named(2, 3, 4, 5)


async def test_filter_by_occurrence_time(gql, seeded):
    token, days = seeded["token"], seeded["days"]
    assert set(await subjects(gql, token, {"occurredAfter": iso(days[3])})) == named(3, 4, 5)  # inclusive
    assert set(await subjects(gql, token, {"occurredBefore": iso(days[3])})) == named(1, 2)  # exclusive
    assert set(
        await subjects(gql, token, {"occurredAfter": iso(days[2] - timedelta(hours=1)), "occurredBefore": iso(days[4])})
    ) == named(2, 3)


async def test_filter_by_occurrence_time_in_beijing_time(gql, seeded):
    # The same instants as above, written with a +08:00 offset as a client in China would.
    token, days = seeded["token"], seeded["days"]
    beijing = timezone(timedelta(hours=8))
    assert set(await subjects(gql, token, {"occurredAfter": iso(days[3].astimezone(beijing))})) == named(3, 4, 5)
    assert set(await subjects(gql, token, {"occurredBefore": iso(days[3].astimezone(beijing))})) == named(1, 2)


async def test_search_over_subject_and_content(gql, seeded):
    token = seeded["token"]
    assert set(await subjects(gql, token, {"search": "卡"})) == named(1, 2)  # subjects
    assert set(await subjects(gql, token, {"search": "基金"})) == named(3)  # content only
    assert set(await subjects(gql, token, {"search": "debit"})) == named(2)  # content, another row
    assert set(await subjects(gql, token, {"search": "  mortgage "})) == named(4)  # trimmed, any case
    assert set(await subjects(gql, token, {"search": "LPR"})) == set()  # the outcome is not searched
    assert set(await subjects(gql, token, {"search": "   "})) == named(1, 2, 3, 4, 5)
    assert set(await subjects(gql, token, {"search": "%"})) == set()  # LIKE wildcards are taken literally
    assert set(await subjects(gql, token, {"search": "_"})) == set()


async def test_filters_combine(gql, seeded):
    token = seeded["token"]
    assert set(await subjects(gql, token, {"customerId": seeded["c1"]["id"], "status": "RESOLVED"})) == named(2, 5)
    assert set(
        await subjects(gql, token, {"channel": ["PHONE"], "staffId": to_global_id("Staff", seeded["s2"].id)})
    ) == named(4)


async def test_filter_ids_of_the_wrong_type_are_not_found(gql, seeded):
    errors = await gql.errors(
        LIST, {"filter": {"customerId": to_global_id("Staff", seeded["s1"].id)}}, token=seeded["token"]
    )
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("role", list(Role))
async def test_every_role_may_read_the_list(gql, staff_factory, seeded, role):
    _, token = await staff_factory(role)
    assert len(await subjects(gql, token, None)) == 5


async def test_the_list_needs_a_token(gql, seeded):
    errors = await gql.errors(LIST, {})
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


# --- branch scoping --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.RELATIONSHIP_MANAGER, Role.SERVICE_AGENT])
async def test_branch_bound_staff_see_only_interactions_of_their_branch(gql, staff_factory, seeded, role):
    _, bound = await staff_factory(role, branch=HERE)
    assert set(await subjects(gql, bound, None)) == named(1, 2, 5)
    assert await subjects(gql, bound, {"customerId": seeded["c2"]["id"]}) == []
    assert await subjects(gql, bound, {"search": "理财"}) == []
    hidden, shown = seeded["made"][3], seeded["made"][1]
    assert (await gql(NODE, {"id": hidden["id"]}, token=bound))["node"] is None
    node = (await gql(NODE, {"id": shown["id"]}, token=bound))["node"]
    assert node == {
        "__typename": "Interaction",
        "id": shown["id"],
        "subject": SUBJECTS[1],
        "customer": {"id": seeded["c1"]["id"]},
    }
    nodes = await gql(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": [shown["id"], hidden["id"]]}, token=bound
    )
    assert nodes["nodes"] == [{"id": shown["id"]}, None]


async def test_bank_wide_staff_see_every_branch(gql, staff_factory, seeded):
    _, wide = await staff_factory(Role.RELATIONSHIP_MANAGER)
    assert len(await subjects(gql, wide, None)) == 5
    assert (await gql(NODE, {"id": seeded["made"][3]["id"]}, token=wide))["node"]["subject"] == SUBJECTS[3]


# --- a customer's interactions ---------------------------------------------------------------------------


async def test_customer_interactions_page_newest_first(gql, admin, customer):
    token = admin[1]
    other = await second_customer(gql, token)
    base = (clock.now() - timedelta(days=1)).replace(microsecond=0)
    offsets = [5, 1, 9, 3, 3, 7, 0]  # minutes; two share a time (then the later logged comes first)
    for i, minutes in enumerate(offsets):
        await logged(gql, token, customer["id"], subject=f"call {i}", occurredAt=iso(base + timedelta(minutes=minutes)))
    await logged(gql, token, other["id"], subject="someone else", occurredAt=iso(base + timedelta(minutes=8)))
    expected = ["call 2", "call 5", "call 0", "call 4", "call 3", "call 1", "call 6"]

    seen, after, pages = [], None, 0
    while True:
        data = (await gql(CUSTOMER_PAGE, {"id": customer["id"], "first": 3, "after": after}, token=token))["customer"][
            "interactions"
        ]
        assert data["totalCount"] == 7
        seen += [e["node"]["subject"] for e in data["edges"]]
        pages += 1
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
        assert after == data["edges"][-1]["cursor"]
    assert seen == expected and pages == 3
    everything = (await gql(CUSTOMER_PAGE, {"id": customer["id"]}, token=token))["customer"]["interactions"]
    assert [e["node"]["subject"] for e in everything["edges"]] == expected
    assert everything["pageInfo"]["hasNextPage"] is False


async def test_times_given_in_beijing_time_sort_by_instant(gql, admin, customer):
    beijing = timezone(timedelta(hours=8))
    base = (clock.now() - timedelta(days=1)).replace(microsecond=0)
    await logged(gql, admin[1], customer["id"], subject="earlier", occurredAt=iso(base.astimezone(beijing)))
    await logged(gql, admin[1], customer["id"], subject="later", occurredAt=iso(base + timedelta(hours=4)))
    assert await subjects(gql, admin[1], None) == ["later", "earlier"]
    page = (await gql(CUSTOMER_PAGE, {"id": customer["id"]}, token=admin[1]))["customer"]["interactions"]
    assert [e["node"]["subject"] for e in page["edges"]] == ["later", "earlier"]
