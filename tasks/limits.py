from services import limits
from tasks.broker import actor, every


@actor(queue_name="default", max_retries=3, schedule=every(minutes=60))
async def purge_rate_windows() -> None:
    await limits.purge()
