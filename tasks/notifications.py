"""Sending the outbox: each message names a batch of notifications (up to notifications.DELIVERY_BATCH) and
makes one delivery attempt of each; the batch is retried with backoff while the service asks for it; the sweep
re-sends what was lost."""

from datetime import timedelta

from dramatiq import Retry

from core.settings import Settings
from services import notifications
from tasks.broker import actor, every, runtime


def _only_when_the_service_asks(retries: int, exception: BaseException) -> bool:
    """The attempts and the backoff come from the settings and are counted on the row (services.notifications):
    Dramatiq retries exactly when `deliver` asked for it. Anything else (a bug, the database down) leaves the
    row claimed, and the sweep sends it again when the claim runs out."""
    return isinstance(exception, Retry)


@actor(queue_name="notifications", retry_when=_only_when_the_service_asks)
async def send_notifications(notification_ids: list[int]) -> None:
    settings = runtime().queue.settings.of(notifications.NotificationSettings)
    wait = await notifications.deliver(notification_ids, settings)
    if wait is not None:  # what failed transiently is held until then; the rest is done and is not claimed again
        raise Retry("some notifications of the batch are tried again", delay=int(wait.total_seconds() * 1000))


def _sweep_period(settings: Settings) -> int:
    return settings.of(notifications.NotificationSettings).notification_sweep_seconds


@actor(queue_name="default", max_retries=0, max_age=60 * 1000, schedule=every(seconds=_sweep_period))
async def requeue_lost_notifications() -> None:
    """Queued notifications whose message was lost, or whose worker died mid-attempt, are sent again."""
    queue = runtime().queue
    settings = queue.settings.of(notifications.NotificationSettings)
    lost = await notifications.lost(older_than=timedelta(seconds=settings.notification_lost_seconds))
    for batch in notifications.delivery_batches(lost):
        queue.send(notifications.SEND_ACTOR, batch)
