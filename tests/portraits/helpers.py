"""Constructed customers for the portrait tests: rows written straight to the database with the dates a test
needs (the computation reads the database; requests never compute)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from models.complaints import Complaint, ComplaintCategory, ComplaintReason, ComplaintStatus
from models.customers import (
    Channel,
    Consent,
    ConsentPurpose,
    Customer,
    CustomerKind,
    CustomerStatus,
    HoldingStatus,
    ProductHolding,
    ProductType,
)
from models.follow_ups import Priority
from models.interactions import Direction, Interaction, InteractionKind, InteractionStatus
from models.portraits import LifecycleStage, Portrait, ValueTier, score_column
from models.surveys import NpsCategory, SurveyInvitation, SurveyKind, SurveyResponse, SurveyTemplate
from services import customers as customer_service, surveys

NOW = datetime(2027, 3, 15, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
LONG_AGO = NOW - timedelta(days=3 * 365)

_numbers = itertools.count(1)


def days_ago(days: int) -> datetime:
    return NOW - timedelta(days=days)


async def customer(
    *,
    branch: str | None = "北京朝阳支行",
    status: CustomerStatus = CustomerStatus.ACTIVE,
    created_at: datetime = LONG_AGO,
    profiling: bool | None = True,
    contacted_days_ago: int | None = 10,
) -> Customer:
    """A customer of three years, contacted 10 days ago, who consented to profiling (None: never answered)."""
    n = next(_numbers)
    made = await Customer.create(
        customer_no=f"C{n:010d}", kind=CustomerKind.INDIVIDUAL, name=f"客户{n}", branch=branch, status=status
    )
    await Customer.filter(id=made.id).update(created_at=created_at)
    if profiling is not None:
        await Consent.create(customer=made, purpose=ConsentPurpose.PROFILING, granted=profiling, source="test")
    if contacted_days_ago is not None:
        await interaction(made, days_ago(contacted_days_ago))
    return await Customer.get(id=made.id)


async def holding(
    customer: Customer,
    product: ProductType,
    balance: str | Decimal = "1000.00",
    *,
    opened: date = date(2024, 1, 10),
    closed: date | None = None,
) -> ProductHolding:
    row = await ProductHolding.create(
        customer=customer,
        account_no=f"62220{next(_numbers):011d}",
        product=product,
        balance=Decimal(balance),
        opened_at=opened,
        closed_at=closed,
        status=HoldingStatus.CLOSED if closed else HoldingStatus.ACTIVE,
    )
    await customer_service.refresh_balances([customer.id])
    return row


async def interaction(customer: Customer, at: datetime) -> Interaction:
    return await Interaction.create(
        customer=customer,
        channel=Channel.PHONE,
        direction=Direction.OUTBOUND,
        kind=InteractionKind.ADVICE,
        status=InteractionStatus.RESOLVED,
        subject="回访",
        occurred_at=at,
    )


async def complaint(customer: Customer, status: ComplaintStatus, *, received: datetime, due: datetime) -> Complaint:
    return await Complaint.create(
        reference_no=f"CMP-TEST-{next(_numbers):08d}",
        customer=customer,
        branch=customer.branch,
        channel=Channel.PHONE,
        category=ComplaintCategory.DEPOSIT,
        reason=ComplaintReason.SERVICE_ATTITUDE,
        priority=Priority.NORMAL,
        priority_rank=2,
        status=status,
        summary="测试投诉",
        description="测试",
        received_at=received,
        due_at=due,
    )


async def answer(
    customer: Customer, at: datetime, *, nps: int | None = None, csat: float | None = None
) -> SurveyResponse:
    template = await SurveyTemplate.create(name="测试调查", kind=SurveyKind.NPS, questions=[])
    invitation = await SurveyInvitation.create(
        template=template, customer=customer, channel=Channel.SMS, expires_at=at + timedelta(days=14)
    )
    category: NpsCategory | None = surveys.nps_category(nps) if nps is not None else None
    return await SurveyResponse.create(
        invitation=invitation,
        customer=customer,
        answers=[],
        nps_score=nps,
        nps_category=category,
        csat_score=csat,
        submitted_at=at,
    )


async def scores(customer_id: int) -> list[tuple[ProductType, float]]:
    """The recommendation scores stored in the customer's portrait (its score columns), best first."""
    row = await Portrait.get_or_none(customer_id=customer_id).values(*(score_column(p) for p in ProductType))
    found = [(p, row[score_column(p)]) for p in ProductType if row and row[score_column(p)] is not None]
    return sorted(found, key=lambda pair: (-pair[1], pair[0].value))


async def stored_churn_risk(customer_id: int, churn_risk: float) -> None:
    """A stored portrait with this churn risk, for list tests that need one without the facts behind it."""
    await Portrait.create(
        customer_id=customer_id,
        value_tier=ValueTier.MASS,
        aum=Decimal(0),
        debt=Decimal(0),
        product_count=0,
        tenure_months=0,
        interactions_90d=0,
        complaint_count=0,
        open_complaints=0,
        churn_risk=churn_risk,
        lifecycle_stage=LifecycleStage.DORMANT,
        computed_at=NOW,
    )


async def customers_with_a_deposit(count: int) -> list[int]:
    """`count` customers, each with one active two-year time deposit (a varied balance): their ids."""
    today = date.today()
    await Customer.bulk_create(
        [Customer(customer_no=f"K{n:010d}", kind=CustomerKind.INDIVIDUAL, name=f"客户{n}") for n in range(count)],
        batch_size=1000,
    )
    ids = sorted(await Customer.all().values_list("id", flat=True))
    await ProductHolding.bulk_create(
        [
            ProductHolding(
                customer_id=customer_id,
                account_no=f"6222{customer_id:012d}",
                product=ProductType.TIME_DEPOSIT,
                balance=Decimal(1000 * (customer_id % 7000)),
                opened_at=today.replace(year=today.year - 2),
                status=HoldingStatus.ACTIVE,
            )
            for customer_id in ids
        ],
        batch_size=1000,
    )
    return ids
