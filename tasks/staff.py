from services import auth
from tasks.broker import actor, daily


@actor(queue_name="default", max_retries=3, schedule=daily(hour=3, minute=17))
async def purge_expired_tokens() -> None:
    await auth.purge_expired_tokens()
