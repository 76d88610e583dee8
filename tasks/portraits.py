"""The portraits' work for the workers (services/portrait_jobs.py): the debounced sweep of stale portraits,
the RECOMPUTE_PORTRAITS job (split into batches run by run_job_batch, tasks/jobs.py) and its nightly run."""

from core.db import atomic
from core.settings import Settings
from services import access, jobs, portrait_jobs, portraits
from tasks.broker import actor, daily, every, runtime

jobs.register_kind(
    portrait_jobs.RECOMPUTE_JOB,
    portrait_jobs.run,
    batch=portrait_jobs.compute_batch,
    starters=access.PORTRAIT_RECOMPUTERS,
)


def _sweep_period(settings: Settings) -> int:
    return settings.of(portraits.PortraitSettings).sweep_seconds


@actor(
    queue_name="default",
    max_retries=0,
    time_limit=5 * 60 * 1000,
    max_age=60 * 1000,  # sweeps sent while no worker ran are dropped, not run one after the other
    schedule=every(seconds=_sweep_period),
)
async def sweep_stale_portraits() -> None:
    """Recompute the portraits stale for longer than the debounce window (a failed sweep is the next one's)."""
    await portrait_jobs.sweep(runtime().queue.settings.of(portraits.PortraitSettings))


@actor(queue_name="default", max_retries=3, schedule=daily(hour=18, minute=30))
async def recompute_all_portraits() -> None:
    """The nightly full recompute (02:30 in Beijing): a RECOMPUTE_PORTRAITS job of every customer."""
    queue = runtime().queue
    async with atomic():
        await portrait_jobs.nightly(lambda job_id: queue.send("run_job", job_id))
