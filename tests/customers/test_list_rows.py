"""A customers page reads its holdings, first complaints and portraits as plain rows (schema/loaders.Row), not as
model instances, and answers exactly what the paths that still hand the same GraphQL types model instances answer:
`node(id:)` of each holding and complaint, and the single customer (`customer(id:)`, `node(id:)`)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import pytest
from tortoise.models import Model

from models.complaints import Complaint, ComplaintCategory, ComplaintReason, ComplaintStatus
from models.customers import Channel, Customer, CustomerKind, HoldingStatus, ProductHolding, ProductType
from models.follow_ups import Priority
from models.portraits import LifecycleStage, Portrait, ValueTier
from models.staff import Department, Role
from schema import loaders
from services import clock
from tests.conftest import make_staff, token_for

BRANCH = "北京朝阳支行"

HOLDING_FIELDS = "id product balance currency openedAt closedAt status accountNo customer { id }"
COMPLAINT_FIELDS = """id referenceNo channel category reason suggestedCategory suggestedReason priority status
  amountInDispute receivedAt acknowledgedAt dueAt extensionCount slaState escalationLevel department
  compensationAmount customerAccepted resolvedAt closedAt version createdAt updatedAt summary description resolution
  customer { id } handler { username } events { type } notes { body } followUps { title }"""
PORTRAIT_FIELDS = """valueTier aum debt productCount productTypes tenureMonths interactions90d lastContactAt
  complaintCount openComplaints avgCsat npsCategory churnRisk churnDrivers lifecycleStage tags computedAt stale
  nextBestProducts { product score reason } customer { id }"""
CUSTOMER_FIELDS = f"""id name phone
  holdings {{ {HOLDING_FIELDS} }}
  complaints(first: 3) {{ totalCount pageInfo {{ hasNextPage endCursor }}
    edges {{ cursor node {{ {COMPLAINT_FIELDS} }} }} }}
  portrait {{ {PORTRAIT_FIELDS} }}"""
PAGE = f"""query($branch: String!) {{
  customers(first: 10, filter: {{branch: $branch}}, orderBy: {{field: AUM, direction: DESC}}) {{
    edges {{ node {{ {CUSTOMER_FIELDS} }} }} }} }}"""
ONE = f"""query($id: ID!) {{ customer(id: $id) {{ {CUSTOMER_FIELDS} }} }}"""
NODE = f"""query($id: ID!) {{ node(id: $id) {{ ... on Customer {{ {CUSTOMER_FIELDS} }} }} }}"""
HOLDING_NODES = f"""query($ids: [ID!]!) {{ nodes(ids: $ids) {{ ... on ProductHolding {{ {HOLDING_FIELDS} }} }} }}"""
COMPLAINT_NODES = f"""query($ids: [ID!]!) {{ nodes(ids: $ids) {{ ... on Complaint {{ {COMPLAINT_FIELDS} }} }} }}"""
COMPLAINTS_AFTER = f"""query($id: ID!, $after: String!) {{ customer(id: $id) {{
  complaints(first: 3, after: $after) {{ edges {{ node {{ {COMPLAINT_FIELDS} }} }} }} }} }}"""


@pytest.fixture
async def seeded(app) -> list[Customer]:
    """Customers in BRANCH with holdings (open and closed), complaints in every state that changes what a field
    answers (resolved, withdrawn, overdue, at risk; with and without amounts and texts holding a phone number) and
    portraits (one customer without any)."""
    now = clock.now()
    handler = await make_staff(Role.COMPLAINT_HANDLER, department=Department.COMPLAINTS)
    manager = await make_staff(Role.RELATIONSHIP_MANAGER, branch=BRANCH)
    customers = [
        await Customer.create(
            customer_no=f"C{n:010d}",
            kind=CustomerKind.INDIVIDUAL,
            name=f"客户{n}",
            phone=f"1380000{n:04d}",
            branch=BRANCH,
            relationship_manager=manager,
            aum=Decimal(1000 * n + 7),
            portrait_stale_since=now if n % 2 else None,
        )
        for n in range(6)
    ]
    statuses = [
        ComplaintStatus.RECEIVED,
        ComplaintStatus.IN_PROGRESS,
        ComplaintStatus.RESOLVED,
        ComplaintStatus.WITHDRAWN,
        ComplaintStatus.CLOSED,
    ]
    for n, c in enumerate(customers):
        for k in range(n % 4 + 1):
            await ProductHolding.create(
                customer=c,
                account_no=f"6222{c.id:08d}{k:04d}",
                product=list(ProductType)[(n + k) % len(ProductType)],
                balance=Decimal("1234.50") * (k + 1),
                currency="CNY" if k % 2 == 0 else "USD",
                opened_at=date(2020, 1, 1) + timedelta(days=30 * k),
                closed_at=date(2024, 6, 1) if k == 2 else None,
                status=HoldingStatus.CLOSED if k == 2 else HoldingStatus.ACTIVE,
            )
        for k in range(n % 5):  # up to 4: more than a first page of 3
            status = statuses[(n + k) % len(statuses)]
            received = now - timedelta(days=20 - k)
            ended = status in (ComplaintStatus.RESOLVED, ComplaintStatus.CLOSED)
            await Complaint.create(
                reference_no=f"CMP-{c.id:08d}-{k:06d}",
                customer=c,
                branch=BRANCH,
                channel=Channel.PHONE,
                category=ComplaintCategory.CREDIT_CARD,
                reason=ComplaintReason.FEES_AND_PRICING,
                suggested_category=ComplaintCategory.CREDIT_CARD if k % 2 else None,
                priority=Priority.NORMAL,
                priority_rank=2,
                status=status,
                summary=f"年费争议 {k}，电话 13812345678",
                description="客户称未被告知信用卡年费，邮箱 a.b@example.com。",
                amount_in_dispute=Decimal("88.80") if k % 2 else None,
                received_at=received,
                due_at=received + timedelta(days=15 if k % 3 else 21),
                department=Department.COMPLAINTS,
                handler=handler if k % 2 == 0 else None,
                resolution="已退费，回访 13812345678" if ended else None,
                resolved_at=received + timedelta(days=3) if ended else None,
                withdrawn_at=received + timedelta(days=22) if status == ComplaintStatus.WITHDRAWN else None,
                compensation_amount=Decimal("10.00") if status == ComplaintStatus.CLOSED else None,
                customer_accepted=True if status == ComplaintStatus.CLOSED else None,
            )
        if n != 3:
            await Portrait.create(
                customer=c,
                value_tier=ValueTier.MASS,
                aum=c.aum,
                debt=Decimal("12.34"),
                product_count=n,
                product_types=["FUND", "TIME_DEPOSIT"][: n % 3],
                tenure_months=12 + n,
                interactions_90d=n,
                last_contact_at=now - timedelta(days=n) if n % 2 else None,
                complaint_count=n % 5,
                open_complaints=1,
                avg_csat=4.5 if n % 2 else None,
                churn_risk=n / 10,
                churn_drivers=[f"driver {n}"],
                lifecycle_stage=LifecycleStage.MATURE,
                tags=["tag"],
                computed_at=now,
                next_best_products=[{"product": "FUND", "score": 0.5, "reason": "why"}],
            )
    return customers


async def _page(gql, token: str) -> tuple[list[dict], Counter]:
    """The page's customers, and the model instances Tortoise built while answering it, by model."""
    built: Counter = Counter()
    original = Model._init_from_db.__func__

    def counting(cls, **kwargs):
        built[cls.__name__] += 1
        return original(cls, **kwargs)

    Model._init_from_db = classmethod(counting)
    try:
        data = await gql(PAGE, {"branch": BRANCH}, token=token)
    finally:
        Model._init_from_db = classmethod(original)
    return [edge["node"] for edge in data["customers"]["edges"]], built


@pytest.mark.parametrize("role", [Role.ADMIN, Role.ANALYST])  # unmasked, and masked (phone numbers in the texts)
async def test_the_page_builds_no_holding_complaint_or_portrait_instances(gql, seeded, settings, role):
    token = await token_for(await make_staff(role), settings)
    page, built = await _page(gql, token)
    assert len(page) == len(seeded)
    assert sum(len(c["holdings"]) for c in page) == 13 and sum(len(c["complaints"]["edges"]) for c in page) == 9
    assert not built.keys() & {"ProductHolding", "Complaint", "Portrait"}, built  # the Customer rows remain


@pytest.mark.parametrize("role", [Role.ADMIN, Role.ANALYST])
async def test_the_page_answers_what_the_model_instance_paths_answer(gql, seeded, settings, role):
    token = await token_for(await make_staff(role), settings)
    page, _ = await _page(gql, token)
    for customer in page:
        # The single customer, both ways.
        assert (await gql(ONE, {"id": customer["id"]}, token=token))["customer"] == customer
        assert (await gql(NODE, {"id": customer["id"]}, token=token))["node"] == customer
        # Each holding and complaint by its id: resolve_nodes hands the types model instances.
        holdings = customer["holdings"]
        assert (await gql(HOLDING_NODES, {"ids": [h["id"] for h in holdings]}, token=token))["nodes"] == holdings
        complaints = [edge["node"] for edge in customer["complaints"]["edges"]]
        ids = [c["id"] for c in complaints]
        assert (await gql(COMPLAINT_NODES, {"ids": ids}, token=token))["nodes"] == complaints
        # The cursors lead on to the complaints a model-instance page (after:) reads.
        if customer["complaints"]["pageInfo"]["hasNextPage"]:
            after = customer["complaints"]["pageInfo"]["endCursor"]
            rest = await gql(COMPLAINTS_AFTER, {"id": customer["id"], "after": after}, token=token)
            assert len(rest["customer"]["complaints"]["edges"]) == customer["complaints"]["totalCount"] - 3
    masked = role == Role.ANALYST
    texts = [e["node"]["summary"] for c in page for e in c["complaints"]["edges"]]
    assert all(("13812345678" in t) != masked for t in texts)
    assert all((h["accountNo"].startswith("****")) == masked for c in page for h in c["holdings"])


async def test_rows_hold_what_model_instances_hold(seeded):
    """Every column, converted as Tortoise converts it for a model instance, on this database."""
    for model in (ProductHolding, Complaint, Portrait):
        instances = {m.id: m for m in await model.all()}
        rows = await loaders.fetch(model.all())
        assert rows and len(rows) == len(instances)
        for row in rows:
            assert isinstance(row, loaders.Row) and not isinstance(row, Model)
            instance = instances[row.id]
            for column in loaders.columns(model):
                expected = getattr(instance, column)
                assert getattr(row, column) == expected and type(getattr(row, column)) is type(expected), column
