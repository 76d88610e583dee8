"""Demo data for a development database: one staff member per role, branch-bound where the role is,
and customers with holdings of every product type, so that every value tier is populated."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta
from decimal import Decimal

from core.db import atomic
from models.customers import (
    Consent,
    ConsentPurpose,
    Customer,
    CustomerKind,
    CustomerTag,
    HoldingStatus,
    IdType,
    ProductHolding,
    ProductType,
    RiskLevel,
)
from models.staff import Department, Role, Staff
from services import audit, clock, customer_rules, customers, staff
from services.access import COMMAND_LINE
from services.demo_data import BRANCHES, fake_company, fake_person

BATCH = 500
# (median CNY balance, spread of the log-normal, share of customers holding it)
PRODUCT_MIX = {
    ProductType.CURRENT_DEPOSIT: (20_000, 1.4, 0.95),
    ProductType.DEBIT_CARD: (5_000, 1.2, 0.9),
    ProductType.TIME_DEPOSIT: (100_000, 1.3, 0.45),
    ProductType.WEALTH_MANAGEMENT: (300_000, 1.2, 0.25),
    ProductType.FUND: (80_000, 1.3, 0.25),
    ProductType.INSURANCE: (60_000, 1.0, 0.2),
    ProductType.PRECIOUS_METAL: (30_000, 1.0, 0.08),
    ProductType.CREDIT_CARD: (8_000, 1.0, 0.5),
    ProductType.PERSONAL_LOAN: (100_000, 0.8, 0.12),
    ProductType.MORTGAGE: (1_200_000, 0.6, 0.2),
}
TAGS = ("代发工资", "高净值潜力", "老客户", "线上活跃", "小微企业主", "退休客群")
# Every value tier is populated whatever the count: one customer in PRIVATE_BANKING_EVERY (from the first) gets a
# private-banking-sized wealth product, one in WEALTH_EVERY (from the second) a wealth-sized one; the product mix
# above gives the MASS and AFFLUENT customers.
PRIVATE_BANKING_EVERY, WEALTH_EVERY = 50, 10
PRIVATE_BANKING_AUM, WEALTH_AUM = (6_500_000, 30_000_000), (600_000, 5_000_000)
DEMO_STAFF = [
    ("admin.demo", "系统管理员 王敏", Role.ADMIN, Department.OPERATIONS, None),
    ("manager.demo", "客户经理主管 李强", Role.MANAGER, Department.BRANCH, None),
    ("rm.demo", "客户经理 张伟", Role.RELATIONSHIP_MANAGER, Department.BRANCH, BRANCHES[0].name),
    ("rm2.demo", "客户经理 陈静", Role.RELATIONSHIP_MANAGER, Department.BRANCH, BRANCHES[1].name),
    ("agent.demo", "客服专员 刘洋", Role.SERVICE_AGENT, Department.CALL_CENTER, None),
    ("teller.demo", "大堂经理 赵丽", Role.SERVICE_AGENT, Department.BRANCH, BRANCHES[0].name),
    ("complaints.demo", "投诉处理专员 孙磊", Role.COMPLAINT_HANDLER, Department.COMPLAINTS, None),
    ("analyst.demo", "数据分析师 周婷", Role.ANALYST, Department.MARKETING, None),
    ("auditor.demo", "合规审计 吴刚", Role.AUDITOR, Department.COMPLIANCE, None),
]


async def seed(password: str | None = None, customers_wanted: int = 0, rng_seed: int = 2026) -> list[str]:
    """Idempotent for staff: missing demo staff are created (with `password`, else a random one, printed once);
    demo staff who exist already keep theirs, unless `password` is given: then it becomes theirs (the way to
    get in again when the printed one is lost). Customers are added on every call. Returns lines to show the
    operator."""
    lines = await _seed_staff(password or staff.generated_password(), reset=password is not None)
    if customers_wanted:
        lines.append(await _seed_customers(customers_wanted, random.Random(rng_seed + await Customer.all().count())))
    return lines


async def _seed_staff(password: str, reset: bool) -> list[str]:
    created, reset_for = [], []
    async with atomic():
        for username, display_name, role, department, branch in DEMO_STAFF:
            existing = await Staff.get_or_none(username=username)
            if existing is not None:
                if reset:  # the staff rules check the password; their sessions end, a lockout is lifted
                    await staff.update(COMMAND_LINE, existing.id, staff.StaffChanges(password=password))
                    await audit.record(
                        COMMAND_LINE,
                        "staff.update",
                        subject_type="Staff",
                        subject_id=str(existing.id),
                        detail={"input": ["password"], "seed": True},
                    )
                    reset_for.append(username)
                continue
            member = await staff.create(
                COMMAND_LINE,
                username=username,
                display_name=display_name,
                password=password,
                role=role,
                department=department,
                branch=branch,
            )
            await audit.record(
                COMMAND_LINE, "staff.create", subject_type="Staff", subject_id=str(member.id), detail={"seed": True}
            )
            created.append(f"{role.value:<22} {username}" + (f" ({branch})" if branch else ""))
    lines = [f"created {len(created)} demo staff, password: {password}", *created] if created else []
    if reset_for:
        lines.append(f"set the password of {len(reset_for)} existing demo staff to the one given")
    if not lines:
        lines.append(
            "demo staff already present; nothing to do (their password was printed when they were created; "
            "to set a new one: crm seed --password NEW, or make seed DEMO_PASSWORD=NEW)"
        )
    return lines


def _balance(rng: random.Random, median: float, spread: float) -> Decimal:
    return Decimal(str(round(median * math.exp(rng.gauss(0, spread)), 2)))


def _holdings(
    rng: random.Random, customer_id: int, opened_after: date, today: date, boost: tuple[int, int] | None = None
) -> list[ProductHolding]:
    rows = []
    if boost is not None:  # a wealthy customer: one large wealth-management product on top of the mix
        rows.append(
            ProductHolding(
                customer_id=customer_id,
                account_no=f"62{rng.randrange(10**16, 10**17)}",
                product=ProductType.WEALTH_MANAGEMENT,
                balance=Decimal(rng.randrange(*boost)),
                opened_at=opened_after,
                status=HoldingStatus.ACTIVE,
            )
        )
    for product, (median, spread, share) in PRODUCT_MIX.items():
        if rng.random() >= share:
            continue
        span = max(1, (today - opened_after).days)
        opened = opened_after + timedelta(days=rng.randrange(span))
        closed = opened + timedelta(days=rng.randrange(1, 400)) if rng.random() < 0.08 else None
        if closed and closed > today:
            closed = None
        rows.append(
            ProductHolding(
                customer_id=customer_id,
                account_no=f"62{rng.randrange(10**16, 10**17)}",
                product=product,
                balance=_balance(rng, median, spread),
                opened_at=opened,
                closed_at=closed,
                status=HoldingStatus.CLOSED if closed else HoldingStatus.ACTIVE,
            )
        )
    return rows


async def _seed_customers(count: int, rng: random.Random) -> str:
    today = clock.today()
    managers = {s.branch: s.id for s in await Staff.filter(role=Role.RELATIONSHIP_MANAGER, branch__isnull=False)}
    made = 0
    while made < count:
        batch = []
        for _ in range(min(BATCH, count - made)):
            if rng.random() < 0.08:
                company = fake_company(rng)
                customer = Customer(
                    kind=CustomerKind.CORPORATE,
                    name=company.name,
                    branch=company.branch,
                    id_type=IdType.UNIFIED_SOCIAL_CREDIT_CODE,
                    id_number=company.unified_social_credit_code,
                )
            else:
                person = fake_person(rng, today)
                customer = Customer(
                    kind=CustomerKind.INDIVIDUAL,
                    name=person.name,
                    gender=person.gender,
                    birth_date=person.birth_date,
                    id_type=IdType.RESIDENT_ID,
                    id_number=person.resident_id,
                    phone=person.mobile,
                    email=person.email,
                    address=person.address,
                    occupation=person.occupation,
                    branch=person.branch,
                )
            customer.risk_level = rng.choice(list(RiskLevel)) if rng.random() < 0.85 else None
            customer.relationship_manager_id = managers.get(customer.branch) if rng.random() < 0.6 else None
            customer.customer_no = f"C{rng.randrange(10**10):010d}"
            customer.completeness = customer_rules.assess(customer, today)[0]
            customer.portrait_stale_since = clock.now()  # the freshness sweep of a running app computes them
            batch.append(customer)
        async with atomic():
            taken = set(
                await Customer.filter(customer_no__in=[c.customer_no for c in batch]).values_list(
                    "customer_no", flat=True
                )
            )
            known_ids = set(
                await Customer.filter(id_number__in=[c.id_number for c in batch]).values_list("id_number", flat=True)
            )
            unique = []
            for candidate in batch:  # random numbers may collide, with the database or within the batch
                if candidate.customer_no in taken or candidate.id_number in known_ids:
                    continue
                taken.add(candidate.customer_no)
                known_ids.add(candidate.id_number)
                unique.append(candidate)
            batch = unique
            await Customer.bulk_create(batch)
            stored = await Customer.filter(customer_no__in=[c.customer_no for c in batch]).values_list("id", flat=True)
            holdings, tags, consents = [], [], []
            for n, customer_id in enumerate(stored, start=made):
                boost = (
                    PRIVATE_BANKING_AUM
                    if n % PRIVATE_BANKING_EVERY == 0
                    else WEALTH_AUM
                    if n % WEALTH_EVERY == 1
                    else None
                )
                opened_after = today - timedelta(days=rng.randrange(30, 6000))
                holdings += _holdings(rng, customer_id, opened_after, today, boost)
                tags += [CustomerTag(customer_id=customer_id, tag=t) for t in rng.sample(TAGS, rng.randrange(0, 3))]
                if rng.random() < 0.4:
                    consents.append(
                        Consent(
                            customer_id=customer_id,
                            purpose=ConsentPurpose.MARKETING,
                            granted=True,
                            source="branch form",
                        )
                    )
            await ProductHolding.bulk_create(holdings)
            await CustomerTag.bulk_create(tags)
            await Consent.bulk_create(consents)
            await customers.refresh_balances(list(stored))
        made += len(batch)
    return f"created {made} demo customers with holdings"
