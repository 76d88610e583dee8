"""The pure rules of the portrait (services/portrait_rules.py), against values worked out by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from models.customers import CustomerStatus, ProductType
from models.portraits import LifecycleStage, ValueTier
from services import portrait_rules as rules
from services.portrait_rules import ChurnFacts, CoHolding, LifecycleFacts

P = ProductType
QUIET = ChurnFacts(
    status=CustomerStatus.ACTIVE,
    days_without_contact=10,
    closed_recently=0,
    open_complaints=0,
    breached_complaints=0,
    recent_detractor_answers=0,
)


@pytest.mark.parametrize(
    ("aum", "tier"),
    [
        ("0", ValueTier.MASS),
        ("49999.99", ValueTier.MASS),
        ("50000", ValueTier.AFFLUENT),
        ("499999.99", ValueTier.AFFLUENT),
        ("500000", ValueTier.WEALTH),
        ("5999999.99", ValueTier.WEALTH),
        ("6000000", ValueTier.PRIVATE_BANKING),
        ("1000000000", ValueTier.PRIVATE_BANKING),
    ],
)
def test_value_tier_edges(aum, tier):
    assert rules.value_tier(Decimal(aum)) is tier


@pytest.mark.parametrize(
    ("start", "end", "months"),
    [
        (date(2026, 9, 15), date(2027, 3, 15), 6),
        (date(2026, 9, 16), date(2027, 3, 15), 5),
        (date(2027, 1, 31), date(2027, 2, 28), 0),
        (date(2027, 1, 31), date(2027, 3, 1), 1),
        (date(2027, 3, 20), date(2027, 3, 15), 0),
    ],
)
def test_whole_months(start, end, months):
    assert rules.months_between(start, end) == months


@pytest.mark.parametrize(
    ("changes", "points", "text"),
    [
        ({"days_without_contact": 180}, 25, "180 天未联系"),
        ({"days_without_contact": 400}, 25, "400 天未联系"),
        ({"closed_recently": 1}, 15, "近 90 天销户 1 个产品"),
        ({"closed_recently": 2}, 30, "近 90 天销户 2 个产品"),
        ({"closed_recently": 5}, 45, "近 90 天销户 5 个产品"),
        ({"open_complaints": 2}, 20, "2 件投诉未结"),
        ({"open_complaints": 2, "breached_complaints": 1}, 30, "2 件投诉未结，其中 1 件已超过处理时限"),
        ({"recent_detractor_answers": 1}, 20, "近 365 天 1 次给出 NPS 贬损评分（0–6 分）"),
        ({"status": CustomerStatus.DORMANT}, 30, "账户状态为休眠"),
    ],
)
def test_each_churn_driver_alone(changes, points, text):
    drivers = rules.churn_drivers(ChurnFacts(**{**vars(QUIET), **changes}))
    assert [(d.points, d.text) for d in drivers] == [(points, text)]
    assert rules.churn_risk(drivers) == points / 100


def test_no_signal_no_risk():
    assert rules.churn_drivers(QUIET) == []
    assert rules.churn_risk([]) == 0.0
    assert rules.churn_drivers(ChurnFacts(**{**vars(QUIET), "days_without_contact": 179})) == []


def test_every_driver_together_is_capped_at_one():
    facts = ChurnFacts(
        status=CustomerStatus.DORMANT,
        days_without_contact=200,
        closed_recently=2,
        open_complaints=1,
        breached_complaints=1,
        recent_detractor_answers=3,
    )
    drivers = rules.churn_drivers(facts)
    assert [d.text for d in drivers] == [
        "200 天未联系",
        "近 90 天销户 2 个产品",
        "1 件投诉未结，其中 1 件已超过处理时限",
        "近 365 天 3 次给出 NPS 贬损评分（0–6 分）",
        "账户状态为休眠",
    ]
    assert sum(d.points for d in drivers) == 25 + 30 + 30 + 20 + 30
    assert rules.churn_risk(drivers) == 1.0


def test_two_drivers_add_up():
    facts = ChurnFacts(**{**vars(QUIET), "days_without_contact": 181, "closed_recently": 2})
    assert rules.churn_risk(rules.churn_drivers(facts)) == 0.55


churn_facts = st.builds(
    ChurnFacts,
    status=st.sampled_from(CustomerStatus),
    days_without_contact=st.integers(0, 5000),
    closed_recently=st.integers(0, 20),
    open_complaints=st.integers(0, 10),
    breached_complaints=st.integers(0, 10),
    recent_detractor_answers=st.integers(0, 10),
)


@given(churn_facts)
def test_risk_is_the_capped_sum_of_the_drivers(facts):
    drivers = rules.churn_drivers(facts)
    risk = rules.churn_risk(drivers)
    assert 0.0 <= risk <= 1.0
    assert risk == min(sum(d.points for d in drivers), 100) / 100
    assert all(d.text for d in drivers)


@given(churn_facts, st.sampled_from(["days_without_contact", "closed_recently", "recent_detractor_answers"]))
def test_more_of_a_signal_never_lowers_the_risk(facts, name):
    worse = ChurnFacts(**{**vars(facts), name: getattr(facts, name) + 200})
    assert rules.churn_risk(rules.churn_drivers(worse)) >= rules.churn_risk(rules.churn_drivers(facts))


MATURE = LifecycleFacts(
    status=CustomerStatus.ACTIVE, tenure_months=24, months_without_activity=1, churn_risk=0.2, opened_recently=False
)


@pytest.mark.parametrize(
    ("changes", "stage"),
    [
        ({}, LifecycleStage.MATURE),
        ({"tenure_months": 5}, LifecycleStage.NEW),
        ({"tenure_months": 6}, LifecycleStage.MATURE),
        ({"months_without_activity": 12}, LifecycleStage.DORMANT),
        ({"months_without_activity": 11}, LifecycleStage.MATURE),
        ({"status": CustomerStatus.DORMANT}, LifecycleStage.DORMANT),
        ({"churn_risk": 0.6}, LifecycleStage.DECLINING),
        ({"churn_risk": 0.59}, LifecycleStage.MATURE),
        ({"opened_recently": True}, LifecycleStage.GROWING),
        # The first that applies wins, in the order NEW, DORMANT, DECLINING, GROWING.
        ({"tenure_months": 2, "status": CustomerStatus.DORMANT, "churn_risk": 0.9}, LifecycleStage.NEW),
        ({"months_without_activity": 13, "churn_risk": 0.9, "opened_recently": True}, LifecycleStage.DORMANT),
        ({"churn_risk": 0.75, "opened_recently": True}, LifecycleStage.DECLINING),
    ],
)
def test_lifecycle_stage(changes, stage):
    assert rules.lifecycle_stage(LifecycleFacts(**{**vars(MATURE), **changes})) is stage


def _mask(*products: ProductType) -> int:
    return rules.product_mask(set(products))


# Ten customers of one tier: 4 hold a time deposit and a fund, 2 a time deposit and insurance, 1 a time
# deposit alone, 3 a debit card alone.
TIER = CoHolding.of(
    {
        _mask(P.TIME_DEPOSIT, P.FUND): 4,
        _mask(P.TIME_DEPOSIT, P.INSURANCE): 2,
        _mask(P.TIME_DEPOSIT): 1,
        _mask(P.DEBIT_CARD): 3,
    }
)


def test_recommendations_follow_the_co_holders_of_the_customers_products():
    found = rules.recommend(ValueTier.AFFLUENT, frozenset({P.TIME_DEPOSIT}), TIER)
    # Of the 7 time-deposit holders, 4 hold a fund (4/7) and 2 insurance (2/7); nobody holds anything else.
    assert [(r.product, r.score) for r in found] == [(P.FUND, round(4 / 7, 4)), (P.INSURANCE, round(2 / 7, 4))]
    assert found[0].reason == "在持有定期存款的富裕客户中，57%（4/7）也持有基金"


def test_the_best_of_the_held_products_gives_the_score():
    found = rules.recommend(ValueTier.WEALTH, frozenset({P.DEBIT_CARD, P.INSURANCE}), TIER)
    # Insurance holders: 2, both with a time deposit (1.0); debit card holders: 3, none with anything else.
    assert [(r.product, r.score) for r in found] == [(P.TIME_DEPOSIT, 1.0)]
    assert found[0].reason == "在持有保险的财富客户中，100%（2/2）也持有定期存款"


def test_a_customer_without_products_gets_the_tiers_most_held():
    found = rules.recommend(ValueTier.MASS, frozenset(), TIER)
    assert [(r.product, r.score) for r in found] == [
        (P.TIME_DEPOSIT, 0.7),
        (P.FUND, 0.4),
        (P.DEBIT_CARD, 0.3),
        (P.INSURANCE, 0.2),
    ]
    assert found[0].reason == "大众客户中，70%（7/10）持有定期存款"


def test_no_statistics_no_recommendations():
    assert rules.recommend(ValueTier.MASS, frozenset({P.FUND}), CoHolding.of({})) == []
    assert rules.recommend(ValueTier.MASS, frozenset(), CoHolding.of({})) == []


product_sets = st.frozensets(st.sampled_from(ProductType))


@given(
    st.dictionaries(st.integers(1, 2 ** len(ProductType) - 1), st.integers(1, 50), max_size=30),
    product_sets,
    st.sampled_from(ValueTier),
)
def test_recommendations_are_lacking_products_best_first(counts, held, tier):
    found = rules.recommend(tier, held, CoHolding.of(counts))
    assert not {r.product for r in found} & held
    assert all(0 < r.score <= 1 and r.reason for r in found)
    assert [r.score for r in found] == sorted((r.score for r in found), reverse=True)
    assert len({r.product for r in found}) == len(found)


def test_derived_tags():
    assert rules.derived_tags(ValueTier.WEALTH, LifecycleStage.DECLINING, 0.7, 2) == [
        "财富客户",
        "衰退期",
        "高流失风险",
        "有未结投诉",
    ]
    assert rules.derived_tags(ValueTier.MASS, LifecycleStage.NEW, 0.0, 0) == ["大众客户", "新客户"]
