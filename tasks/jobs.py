from datetime import timedelta

from core.settings import Settings
from services import jobs
from tasks.broker import actor, every, runtime


def _sweep_period(settings: Settings) -> int:
    return settings.of(jobs.JobSettings).job_sweep_seconds


@actor(queue_name="jobs", max_retries=5, time_limit=4 * 60 * 60 * 1000)
async def run_job(job_id: int) -> None:
    await jobs.run(job_id, runtime().pubsub.publish)


@actor(queue_name="default", max_retries=0, schedule=every(minutes=1))
async def requeue_stale_jobs() -> None:
    """Queued jobs whose message was lost (a crash between commit and send) are sent again."""
    queue = runtime().queue
    age = queue.settings.of(jobs.JobSettings).job_queued_seconds
    for job_id in await jobs.stale_queued(timedelta(seconds=age)):
        queue.send("run_job", job_id)


@actor(
    queue_name="default",
    max_retries=0,
    max_age=60 * 1000,  # sweeps sent while no worker ran are dropped, not run one after the other
    schedule=every(seconds=_sweep_period),
)
async def requeue_lost_jobs() -> None:
    """Running jobs and batches whose heartbeat went stale (their worker was killed, or hangs) are handed back and
    sent again; they resume after their checkpoint (services.jobs.lost)."""
    queue = runtime().queue
    timeout = queue.settings.of(jobs.JobSettings).heartbeat_timeout
    for actor_name, args in await jobs.lost(timeout):
        queue.send(actor_name, *args)


@actor(queue_name="default", max_retries=0)
async def fail_job_batch(message: dict, retries: dict) -> None:
    """A batch whose retries are used up (Dramatiq's `on_retry_exhausted`) fails its job (on the default queue:
    not behind the job's other batches)."""
    job_id, seq = message["args"]
    await jobs.fail(job_id, f"batch {seq} failed {retries.get('retries', 0) + 1} times", runtime().pubsub.publish)


@actor(
    queue_name="jobs",
    max_retries=3,
    min_backoff=1000,
    time_limit=30 * 60 * 1000,
    on_retry_exhausted="fail_job_batch",
)
async def run_job_batch(job_id: int, seq: int) -> None:
    """One batch of a job split into batches (services.jobs.split)."""
    await jobs.run_batch(job_id, seq, runtime().pubsub.publish)


@actor(queue_name="default", max_retries=0, schedule=every(minutes=1))
async def requeue_stalled_batches() -> None:
    """Batches of jobs that stopped moving (their worker died holding them, or their message was lost) are sent
    again; a batch done meanwhile is skipped by its actor."""
    queue = runtime().queue
    stall = queue.settings.of(jobs.JobSettings).job_stall_seconds
    for actor_name, args in await jobs.stalled(timedelta(seconds=stall)):
        queue.send(actor_name, *args)
