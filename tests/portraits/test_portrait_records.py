"""A portrait is derived data: a revoked PROFILING consent hides its products at once, a merge drops the
duplicate's portrait and an erasure the erased person's."""

from __future__ import annotations

from models.customers import Customer, ProductType
from models.portraits import Portrait
from services import portraits
from tests.portraits import helpers as h
from tests.portraits.test_mining import PROSPECTS
from tests.portraits.test_portraits import PORTRAIT, gid

P = ProductType
SET_CONSENTS = """mutation($input: SetConsentsInput!) { setConsents(input: $input) { errors { field code } } }"""
MERGE = """mutation($input: MergeCustomersInput!) { mergeCustomers(input: $input) { moved errors { code } } }"""
ERASE = """mutation($input: EraseCustomerInput!) { eraseCustomer(input: $input) { errors { code } } }"""


async def _recommended_pair() -> tuple[Customer, Customer]:
    peer = await h.customer()
    await h.holding(peer, P.TIME_DEPOSIT, "1000.00")
    await h.holding(peer, P.FUND, "1000.00")
    customer = await h.customer()
    await h.holding(customer, P.TIME_DEPOSIT, "1000.00")
    await portraits.compute([peer.id, customer.id])
    return peer, customer


async def test_revoking_profiling_hides_products_and_prospects_before_the_recompute(gql, admin):
    _, token = admin
    _, customer = await _recommended_pair()
    read = await gql(PORTRAIT, {"id": gid(customer)}, token=token)
    assert [r["product"] for r in read["customer"]["portrait"]["nextBestProducts"]] == ["FUND"]
    prospects = await gql(PROSPECTS, {"product": "FUND"}, token=token)
    assert [e["node"]["id"] for e in prospects["prospects"]["edges"]] == [gid(customer)]

    revoke = {"customerId": gid(customer), "consents": [{"purpose": "PROFILING", "granted": False}]}
    assert (await gql(SET_CONSENTS, {"input": revoke}, token=token))["setConsents"]["errors"] == []
    read = await gql(PORTRAIT, {"id": gid(customer)}, token=token)
    assert read["customer"]["portrait"]["nextBestProducts"] == []
    assert read["customer"]["portrait"]["stale"] is True
    assert (await gql(PROSPECTS, {"product": "FUND"}, token=token))["prospects"]["totalCount"] == 0

    await portraits.compute([customer.id])  # the recompute drops the stored scores too
    assert await h.scores(customer.id) == []


async def test_merging_drops_the_duplicates_portrait(gql, admin):
    _, token = admin
    survivor, duplicate = await _recommended_pair()
    ids = {"survivorId": gid(survivor), "duplicateId": gid(duplicate)}
    merged = (await gql(MERGE, {"input": ids}, token=token))["mergeCustomers"]
    assert merged["errors"] == [] and merged["moved"] == {"holdings": 1, "interactions": 1, "consents": 1}
    assert not await Portrait.exists(customer_id=duplicate.id)
    assert (await Customer.get(id=survivor.id)).portrait_stale_since is not None
    assert await portraits.compute([survivor.id, duplicate.id]) == 2


async def test_erasing_drops_the_portrait(gql, admin):
    _, token = admin
    _, customer = await _recommended_pair()
    erase = {"id": gid(customer), "reason": "PIPL request"}
    assert (await gql(ERASE, {"input": erase}, token=token))["eraseCustomer"]["errors"] == []
    assert not await Portrait.exists(customer_id=customer.id)
    assert await portraits.compute([customer.id]) == 0
