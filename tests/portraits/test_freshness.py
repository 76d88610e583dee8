"""Freshness (services/portrait_jobs.py): every write path behind a portrait marks it stale (upsertHolding
among them), the first moment of a burst is kept, the sweep recomputes exactly the portraits stale for the
debounce window, one sweep at a time; and, in real time through the API and the embedded worker, a burst of
100 changes to one customer gives one or a few recomputes and a fresh portrait within seconds."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from app import create_app
from models.complaints import ComplaintStatus
from models.customers import Channel, ConsentPurpose, Customer, CustomerKind, CustomerStatus, ProductType
from models.interactions import Direction, InteractionKind, InteractionStatus
from models.portraits import Portrait
from models.staff import Role
from services import clock, complaints, consents, customer_merge, customers, interactions, portrait_jobs, portraits
from services.access import Caller
from services.portraits import PortraitSettings
from tests.complaints.helpers import new_customer, pk
from tests.conftest import GraphQLClient, RunningApp, make_staff, token_for, with_overrides
from tests.customers.helpers import HOLDING
from tests.database import empty_all_tables
from tests.portraits import helpers as h
from tests.portraits.helpers import NOW

WINDOW = PortraitSettings(portrait_debounce_seconds=5)


async def _stale_since(customer_id: int):
    return (await Customer.get(id=customer_id)).portrait_stale_since


async def _fresh(customer_id: int) -> None:
    """Computed now: no stale mark left."""
    await portraits.compute([customer_id])
    assert await _stale_since(customer_id) is None


def _holding(customer_gid: str, balance: str, account: str = "6222020000000001") -> dict:
    return {
        "customerId": customer_gid,
        "accountNo": account,
        "product": "TIME_DEPOSIT",
        "balance": balance,
        "openedAt": "2025-06-01",
    }


# ---------------------------------------------------------------- what marks a portrait stale


async def test_upserting_a_holding_marks_the_portrait_stale(gql, admin):
    _, token = admin
    customer = await new_customer(gql, token)
    customer_id = pk(customer["id"])
    await _fresh(customer_id)

    added = (await gql(HOLDING, {"input": _holding(customer["id"], "80000.00")}, token=token))["upsertHolding"]
    assert added["errors"] == []
    assert await _stale_since(customer_id) == NOW

    await _fresh(customer_id)
    clock.travel(timedelta(minutes=3))
    changed = (await gql(HOLDING, {"input": _holding(customer["id"], "90000.00")}, token=token))["upsertHolding"]
    assert changed["errors"] == [] and changed["holding"]["balance"] == "90000.00"
    assert await _stale_since(customer_id) == NOW + timedelta(minutes=3)


async def test_a_refused_holding_marks_nothing(gql, admin):
    _, token = admin
    customer = await new_customer(gql, token)
    customer_id = pk(customer["id"])
    await _fresh(customer_id)
    refused = (await gql(HOLDING, {"input": _holding(customer["id"], "1.234")}, token=token))["upsertHolding"]
    assert refused["errors"][0]["code"] == "INVALID"
    assert await _stale_since(customer_id) is None


async def test_the_first_moment_of_a_burst_is_kept(app):
    customer = await h.customer()
    await _fresh(customer.id)
    await portraits.mark_stale([customer.id])
    clock.travel(timedelta(seconds=3))
    await portraits.mark_stale([customer.id, customer.id])
    assert await _stale_since(customer.id) == NOW


async def test_every_write_path_behind_a_portrait_marks_it_stale(app):
    """Interactions (logged, resolved), complaints (filed, every move), PROFILING consent, status and tags,
    new customers (created, imported, seeded: they have no portrait yet) and merges (the survivor)."""
    member = await make_staff(Role.ADMIN)
    caller = Caller(member)

    async def marks(customer_id: int, change) -> None:
        await _fresh(customer_id)
        await change()
        assert await _stale_since(customer_id) == NOW, change

    customer = await h.customer()
    interaction = await interactions.log(
        caller,
        customer.id,
        channel=Channel.PHONE,
        direction=Direction.INBOUND,
        kind=InteractionKind.ADVICE,
        subject="咨询理财产品",
        status=InteractionStatus.OPEN,
    )
    assert await _stale_since(customer.id) is not None
    await _fresh(customer.id)
    await marks(customer.id, lambda: interactions.resolve(caller, interaction.id, "已解答"))

    filed = await complaints.file(
        caller, customer.id, channel=Channel.PHONE, summary="年费争议", description="要求退还"
    )
    assert await _stale_since(customer.id) is not None
    await marks(customer.id, lambda: complaints.acknowledge(caller, filed.id))
    assert (await complaints.get(caller, filed.id)).status == ComplaintStatus.ACKNOWLEDGED

    profiling = [{"purpose": ConsentPurpose.PROFILING, "granted": False, "source": "客户来电"}]
    await marks(customer.id, lambda: consents.set_consents(caller, customer.id, profiling))

    async def go_dormant() -> None:
        current = await Customer.get(id=customer.id)
        await customers.update(caller, customer.id, current.version, {"status": CustomerStatus.DORMANT})

    await marks(customer.id, go_dormant)

    created = await customers.create(
        caller, {"kind": CustomerKind.INDIVIDUAL, "name": "新客户", "branch": "北京朝阳支行"}
    )
    assert created.portrait_stale_since == NOW

    survivor, duplicate = await h.customer(), await h.customer()
    await h.holding(duplicate, ProductType.FUND, "20000.00")
    await _fresh(survivor.id)
    await _fresh(duplicate.id)
    await customer_merge.merge(caller, survivor.id, duplicate.id, dry_run=False)
    assert await _stale_since(survivor.id) == NOW  # the duplicate's portrait is dropped, not recomputed


async def test_seeded_customers_wait_for_the_sweep_and_cover_every_tier(app):
    from services.seed import seed

    await seed(password="correct-horse-42", customers_wanted=120)
    assert not await Customer.filter(portrait_stale_since__isnull=True).exists()
    clock.travel(timedelta(seconds=WINDOW.portrait_debounce_seconds))
    assert await portrait_jobs.sweep(WINDOW) == 120
    tiers = set(await Portrait.all().values_list("value_tier", flat=True))
    assert {t.value for t in tiers} == {"PRIVATE_BANKING", "WEALTH", "AFFLUENT", "MASS"}
    assert await Portrait.all().count() == 120


# ---------------------------------------------------------------- the sweep


async def test_the_sweep_takes_only_portraits_stale_for_the_whole_window(app, computed):
    early, late, fresh = await h.customer(), await h.customer(), await h.customer()
    await _fresh(fresh.id)
    computed.clear()
    await portraits.mark_stale([early.id])
    clock.travel(timedelta(seconds=3))
    await portraits.mark_stale([late.id])
    clock.travel(timedelta(seconds=2))  # early: 5 s, the window; late: 2 s

    assert await portrait_jobs.sweep(WINDOW) == 1
    assert computed == [[early.id]]
    assert await _stale_since(early.id) is None and await Portrait.exists(customer_id=early.id)
    assert await _stale_since(late.id) == NOW + timedelta(seconds=3)

    assert await portrait_jobs.sweep(WINDOW) == 0  # nothing due: no computation at all
    clock.travel(timedelta(seconds=3))
    assert await portrait_jobs.sweep(WINDOW) == 1
    assert computed == [[early.id], [late.id]]
    assert not await Portrait.exists(customer_id=fresh.id, computed_at__gt=NOW)


async def test_the_sweep_works_in_batches_and_takes_each_customer_once(app, computed):
    made = [await h.customer(contacted_days_ago=None) for _ in range(7)]
    ids = [c.id for c in made]
    await portraits.mark_stale(ids)
    clock.travel(timedelta(seconds=5))
    assert await portrait_jobs.sweep(PortraitSettings(portrait_debounce_seconds=5, portrait_batch_size=3)) == 7
    assert computed == [ids[:3], ids[3:6], ids[6:]]
    assert await Portrait.filter(customer_id__in=ids).count() == 7


async def test_a_change_while_its_customer_is_computed_leaves_it_stale(app, monkeypatch):
    customer = await h.customer()
    await portraits.mark_stale([customer.id])
    clock.travel(timedelta(seconds=5))
    original = portraits.co_holding

    async def change_meanwhile():
        # Inside compute's transaction, after it cleared the mark: a change of the same customer marks it again.
        await portraits.mark_stale([customer.id])
        return await original()

    monkeypatch.setattr(portraits, "co_holding", change_meanwhile)
    await portrait_jobs.sweep(WINDOW)
    assert await _stale_since(customer.id) == NOW + timedelta(seconds=5)


async def test_one_sweep_at_a_time(app, computed, monkeypatch):
    customer = await h.customer()
    await portraits.mark_stale([customer.id])
    clock.travel(timedelta(seconds=5))
    started, release = asyncio.Event(), asyncio.Event()
    original = portraits.compute

    async def slow(customer_ids):
        started.set()
        await release.wait()
        return await original(customer_ids)

    monkeypatch.setattr(portraits, "compute", slow)
    first = asyncio.create_task(portrait_jobs.sweep(WINDOW))
    await asyncio.wait_for(started.wait(), 10)
    assert await portrait_jobs.sweep(WINDOW) == 0  # another sweep holds the work
    release.set()
    assert await first == 1


# ---------------------------------------------------------------- a burst, in real time


@pytest.fixture
async def real_time_app(settings):
    clock.reset()  # the real clock (the conftest pinned it): the embedded worker and the sweep run on it
    tuned = with_overrides(settings, sections={**settings.sections, PortraitSettings: WINDOW})
    async with RunningApp(create_app(tuned)).running() as running:
        await empty_all_tables()
        yield running, tuned


async def test_a_burst_of_changes_gives_one_or_a_few_recomputes(real_time_app, computed):
    running, tuned = real_time_app
    member = await make_staff(Role.RELATIONSHIP_MANAGER)
    token = await token_for(member, tuned)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=running), base_url="http://testserver") as http:
        gql = GraphQLClient(http)
        customer = await new_customer(gql, token)
        customer_id = pk(customer["id"])
        await _fresh(customer_id)  # only the burst makes it stale
        computed.clear()
        queue = running.runtime.queue
        period = tuned.of(PortraitSettings).sweep_seconds

        async def scheduler() -> None:  # as tasks/scheduler.py sends it
            while True:
                queue.send("sweep_stale_portraits")
                await asyncio.sleep(period)

        sending = asyncio.create_task(scheduler())
        try:
            began = time.monotonic()
            for n in range(100):
                account = f"62220200000000{n % 4:02d}"
                result = await gql(HOLDING, {"input": _holding(customer["id"], f"{1000 * (n + 1)}.00", account)}, token)
                assert result["upsertHolding"]["errors"] == []
            burst = time.monotonic() - began
            ended = time.monotonic()
            while await _stale_since(customer_id) is not None or not await Portrait.exists(customer_id=customer_id):
                assert time.monotonic() - ended < WINDOW.portrait_debounce_seconds + 2 * period + 10, "still stale"
                await asyncio.sleep(0.1)
            fresh_after = time.monotonic() - ended
        finally:
            sending.cancel()

    # The last four balances: accounts 0..3 last set by changes 97..100.
    portrait = await Portrait.get(customer_id=customer_id)
    assert portrait.aum == Decimal(1000 * (97 + 98 + 99 + 100))
    recomputes = sum(1 for ids in computed if customer_id in ids)
    # One per debounce window that the burst opened: one when it fits in a window, a few when it lasts longer.
    assert 1 <= recomputes <= 2 + int(burst // WINDOW.portrait_debounce_seconds), (recomputes, burst)
    assert recomputes <= 5, (recomputes, burst)
    assert fresh_after < WINDOW.portrait_debounce_seconds + 2 * period + 10
    print(f"burst of 100 changes in {burst:.1f} s: {recomputes} recompute(s), fresh {fresh_after:.1f} s after it")
