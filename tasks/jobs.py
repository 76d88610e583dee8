from services import jobs
from tasks.broker import actor, every, runtime


@actor(queue_name="jobs", max_retries=5, time_limit=4 * 60 * 60 * 1000)
async def run_job(job_id: int) -> None:
    await jobs.run(job_id, runtime().pubsub.publish)


@actor(queue_name="default", max_retries=0, schedule=every(minutes=1))
async def requeue_stale_jobs() -> None:
    """Queued jobs whose message was lost (a crash between commit and send) are sent again."""
    queue = runtime().queue
    for job_id in await jobs.stale_queued():
        queue.send("run_job", job_id)
