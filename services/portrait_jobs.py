"""Keeping portraits fresh (docs/DOMAIN.md "Portraits and segments"): the debounced recompute of stale portraits and
the RECOMPUTE_PORTRAITS job. The computation itself is services/portraits.compute; this module decides when it
runs and on which customers.

Freshness: a scheduled sweep of stale rows (not a message per change)
- Every change behind a portrait (holdings, interactions, complaints, survey responses, PROFILING consent,
  status and tags, new and merged customers) calls `portraits.mark_stale(ids)` in the change's transaction:
  the customer's `portrait_stale_since` is set to the moment of the first change since the last computation
  (later changes keep it). The settings (`portraits.PortraitSettings`) live with mark_stale.
- `sweep()` runs every few seconds (tasks/portraits.py, `sweep_stale_portraits`, sent by the scheduler). It
  recomputes, in batches of CRM_PORTRAIT_BATCH_SIZE (default 1000), the customers stale for at least
  CRM_PORTRAIT_DEBOUNCE_SECONDS (default 5). That is the debounce: a burst of changes to one customer inside
  the window gives one recompute, a longer burst one per window, and no customer waits much longer than the
  window plus the sweep's period. A change committed while its customer is being computed marks it stale again
  (compute clears the mark in the first statement of its transaction, and mark_stale writes the row whatever
  its mark, so on PostgreSQL it waits for that transaction), so it is picked up by the next window.
- Why a sweep: the stale mark is the truth and the sweep reads it, so nothing is lost when a process dies, when
  no task queue is bound (the command line: `crm seed`, imports) or when a message is dropped; a burst costs
  one UPDATE per change and no message at all.
- One sweep at a time: a sweep that finds another running (in this process, or on PostgreSQL in any process,
  through an advisory lock) returns at once. A sweep spends at most SWEEP_BUDGET_SECONDS; the next one goes on.

Recompute jobs (`recomputePortraits`, roles: access.PORTRAIT_RECOMPUTERS)
- Exactly one of `customer_ids` (at most MAX_IDS, each visible to the caller, else NOT_FOUND at its index),
  `segment_id` (NOT_FOUND when the caller cannot read it) or `everyone` (the API's `all: true`); none is
  REQUIRED, two are INVALID.
- The job's params: {"customer_ids": [...]} | {"segment_id": n} | {"all": true}. The worker evaluates the
  audience as the requester is now (`jobs.requester`; a segment's members live), then splits it into batches
  of CRM_PORTRAIT_BATCH_SIZE ids (services.jobs.split): one message per batch, so that every worker process
  takes a share. The co-holding statistics are renewed (when missing or old) before the batches are sent.
  Progress counts the batches done; the result is {"customers", "batches"}. A batch re-delivered after its
  worker died is computed again (compute is idempotent); the job ends SUCCEEDED with the last batch.
- The nightly full recompute (`nightly()`, scheduled daily) is the same job with {"all": true}, created by
  nobody; it is skipped while another full recompute is queued or running.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta

from tortoise.connection import get_connection

from core.settings import active as active_settings
from models.customers import Customer
from models.jobs import Job, JobBatch, JobStatus
from services import access, clock, customers, jobs, portraits, segments
from services.access import COMMAND_LINE, Caller, require_role
from services.errors import DomainError, DomainErrors, ErrorCode, invalid, not_found

log = logging.getLogger(__name__)

RECOMPUTE_JOB = "RECOMPUTE_PORTRAITS"  # the job kind
MAX_IDS = 1000  # customerIds of one request; more: a segment or all
SWEEP_BUDGET_SECONDS = 20.0  # a sweep starts no new batch after this long
SWEEP_LOCK = 0x706F7274  # the PostgreSQL advisory lock of the sweep ("port")


# ---------------------------------------------------------------- the debounced sweep


_this_process = asyncio.Lock()


@asynccontextmanager
async def _the_only_sweep() -> AsyncIterator[bool]:
    """True when no other sweep runs: none in this process, and on PostgreSQL none holding the advisory lock
    (a session lock on a connection of its own, released when the sweep ends or its process dies)."""
    if _this_process.locked():
        yield False
        return
    async with _this_process:
        connection = get_connection("default")
        if connection.capabilities.dialect != "postgres":
            yield True
            return
        async with connection.acquire_connection() as raw:
            if not await raw.fetchval("SELECT pg_try_advisory_lock($1)", SWEEP_LOCK):
                yield False
                return
            try:
                yield True
            finally:
                await raw.execute("SELECT pg_advisory_unlock($1)", SWEEP_LOCK)


async def due(settings: portraits.PortraitSettings, *, after: int = 0, limit: int | None = None) -> list[int]:
    """Ids (above `after`, ascending) of the customers whose portrait has been stale for the debounce window."""
    cutoff = clock.now() - timedelta(seconds=settings.portrait_debounce_seconds)
    return await (
        Customer.filter(portrait_stale_since__lte=cutoff, id__gt=after)
        .order_by("id")
        .limit(limit or settings.portrait_batch_size)
        .values_list("id", flat=True)
    )


async def sweep(settings: portraits.PortraitSettings) -> int:
    """Recompute the portraits that are due (see the module docstring); returns how many customers it took."""
    async with _the_only_sweep() as mine:
        if not mine:
            log.info("another portrait sweep is running; this one leaves it the work")
            return 0
        taken, after = 0, 0
        deadline = time.monotonic() + SWEEP_BUDGET_SECONDS
        while time.monotonic() < deadline:
            # Keyset on id: a customer the computation leaves stale (changed meanwhile) waits for the next sweep.
            ids = await due(settings, after=after)
            if not ids:
                break
            await portraits.compute(ids)
            taken, after = taken + len(ids), ids[-1]
        return taken


# ---------------------------------------------------------------- recompute jobs


async def start(
    caller: Caller,
    *,
    customer_ids: Sequence[int] | None = None,
    segment_id: int | None = None,
    everyone: bool | None = None,
    enqueue: jobs.Enqueue,
) -> Job:
    """`recomputePortraits`: the RECOMPUTE_PORTRAITS job (QUEUED; its message goes once the transaction commits)."""
    require_role(caller, access.PORTRAIT_RECOMPUTERS)
    given = [
        name
        for name, value in (("customerIds", customer_ids), ("segmentId", segment_id), ("all", everyone or None))
        if value is not None
    ]
    if not given:
        raise DomainError(
            ErrorCode.REQUIRED, "Say whose portraits to recompute: customerIds, segmentId or all: true", "all"
        )
    if len(given) > 1:
        raise invalid(given[1], f"Give exactly one of customerIds, segmentId and all, not {' and '.join(given)}")
    if customer_ids is not None:
        params: dict = {"customer_ids": await _visible_ids(caller, customer_ids)}
    elif segment_id is not None:
        await segments.member_ids_query(caller, segment_id, "segmentId")  # NOT_FOUND / INVALID now, not later
        params = {"segment_id": segment_id}
    else:
        params = {"all": True}
    return await jobs.create(caller, RECOMPUTE_JOB, params, enqueue)


async def _visible_ids(caller: Caller, customer_ids: Sequence[int]) -> list[int]:
    if not customer_ids:
        raise invalid("customerIds", "customerIds must name at least one customer")
    if len(customer_ids) > MAX_IDS:
        raise invalid("customerIds", f"At most {MAX_IDS} customers at once; recompute a segment or all instead")
    found = set(await customers.visible(caller).filter(id__in=list(customer_ids)).values_list("id", flat=True))
    missing = [not_found("Customer", ["customerIds", str(n)]) for n, pk in enumerate(customer_ids) if pk not in found]
    if missing:
        raise DomainErrors(missing)
    return sorted(found)


async def nightly(enqueue: jobs.Enqueue) -> Job | None:
    """The nightly full recompute, unless a full recompute is queued or running already."""
    unfinished = await Job.filter(kind=RECOMPUTE_JOB, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).values_list(
        "params", flat=True
    )
    if any(params.get("all") for params in unfinished):
        log.info("a full portrait recompute is under way; the nightly one is skipped")
        return None
    return await jobs.create(COMMAND_LINE, RECOMPUTE_JOB, {"all": True}, enqueue)


async def _audience(caller: Caller, params: dict) -> list[int]:
    """The ids to compute, evaluated now as the requester sees them, ascending."""
    if params.get("segment_id") is not None:
        qs = await segments.member_ids_query(caller, params["segment_id"], "segmentId")
    elif params.get("customer_ids") is not None:
        qs = customers.visible(caller).filter(id__in=params["customer_ids"])
    else:
        qs = customers.visible(caller)
    return await qs.order_by("id").values_list("id", flat=True)


async def run(params: dict, progress: jobs.Progress) -> jobs.InBatches:
    """Job handler (RECOMPUTE_PORTRAITS): splits the audience into batches, one message each (a re-delivered
    job keeps the batches it stored and sends again those not done)."""
    job = progress.job
    stored = await JobBatch.filter(job_id=job.id).values_list("params", flat=True)
    if stored:
        return await jobs.split(progress, [], {"customers": sum(len(p["ids"]) for p in stored), "batches": len(stored)})
    caller = await jobs.requester(job, access.PORTRAIT_RECOMPUTERS, "this recompute")
    ids = await _audience(caller, params)
    size = active_settings().of(portraits.PortraitSettings).portrait_batch_size
    batches = [{"ids": ids[n : n + size]} for n in range(0, len(ids), size)]
    # Renewed here, once, when they are missing or old: otherwise every batch starting at once would find them
    # so and scan all the holdings itself.
    await portraits.co_holding()
    return await jobs.split(progress, batches, {"customers": len(ids), "batches": len(batches)})


async def compute_batch(job: Job, params: dict) -> None:
    """One batch of a RECOMPUTE_PORTRAITS job (services.jobs.run_batch runs it in the transaction that marks
    the batch done)."""
    await portraits.compute(params["ids"])
