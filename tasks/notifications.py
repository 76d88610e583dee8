"""Sending the outbox: one delivery attempt per message, retried with backoff while the service asks for it,
and the sweep that re-sends what was lost."""

from dramatiq import Retry

from services import notifications
from tasks.broker import actor, every, runtime


def _only_when_the_service_asks(retries: int, exception: BaseException) -> bool:
    """The attempts and the backoff come from the settings and are counted on the row (services.notifications):
    Dramatiq retries exactly when `deliver` asked for it. Anything else (a bug, the database down) leaves the
    row claimed, and the sweep sends it again when the claim runs out."""
    return isinstance(exception, Retry)


@actor(queue_name="notifications", retry_when=_only_when_the_service_asks)
async def send_notification(notification_id: int) -> None:
    settings = runtime().queue.settings.of(notifications.NotificationSettings)
    wait = await notifications.deliver(notification_id, settings)
    if wait is not None:
        raise Retry(f"notification {notification_id} is tried again", delay=int(wait.total_seconds() * 1000))


@actor(queue_name="default", max_retries=0, schedule=every(minutes=1))
async def requeue_lost_notifications() -> None:
    """Queued notifications whose message was lost, or whose worker died mid-attempt, are sent again."""
    queue = runtime().queue
    for notification_id in await notifications.lost():
        queue.send(notifications.SEND_ACTOR, notification_id)
