"""The hot paths' SQL statement counts do not grow with the page: every relation a page shows is loaded for the
whole page at once (DataLoaders, first_per_parent), so 50 rows cost what 5 do.

Each scenario runs through HTTP -> GraphQL -> the database at a small and a large page size and must send the
same number of statements (StatementCounter: transactions and the pii_read audit insert included), and no more
than the bound written next to it. A relation resolved row by row (an N+1) makes the large page cost more and
fails here. docs/QUERY_PLANS.md shows what each of these statements costs on 100,000 customers.

Already counted elsewhere, not repeated here: jobs, the audit log and staff lists (tests/core/test_query_counts.py);
a plain customer list with relationship manager, tags, consents and holdings (tests/customers/test_customer_lists.py);
interactions(first:) and notes per listed customer (tests/interactions/test_timeline.py); possibleDuplicates
(tests/security/test_possible_duplicates_queries.py); timeline subjects (tests/complaints/test_timeline_subject.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from models.complaints import (
    Complaint,
    ComplaintCategory,
    ComplaintEvent,
    ComplaintEventType,
    ComplaintReason,
    ComplaintStatus,
)
from models.customers import (
    ChangeEntry,
    Channel,
    Consent,
    ConsentPurpose,
    Customer,
    CustomerKind,
    CustomerTag,
    HoldingStatus,
    ProductHolding,
    ProductType,
)
from models.follow_ups import FollowUp, Priority
from models.interactions import Direction, Interaction, InteractionKind, InteractionStatus
from models.notes import Note
from models.portraits import LifecycleStage, Portrait, ValueTier
from models.staff import Department, Role
from schema.base import to_global_id
from services import clock
from tests.conftest import StatementCounter, make_staff, token_for

HERE, THERE = "北京朝阳支行", "上海浦东支行"
CUSTOMERS_HERE, CUSTOMERS_THERE = 60, 10

# ---------------------------------------------------------------- the scenarios' queries

# A. A branch's customer list as the list screen asks for it.
CUSTOMER_LIST = """query($first: Int, $after: String, $branch: String, $order: CustomerOrder) {
  customers(first: $first, after: $after, filter: {branch: $branch}, orderBy: $order) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id customerNo name phone aum valueTier
      portrait { valueTier churnRisk }
      relationshipManager { username displayName }
      holdings { product balance accountNo status }
      complaints(first: 3) { totalCount edges { node { referenceNo status slaState handler { username } } } }
    } } } }"""

# B. One customer's 360 view.
CUSTOMER_FIELDS_360 = """id customerNo name phone idNumber email address aum valueTier status version tags
  relationshipManager { username }
  consents { purpose granted }
  holdings { product balance accountNo status }
  portrait { valueTier churnRisk churnDrivers lifecycleStage stale }
  timeline(first: $timeline) { totalCount pageInfo { hasNextPage endCursor }
    edges { node { kind at title detail subject { __typename id } } } }
  followUps(first: $followUps) { totalCount edges { node { title status dueAt assignee { username }
    createdBy { username } } } }
  notes { body createdAt author { username } }"""
CUSTOMER_360_NODE = f"""query($id: ID!, $timeline: Int, $followUps: Int) {{
  node(id: $id) {{ ... on Customer {{ {CUSTOMER_FIELDS_360} }} }} }}"""
CUSTOMER_360 = f"""query($id: ID!, $timeline: Int, $followUps: Int) {{
  customer(id: $id) {{ {CUSTOMER_FIELDS_360} }} }}"""

# C. The SLA worklist.
SLA_WORKLIST = """query($first: Int, $after: String, $order: ComplaintOrder) {
  complaints(filter: {slaState: [AT_RISK, BREACHED]}, orderBy: $order, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { referenceNo status slaState dueAt priority summary
      customer { customerNo name phone } handler { username displayName } } } } }"""

# D. The writes of a conversation with a customer.
LOG_INTERACTION = """mutation($input: LogInteractionInput!) { logInteraction(input: $input) {
  interaction { id subject status occurredAt staff { username } customer { id name } }
  errors { field message code } } }"""
UPDATE_CUSTOMER = """mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) {
  customer { id version name phone occupation tags relationshipManager { username } }
  errors { field message code } } }"""


# ---------------------------------------------------------------- data


async def _seed() -> dict:
    """CUSTOMERS_HERE customers in HERE (and a few in THERE), each with relationship manager, holdings, two
    open complaints (one at risk, one breached) with a handler, interactions, follow-ups, notes, tags, consent
    and portrait; and a customer in HERE with a long history (the 360 view)."""
    now = clock.now()
    managers = [await make_staff(Role.RELATIONSHIP_MANAGER, branch=HERE) for _ in range(4)]
    handlers = [await make_staff(Role.COMPLAINT_HANDLER, department=Department.COMPLAINTS) for _ in range(3)]
    await Customer.bulk_create(
        [
            Customer(
                customer_no=f"C{n:010d}",
                kind=CustomerKind.INDIVIDUAL,
                name=f"客户{n}",
                phone=f"1380000{n:04d}",
                email=f"c{n}@example.com",
                branch=HERE if n < CUSTOMERS_HERE else THERE,
                relationship_manager=managers[n % len(managers)],
                aum=Decimal(1000 * (n % 17) + n),
                completeness=(n % 10) / 10,
            )
            for n in range(CUSTOMERS_HERE + CUSTOMERS_THERE)
        ]
    )
    customers = await Customer.all().order_by("id")
    # Distinct update times, so that the UPDATED_AT order is not all ties.
    for i, c in enumerate(customers):
        await Customer.filter(id=c.id).update(updated_at=now - timedelta(minutes=i))
    await _children(customers, managers, handlers, now, per_customer=1)
    rich = await Customer.create(
        customer_no="C9999999999",
        kind=CustomerKind.INDIVIDUAL,
        name="历史客户",
        phone="13912345678",
        branch=HERE,
        relationship_manager=managers[0],
    )
    await _children([rich], managers, handlers, now, per_customer=25)
    return {"managers": managers, "handlers": handlers, "customers": customers, "rich": rich}


async def _children(customers, managers, handlers, now: datetime, per_customer: int) -> None:
    holdings, complaints, interactions, follow_ups, notes, tags, consents, portraits, changes = ([] for _ in range(9))
    for c in customers:
        consents.append(Consent(customer=c, purpose=ConsentPurpose.PROFILING, granted=True, source="test"))
        tags.append(CustomerTag(customer=c, tag=f"tag{c.id % 3}"))
        portraits.append(
            Portrait(
                customer=c,
                value_tier=ValueTier.MASS,
                aum=c.aum,
                debt=Decimal(0),
                product_count=3,
                tenure_months=12,
                interactions_90d=3,
                complaint_count=2,
                open_complaints=2,
                churn_risk=(c.id % 10) / 10,
                lifecycle_stage=LifecycleStage.MATURE,
                computed_at=now,
            )
        )
        for k in range(3 * per_customer):
            product = (ProductType.TIME_DEPOSIT, ProductType.FUND, ProductType.CREDIT_CARD)[k % 3]
            holdings.append(
                ProductHolding(
                    customer=c,
                    account_no=f"6222{c.id:08d}{k:04d}",
                    product=product,
                    balance=Decimal("1000.00") * (k + 1),
                    opened_at=date(2024, 1, 1) + timedelta(days=k),
                    status=HoldingStatus.ACTIVE,
                )
            )
        for k in range(2 * per_customer):
            # One at risk (due within three days), one breached (past due).
            due = now + timedelta(days=1) if k % 2 == 0 else now - timedelta(days=1 + k)
            complaints.append(
                Complaint(
                    reference_no=f"CMP-{c.id:08d}-{k:06d}",
                    customer=c,
                    branch=c.branch,
                    channel=Channel.PHONE,
                    category=ComplaintCategory.CREDIT_CARD,
                    reason=ComplaintReason.FEES_AND_PRICING,
                    priority=Priority.NORMAL,
                    priority_rank=2,
                    status=ComplaintStatus.IN_PROGRESS,
                    summary=f"年费争议 {k}",
                    description="客户称未被告知信用卡年费，电话 13812345678。",
                    received_at=now - timedelta(days=14 + k),
                    due_at=due,
                    department=Department.COMPLAINTS,
                    handler=handlers[(c.id + k) % len(handlers)],
                )
            )
        for k in range(3 * per_customer):
            interactions.append(
                Interaction(
                    customer=c,
                    channel=Channel.PHONE,
                    direction=Direction.INBOUND,
                    kind=InteractionKind.INQUIRY,
                    status=InteractionStatus.OPEN,
                    subject=f"来电 {k}",
                    staff=managers[k % len(managers)],
                    occurred_at=now - timedelta(hours=k + 1),
                )
            )
        for k in range(2 * per_customer):
            follow_ups.append(
                FollowUp(
                    title=f"回访 {k}",
                    customer=c,
                    assignee=managers[k % len(managers)],
                    created_by=managers[(k + 1) % len(managers)],
                    priority=Priority.NORMAL,
                    due_at=now + timedelta(days=k),
                )
            )
        for k in range(per_customer):
            notes.append(Note(customer=c, author=managers[k % len(managers)], body=f"备注 {k}"))
            changes.append(ChangeEntry(customer=c, field="occupation", old_value=None, new_value=f"职业{k}"))
    for model, rows in (
        (Consent, consents),
        (CustomerTag, tags),
        (Portrait, portraits),
        (ProductHolding, holdings),
        (Complaint, complaints),
        (Interaction, interactions),
        (FollowUp, follow_ups),
        (Note, notes),
        (ChangeEntry, changes),
    ):
        await model.bulk_create(rows)
    ids = [c.id for c in customers]
    await ComplaintEvent.bulk_create(
        [
            ComplaintEvent(complaint=complaint, type=ComplaintEventType.RECEIVED, at=complaint.received_at)
            for complaint in await Complaint.filter(customer_id__in=ids)
        ]
    )


@pytest.fixture
async def seeded(app) -> dict:
    return await _seed()


async def _count(gql, token: str, query: str, variables: dict) -> tuple[int, dict, list[str]]:
    with StatementCounter() as counter:
        data = await gql(query, variables, token=token)
    return counter.count, data, counter.statements


async def _flat(gql, token: str, query: str, small: dict, large: dict, bound: int, label: str) -> dict:
    """Runs `query` with `small` and `large` variables: the same number of statements, at most `bound`."""
    await gql(query, small, token=token)  # the caller's session, read once
    n_small, _, sent_small = await _count(gql, token, query, small)
    n_large, data, sent_large = await _count(gql, token, query, large)
    assert n_small == n_large, (label, n_small, n_large, sent_small, sent_large)
    assert n_large <= bound, (label, n_large, sent_large)
    return data


# ---------------------------------------------------------------- A. customer lists


ORDERS = [
    None,  # the default: newest first
    {"field": "AUM", "direction": "DESC"},
    {"field": "AUM", "direction": "ASC"},
    {"field": "NAME", "direction": "ASC"},
    {"field": "CUSTOMER_NO", "direction": "ASC"},
    {"field": "CREATED_AT", "direction": "DESC"},
    {"field": "UPDATED_AT", "direction": "DESC"},
    {"field": "CHURN_RISK", "direction": "DESC"},
    {"field": "COMPLETENESS", "direction": "DESC"},
]
# The customer.pii_read audit entries of a request that showed personal data unmasked: one statement for them all
# (services.audit; SQLite's INSERTs come in two chunks, PostgreSQL's COPY is not seen by the counter).
PII_READ_AUDIT = 2

# session + page + totalCount + portraits + relationship managers + holdings + complaints (first_per_parent: ids,
# then rows) + complaints' totalCount + handlers: 10, + the audit for an unmasked viewer; a later page adds the
# hasPreviousPage check.
CUSTOMER_LIST_BOUND = 10 + PII_READ_AUDIT


@pytest.mark.parametrize("role", [Role.ADMIN, Role.ANALYST, Role.RELATIONSHIP_MANAGER])
async def test_a_customer_list_of_a_branch(gql, seeded, settings, role):
    member = await make_staff(role, branch=HERE)
    token = await token_for(member, settings)
    for order in ORDERS:
        small = {"first": 5, "branch": HERE, "order": order}
        large = {"first": 50, "branch": HERE, "order": order}
        data = await _flat(gql, token, CUSTOMER_LIST, small, large, CUSTOMER_LIST_BOUND, (role, order))
        page = data["customers"]
        assert len(page["edges"]) == 50 and page["totalCount"] == CUSTOMERS_HERE + 1
        for edge in page["edges"]:
            node = edge["node"]
            assert node["portrait"] and node["relationshipManager"] and node["holdings"], node
            assert node["complaints"]["edges"][0]["node"]["handler"] is not None
        # A later page (after: cursor) costs the same as the first, plus the hasPreviousPage check.
        after = {"after": page["pageInfo"]["endCursor"]}
        await _flat(gql, token, CUSTOMER_LIST, {**small, **after}, {**large, **after}, CUSTOMER_LIST_BOUND + 1, order)


# ---------------------------------------------------------------- B. a customer's 360 view

# session + customer + timeline (the page's keys from all 9 sources, the rows of each kind on the page: 1 to 7 here,
# one total count, the complaints behind complaint events when the page shows any) + tags + consents + staff (twice:
# the relationship manager, then the follow-ups' and notes' people) + holdings + portrait + follow-ups (ids, rows,
# count) + notes: 15 to 22, + audit.
CUSTOMER_360_BOUND = 22 + PII_READ_AUDIT


@pytest.mark.parametrize("query", [CUSTOMER_360_NODE, CUSTOMER_360], ids=["node", "customer"])
async def test_b_one_customers_360_view(gql, seeded, admin, query):
    _, token = admin
    rich = to_global_id("Customer", seeded["rich"].id)
    small, large = {"id": rich, "timeline": 5, "followUps": 1}, {"id": rich, "timeline": 20, "followUps": 10}
    data = await _flat(gql, token, query, small, large, CUSTOMER_360_BOUND, "360")
    found = data["node" if query is CUSTOMER_360_NODE else "customer"]
    assert len(found["timeline"]["edges"]) == 20 and len(found["followUps"]["edges"]) == 10
    # A customer with one of each costs what the one with a long history does.
    plain = to_global_id("Customer", seeded["customers"][0].id)
    # A customer with one of each item costs no more (its timeline shows complaint events, whose complaints are
    # fetched for the page at once: the one statement the long history's first page does not need).
    plain_count, _, plain_sent = await _count(gql, token, query, {**large, "id": plain})
    assert plain_count <= CUSTOMER_360_BOUND, (plain_count, plain_sent)


# ---------------------------------------------------------------- C. the SLA worklist

# session + page + totalCount + customers + handlers: 5, + the audit for an unmasked viewer; a later page adds the
# hasPreviousPage check.
SLA_WORKLIST_BOUND = 5 + PII_READ_AUDIT


@pytest.mark.parametrize(
    "role, branch",
    [(Role.COMPLAINT_HANDLER, None), (Role.ADMIN, None), (Role.SERVICE_AGENT, HERE), (Role.ANALYST, None)],
    ids=["handler-unmasked", "admin-unmasked", "agent-masked-branch", "analyst-masked"],
)
async def test_c_complaints_at_risk_or_breached(gql, seeded, settings, role, branch):
    member = await make_staff(role, branch=branch, department=Department.COMPLAINTS)
    token = await token_for(member, settings)
    for order in (None, {"field": "DUE_AT", "direction": "ASC"}, {"field": "PRIORITY", "direction": "DESC"}):
        small, large = {"first": 5, "order": order}, {"first": 50, "order": order}
        data = await _flat(gql, token, SLA_WORKLIST, small, large, SLA_WORKLIST_BOUND, (role, order))
        page = data["complaints"]
        assert len(page["edges"]) == 50
        assert {e["node"]["slaState"] for e in page["edges"]} <= {"AT_RISK", "BREACHED"}
        assert all(e["node"]["customer"] and e["node"]["handler"] for e in page["edges"])
        masked = role in (Role.SERVICE_AGENT, Role.ANALYST)
        assert ("*" in page["edges"][0]["node"]["customer"]["phone"]) == masked
        after = {"after": page["pageInfo"]["endCursor"]}
        await _flat(gql, token, SLA_WORKLIST, {**small, **after}, {**large, **after}, SLA_WORKLIST_BOUND + 1, order)


# ---------------------------------------------------------------- D. writes

# session + customer + insert + portrait marked stale + audit + payload's staff and customer
LOG_INTERACTION_BOUND = 7
# session + customer + manager check + tags read + update + change entries + tags replaced (delete, insert)
# + portrait marked stale + audit + the payload's tags and manager: 13, + the payload's pii_read audit
UPDATE_CUSTOMER_BOUND = 13 + PII_READ_AUDIT


async def test_d_writes_cost_the_same_for_a_customer_with_a_long_history(gql, seeded, settings):
    """A write's statements do not depend on how much the customer has already (holdings, interactions, tags)."""
    manager = seeded["managers"][0]
    token = await token_for(manager, settings)
    plain, rich = seeded["customers"][0], seeded["rich"]
    await gql("{ me { id } }", token=token)  # the caller's session, read once

    async def log(customer: Customer) -> int:
        variables = {
            "input": {
                "customerId": to_global_id("Customer", customer.id),
                "channel": "PHONE",
                "direction": "OUTBOUND",
                "kind": "ADVICE",
                "subject": "产品咨询回电",
                "occurredAt": datetime.now(UTC).isoformat(),
            }
        }
        count, data, sent = await _count(gql, token, LOG_INTERACTION, variables)
        assert data["logInteraction"]["errors"] == [], data
        assert count <= LOG_INTERACTION_BOUND, (count, sent)
        return count

    assert await log(plain) == await log(rich)

    async def update(customer: Customer, occupation: str) -> int:
        version = (await Customer.get(id=customer.id)).version
        variables = {
            "input": {
                "id": to_global_id("Customer", customer.id),
                "version": version,
                "occupation": occupation,
                "tags": ["vip", "new"],
                "relationshipManagerId": to_global_id("Staff", seeded["managers"][1].id),
            }
        }
        count, data, sent = await _count(gql, token, UPDATE_CUSTOMER, variables)
        assert data["updateCustomer"]["errors"] == [], data
        assert count <= UPDATE_CUSTOMER_BOUND, (count, sent)
        return count

    assert await update(plain, "教师") == await update(rich, "教师")
