"""Mining over stored portraits: prospects for a product, the value-tier distribution, and the customers list's
churn-risk filter and order, all scoped like the customers list."""

from __future__ import annotations

from models.customers import Customer, CustomerStatus, ProductType
from models.staff import Role
from services import portraits
from tests.conftest import QueryCounter
from tests.portraits import helpers as h
from tests.portraits.helpers import NOW, days_ago
from tests.portraits.test_portraits import gid

P = ProductType
A, B = "北京朝阳支行", "上海浦东支行"
PROSPECTS = """query($product: ProductType!, $first: Int, $after: String, $last: Int) {
  prospects(product: $product, first: $first, after: $after, last: $last) {
    totalCount pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { node { id name portrait { nextBestProducts { product score } } } } } }"""
TIERS = "{ tierDistribution { tier customers aum } }"


async def _with(branch: str, *products: ProductType, profiling: bool | None = True) -> Customer:
    customer = await h.customer(branch=branch, profiling=profiling)
    for product in products:
        await h.holding(customer, product, "1000.00")
    return customer


async def _prospects_world() -> dict[str, Customer]:
    """Mass-tier customers. The statistics: 5 time-deposit holders, 2 of them with a fund (0.4); 2 insurance
    holders, 1 with a fund (0.5); 3 fund holders among the 7 customers with any product (3/7)."""
    world = {
        "f1": await _with(A, P.TIME_DEPOSIT, P.FUND),
        "f2": await _with(A, P.TIME_DEPOSIT, P.FUND),
        "f3": await _with(B, P.INSURANCE, P.FUND),
        "x": await _with(A, P.TIME_DEPOSIT),
        "y": await _with(A, P.INSURANCE),
        "z": await _with(B, P.TIME_DEPOSIT),
        "w": await _with(A),
        "no consent": await _with(A, P.TIME_DEPOSIT, profiling=False),
    }
    await portraits.compute([c.id for c in world.values()])
    return world


def _names(data: dict) -> list[str]:
    return [edge["node"]["name"] for edge in data["prospects"]["edges"]]


async def test_prospects_rank_the_customers_who_lack_the_product_by_score(gql, admin):
    _, token = admin
    world = await _prospects_world()
    data = await gql(PROSPECTS, {"product": "FUND"}, token=token)
    # y 0.5 (insurance), w 3/7 (no product), x and z 0.4 (time deposit; the earlier customer first).
    assert _names(data) == [world[k].name for k in ("y", "w", "x", "z")]
    assert data["prospects"]["totalCount"] == 4
    scores = [
        next(r["score"] for r in e["node"]["portrait"]["nextBestProducts"] if r["product"] == "FUND")
        for e in data["prospects"]["edges"]
    ]
    assert scores == [0.5, 0.4286, 0.4, 0.4]

    first = await gql(PROSPECTS, {"product": "FUND", "first": 2}, token=token)
    assert _names(first) == [world["y"].name, world["w"].name]
    assert first["prospects"]["pageInfo"]["hasNextPage"] is True
    cursor = first["prospects"]["pageInfo"]["endCursor"]
    rest = await gql(PROSPECTS, {"product": "FUND", "first": 2, "after": cursor}, token=token)
    assert _names(rest) == [world["x"].name, world["z"].name]
    assert rest["prospects"]["pageInfo"] == {**rest["prospects"]["pageInfo"], "hasNextPage": False}
    assert rest["prospects"]["pageInfo"]["hasPreviousPage"] is True
    assert _names(await gql(PROSPECTS, {"product": "FUND", "last": 1}, token=token)) == [world["z"].name]

    # Opening the product takes a customer off the list at once, before any recompute.
    await h.holding(world["y"], P.FUND, "10.00")
    assert _names(await gql(PROSPECTS, {"product": "FUND"}, token=token))[0] == world["w"].name


async def test_prospects_are_scoped_like_the_customers_list(gql, staff_factory):
    world = await _prospects_world()
    _, own_branch = await staff_factory(Role.RELATIONSHIP_MANAGER, branch=A)
    data = await gql(PROSPECTS, {"product": "FUND"}, token=own_branch)
    assert _names(data) == [world[k].name for k in ("y", "w", "x")]
    assert data["prospects"]["totalCount"] == 3
    _, analyst = await staff_factory(Role.ANALYST)
    assert len(_names(await gql(PROSPECTS, {"product": "FUND"}, token=analyst))) == 4
    _, agent = await staff_factory(Role.SERVICE_AGENT, branch=A)
    errors = await gql.errors(PROSPECTS, {"product": "FUND"}, token=agent)
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"


async def test_closed_customers_are_nobodys_prospects(gql, admin):
    _, token = admin
    world = await _prospects_world()
    await Customer.filter(id=world["y"].id).update(status=CustomerStatus.CLOSED)
    assert world["y"].name not in _names(await gql(PROSPECTS, {"product": "FUND"}, token=token))


async def test_bad_prospect_arguments_are_clear_errors(gql, admin):
    _, token = admin
    await _prospects_world()
    errors = await gql.errors(PROSPECTS, {"product": "CAR_LOAN"}, token=token)
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT" and "CAR_LOAN" in errors[0]["message"]
    errors = await gql.errors(PROSPECTS, {"product": "FUND", "first": 101}, token=token)
    assert errors[0]["extensions"]["code"] == "LIMIT_EXCEEDED"
    errors = await gql.errors(PROSPECTS, {"product": "FUND", "after": "not-a-cursor"}, token=token)
    assert errors[0]["extensions"]["code"] == "INVALID"


async def _tier_world() -> None:
    for branch, balance in [(A, "49999.99"), (A, "50000.00"), (A, "500000.00"), (B, "6000000.00"), (B, "1234.56")]:
        customer = await h.customer(branch=branch)
        await h.holding(customer, P.TIME_DEPOSIT, balance)
    await h.customer(branch=A)  # no holdings: MASS with 0
    closed = await h.customer(branch=A, status=CustomerStatus.CLOSED)
    await h.holding(closed, P.TIME_DEPOSIT, "900000.00")  # no longer a customer: not counted


async def test_tier_distribution_counts_and_sums_every_tier(gql, admin):
    _, token = admin
    await _tier_world()
    assert (await gql(TIERS, token=token))["tierDistribution"] == [
        {"tier": "PRIVATE_BANKING", "customers": 1, "aum": "6000000.00"},
        {"tier": "WEALTH", "customers": 1, "aum": "500000.00"},
        {"tier": "AFFLUENT", "customers": 1, "aum": "50000.00"},
        {"tier": "MASS", "customers": 3, "aum": "51234.55"},
    ]


async def test_tier_distribution_is_scoped_and_zero_when_empty(gql, staff_factory):
    _, own_branch = await staff_factory(Role.RELATIONSHIP_MANAGER, branch=A)
    empty = await gql(TIERS, token=own_branch)
    assert empty["tierDistribution"] == [
        {"tier": tier, "customers": 0, "aum": "0.00"} for tier in ("PRIVATE_BANKING", "WEALTH", "AFFLUENT", "MASS")
    ]
    await _tier_world()
    assert (await gql(TIERS, token=own_branch))["tierDistribution"] == [
        {"tier": "PRIVATE_BANKING", "customers": 0, "aum": "0.00"},
        {"tier": "WEALTH", "customers": 1, "aum": "500000.00"},
        {"tier": "AFFLUENT", "customers": 1, "aum": "50000.00"},
        {"tier": "MASS", "customers": 2, "aum": "49999.99"},
    ]
    _, handler = await staff_factory(Role.COMPLAINT_HANDLER)
    assert (await gql.errors(TIERS, token=handler))[0]["extensions"]["code"] == "FORBIDDEN"


CHURN_LIST = """query($min: Float) {
  customers(filter: {minChurnRisk: $min}, orderBy: {field: CHURN_RISK, direction: DESC}) {
    edges { node { name portrait { churnRisk } } } } }"""


async def test_customers_filter_and_sort_on_the_computed_churn_risk(gql, admin):
    _, token = admin
    quiet = await h.customer()
    complaining = await h.customer()
    await h.complaint(complaining, "RECEIVED", received=days_ago(2), due=NOW)
    forgotten = await h.customer(contacted_days_ago=300, status=CustomerStatus.DORMANT)
    await portraits.compute([quiet.id, complaining.id, forgotten.id])
    data = await gql(CHURN_LIST, {"min": 0.2}, token=token)
    assert [(e["node"]["name"], e["node"]["portrait"]["churnRisk"]) for e in data["customers"]["edges"]] == [
        (forgotten.name, 0.55),
        (complaining.name, 0.2),
    ]


LIST = """query($portrait: Boolean!, $products: Boolean!) { customers(first: 50) { edges { node { id
  portrait @include(if: $portrait) { valueTier churnRisk lifecycleStage stale
    nextBestProducts @include(if: $products) { product } } } } } }"""


async def test_portraits_of_a_page_of_customers_cost_one_query(gql, admin):
    _, token = admin
    ids = []
    for i in range(50):  # 17 hold a fund and a time deposit, 33 a fund alone (to whom a time deposit is offered)
        customer = await h.customer()
        await h.holding(customer, P.FUND, "1000.00")
        if i % 3 == 0:
            await h.holding(customer, P.TIME_DEPOSIT, "1000.00")
        ids.append(customer.id)
    await portraits.compute(ids)
    with QueryCounter() as without:
        await gql(LIST, {"portrait": False, "products": False}, token=token)
    with QueryCounter() as with_portraits:
        data = await gql(LIST, {"portrait": True, "products": False}, token=token)
    assert all(edge["node"]["portrait"]["valueTier"] == "MASS" for edge in data["customers"]["edges"])
    assert len(data["customers"]["edges"]) == 50
    assert with_portraits.count == without.count + 1, with_portraits.statements
    # The products also read the consents (a revocation hides them at once): one more query for the page.
    with QueryCounter() as with_products:
        data = await gql(LIST, {"portrait": True, "products": True}, token=token)
    assert with_products.count == without.count + 2, with_products.statements
    assert sum(bool(e["node"]["portrait"]["nextBestProducts"]) for e in data["customers"]["edges"]) == 33
    assert gid(await Customer.get(id=ids[0])) in {e["node"]["id"] for e in data["customers"]["edges"]}
