from services import auth
from tasks.broker import actor


@actor(queue_name="default", max_retries=3)
async def purge_expired_tokens() -> None:
    await auth.purge_expired_tokens()
