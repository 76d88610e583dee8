"""The outbox: messages to customers, written in the same transaction as their cause and sent by a worker.

- `enqueue(...)` writes one row (QUEUED) in the caller's transaction, `enqueue_many(drafts)` many with one INSERT
  (a campaign's batch); once the transaction commits, the `send_notifications` messages go out, each naming up
  to DELIVERY_BATCH rows (services.dispatch).
- `deliver(ids, settings)` is one delivery attempt of each row of a message, run by that actor: it claims the
  rows (one conditional UPDATE … RETURNING: those QUEUED and not held by another worker; each is held for
  CRM_NOTIFICATION_CLAIM_SECONDS, default `CLAIM_LEASE`, and its attempt counted), sends them through the
  channel's adapter (services.notification_channels: one SMTP connection, one HTTP client for the batch) and
  records SENT or FAILED for all of them in one transaction. Only the claimer sends, and a SENT or FAILED row
  is never claimed again, so a re-delivered message never sends twice. A transient failure keeps the row
  QUEUED, held until its next attempt is due (exponential backoff from CRM_NOTIFICATION_BACKOFF_MS), until
  CRM_NOTIFICATION_ATTEMPTS attempts were made: then it is FAILED with `last_error`. A channel without an
  adapter (LETTER, BRANCH, ...) is FAILED at once, with a `last_error` that says what to do by hand; EMAIL and
  SMS without a configured server go to the mail drop (development).
- `lost()` is the sweep's list (every CRM_NOTIFICATION_SWEEP_SECONDS): QUEUED rows nobody holds that have waited
  longer than CRM_NOTIFICATION_LOST_SECONDS, default `LOST_AFTER` (their message was lost: the broker was down,
  the process died after the commit) and rows whose claim ran out (the
  worker died between claiming and recording: what it sent but did not record goes out again, the one case of
  a second e-mail, as with any outbox that cannot send and record in one step).
- `on_outcome(callback)`: other domains hear about SENT and FAILED rows, a batch at a time, in the transaction
  that records them.
- `retry(caller, id)`: a FAILED notification queued again, with all its attempts, once the channel is fixed.

The API shows the recipient masked, whatever the role; erasure redacts recipient and body, and fails what is
still queued.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from tortoise.expressions import F, Q, Subquery
from tortoise.functions import Count
from tortoise.queryset import QuerySet

from core.db import atomic
from core.settings import SettingsError, section
from core.sql import insert_returning_ids, update_returning
from models.customers import Channel, Customer, CustomerStatus
from models.notifications import Notification, NotificationStatus
from services import access, clock, customers, dispatch
from services.access import ALL_ROLES, Caller, require_role
from services.customer_erasure import REDACTED
from services.customer_relations import Relation, register_scrubber
from services.customer_rules import mask_address
from services.errors import DomainError, ErrorCode, invalid, not_found
from services.filters import FilterParams
from services.identity import IdentityError, mask_email, mask_phone, validate_email
from services.notification_channels import (
    MailDrop,
    Message,
    NoSender,
    Sender,
    SendFailed,
    SmsGateway,
    SmtpSender,
    parse_smtp_url,
)

log = logging.getLogger(__name__)

SEND_ACTOR = "send_notifications"  # tasks/notifications.py: a list of ids
DELIVERY_BATCH = 100  # notifications per message: one claim, one connection, one record for them all
CLAIM_LEASE = timedelta(minutes=5)  # far longer than an SMTP or gateway timeout
LOST_AFTER = timedelta(minutes=2)  # an unclaimed QUEUED row this old lost its message
SWEEP_BATCH = 500
MAX_BACKOFF = timedelta(hours=1)
MAX_RECIPIENT, MAX_SUBJECT, MAX_ERROR = 254, 200, 1000
ERASED_BEFORE_SENDING = "not sent: the customer was erased"


@section
@dataclass(frozen=True)
class NotificationSettings:
    # CRM_SMTP_URL: smtp://[user:pass@]host:port[?starttls=true] or smtps://...; unset: the mail drop.
    smtp_url: str | None = field(default=None, repr=False)  # may hold a password
    mail_from: str = "noreply@bank.example"  # CRM_MAIL_FROM
    sms_gateway_url: str | None = None  # CRM_SMS_GATEWAY_URL: http(s)://...; unset: the mail drop
    sms_gateway_secret: str | None = field(default=None, repr=False)  # CRM_SMS_GATEWAY_SECRET: signs each request
    mail_drop_dir: str = "var/outbox"  # CRM_MAIL_DROP_DIR: one file per message of an unconfigured channel
    notification_attempts: int = 5  # CRM_NOTIFICATION_ATTEMPTS: attempts before FAILED
    notification_backoff_ms: int = 10_000  # CRM_NOTIFICATION_BACKOFF_MS: the first retry's delay, doubling
    # CRM_NOTIFICATION_CLAIM_SECONDS: how long a worker holds the rows it sends; a dead worker's rows are sent
    # again after it. Far longer than an SMTP or gateway timeout.
    notification_claim_seconds: int = int(CLAIM_LEASE.total_seconds())
    # CRM_NOTIFICATION_LOST_SECONDS: an unclaimed QUEUED row this old lost its message; the sweep sends it again.
    notification_lost_seconds: int = int(LOST_AFTER.total_seconds())
    # CRM_NOTIFICATION_SWEEP_SECONDS: how often that sweep (requeue_lost_notifications) runs.
    notification_sweep_seconds: int = 60

    def check(self) -> None:
        if self.smtp_url is not None:
            try:
                parse_smtp_url(self.smtp_url)
            except ValueError as error:
                raise SettingsError(f"CRM_SMTP_URL {error}") from None
        try:
            validate_email(self.mail_from)
        except IdentityError:
            raise SettingsError(f"CRM_MAIL_FROM must be an e-mail address, not {self.mail_from!r}") from None
        if (self.sms_gateway_url is None) != (self.sms_gateway_secret is None):
            raise SettingsError("CRM_SMS_GATEWAY_URL and CRM_SMS_GATEWAY_SECRET must be set together")
        if self.sms_gateway_url is not None:
            gateway = urlparse(self.sms_gateway_url)
            if gateway.scheme not in ("http", "https") or not gateway.hostname:
                raise SettingsError("CRM_SMS_GATEWAY_URL must be an http:// or https:// URL")
        if self.sms_gateway_secret is not None and len(self.sms_gateway_secret) < 16:
            raise SettingsError("CRM_SMS_GATEWAY_SECRET must be at least 16 characters")
        if not self.mail_drop_dir.strip():
            raise SettingsError("CRM_MAIL_DROP_DIR must name a folder")
        if not 1 <= self.notification_attempts <= 20:
            raise SettingsError("CRM_NOTIFICATION_ATTEMPTS must be between 1 and 20")
        if not 1 <= self.notification_backoff_ms <= 3_600_000:
            raise SettingsError("CRM_NOTIFICATION_BACKOFF_MS must be between 1 and 3600000")
        if not 1 <= self.notification_claim_seconds <= 86_400:
            raise SettingsError("CRM_NOTIFICATION_CLAIM_SECONDS must be between 1 and 86400")
        if not 1 <= self.notification_lost_seconds <= 86_400:
            raise SettingsError("CRM_NOTIFICATION_LOST_SECONDS must be between 1 and 86400")
        if not 1 <= self.notification_sweep_seconds <= 3_600:
            raise SettingsError("CRM_NOTIFICATION_SWEEP_SECONDS must be between 1 and 3600")

    def backoff(self, attempts_made: int) -> timedelta:
        """The wait before the next attempt: the first delay, doubled after each further attempt."""
        return min(timedelta(milliseconds=self.notification_backoff_ms * 2 ** (attempts_made - 1)), MAX_BACKOFF)


# ---------------------------------------------------------------- writing to the outbox


def draft(
    channel: Channel,
    recipient: str,
    body: str,
    *,
    subject: str | None = None,
    customer_id: int | None = None,
    complaint_id: int | None = None,
) -> Notification:
    """A checked, unsaved outbox row for `enqueue_many`."""
    recipient = (recipient or "").strip()
    if not recipient:
        raise DomainError(ErrorCode.REQUIRED, "A notification needs a recipient", "recipient")
    if len(recipient) > MAX_RECIPIENT:
        raise invalid("recipient", f"recipient must be at most {MAX_RECIPIENT} characters")
    if not (body or "").strip():
        raise DomainError(ErrorCode.REQUIRED, "A notification needs a body", "body")
    if subject is not None and len(subject) > MAX_SUBJECT:
        raise invalid("subject", f"subject must be at most {MAX_SUBJECT} characters")
    return Notification(
        customer_id=customer_id,
        complaint_id=complaint_id,
        channel=channel,
        recipient=recipient,
        subject=subject,
        body=body,
        created_at=clock.now(),
    )


async def enqueue_many(drafts: Sequence[Notification]) -> Sequence[Notification]:
    """QUEUED outbox rows (from `draft`), written in the caller's transaction with one INSERT; once it commits,
    the workers are told, DELIVERY_BATCH rows to a message."""
    await write_many(drafts)
    announce(drafts)
    return drafts


async def write_many(drafts: Sequence[Notification]) -> Sequence[Notification]:
    """`enqueue_many`'s first half, for a cause that may still fail after writing them in a savepoint of its
    own: the rows, with one INSERT; `announce` them once that savepoint is through."""
    return await insert_returning_ids(drafts)


def announce(written: Sequence[Notification]) -> None:
    """`enqueue_many`'s second half: the workers are told of these rows once the transaction commits."""
    for batch in delivery_batches([row.id for row in written]):
        dispatch.send_after_commit(SEND_ACTOR, batch)


def delivery_batches(notification_ids: Sequence[int]) -> list[list[int]]:
    """The ids as SEND_ACTOR's messages take them: DELIVERY_BATCH to a message."""
    ids = list(notification_ids)
    return [ids[start : start + DELIVERY_BATCH] for start in range(0, len(ids), DELIVERY_BATCH)]


async def enqueue(channel: Channel, recipient: str, body: str, **details: Any) -> Notification:
    """One QUEUED outbox row (`draft`'s arguments), written in the caller's transaction; the worker is told once
    it commits."""
    [notification] = await enqueue_many([draft(channel, recipient, body, **details)])
    return notification


# ---------------------------------------------------------------- delivery


async def claim(notification_ids: Sequence[int], lease: timedelta = CLAIM_LEASE) -> list[Notification]:
    """The rows this worker is to send now, each held for one attempt (counted): of these ids, those still
    QUEUED that no other worker holds. One conditional UPDATE … RETURNING, so that of two workers with the same
    ids each row goes to one of them."""
    now = clock.now()
    taken = await update_returning(
        Notification.filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
            id__in=list(notification_ids),
            status=NotificationStatus.QUEUED,
        ).update(claimed_until=now + lease, attempts=F("attempts") + 1),
        "id",
    )
    if not taken:
        return []
    return await Notification.filter(id__in=[row["id"] for row in taken]).order_by("id")


@dataclass
class _Outcomes:
    """What one delivery attempt of a batch came to, recorded together by `_record`."""

    sent: list[Notification] = field(default_factory=list)
    failed: list[tuple[Notification, str]] = field(default_factory=list)
    to_retry: list[tuple[Notification, str, timedelta]] = field(default_factory=list)
    gave_up: list[Notification] = field(default_factory=list)  # every attempt used up by workers that died


async def deliver(notification_ids: Sequence[int], settings: NotificationSettings) -> timedelta | None:
    """One delivery attempt of each of these notifications that is QUEUED and not held by another worker.
    Returns the wait before trying the batch again (the longest backoff of the rows that failed transiently;
    the others are no longer QUEUED or are held until then), or None when there is nothing more to do.

    A channel's rows go through one sender (one SMTP connection, one HTTP client). A worker that dies after
    sending some of them and before recording them leaves them claimed: they are sent again once the claim runs
    out, as a single notification would be."""
    claimed = await claim(notification_ids, timedelta(seconds=settings.notification_claim_seconds))
    outcomes = _Outcomes()
    by_channel: dict[Channel, list[Notification]] = {}
    for notification in claimed:
        if notification.attempts > settings.notification_attempts:
            outcomes.gave_up.append(notification)
        else:
            by_channel.setdefault(notification.channel, []).append(notification)
    for channel, rows in by_channel.items():
        async with aclosing(sender_for(channel, settings)) as sender:
            for notification in rows:
                await _attempt(sender, notification, settings, outcomes)
    await _record(outcomes, settings)
    if claimed:  # one line a batch; each failure has its own WARNING line
        log.info(
            "notifications delivered: %s sent, %s failed, %s to try again (of %s claimed)",
            len(outcomes.sent),
            len(outcomes.failed) + len(outcomes.gave_up),
            len(outcomes.to_retry),
            len(claimed),
        )
    return max((wait for _, _, wait in outcomes.to_retry), default=None)


async def _attempt(
    sender: Sender, notification: Notification, settings: NotificationSettings, outcomes: _Outcomes
) -> None:
    try:
        await sender.send(_message(notification))
    except SendFailed as failure:
        reason = _without_recipient(failure.reason, notification)
        allowed = settings.notification_attempts
        if failure.transient and notification.attempts < allowed:
            wait = settings.backoff(notification.attempts)
            outcomes.to_retry.append((notification, reason, wait))
            log.warning(
                "notification %s: attempt %s of %s failed, next in %s: %s",
                notification.id,
                notification.attempts,
                allowed,
                wait,
                reason,
            )
        else:
            outcomes.failed.append((notification, reason))
            log.warning(
                "notification %s FAILED after %s attempt(s): %s", notification.id, notification.attempts, reason
            )
    else:
        outcomes.sent.append(notification)


def sender_for(channel: Channel, settings: NotificationSettings) -> Sender:
    """The channel's adapter; EMAIL and SMS without a configured server go to the mail drop."""
    if channel == Channel.EMAIL and settings.smtp_url:
        return SmtpSender(settings.smtp_url, settings.mail_from)
    if channel == Channel.SMS and settings.sms_gateway_url and settings.sms_gateway_secret:
        return SmsGateway(settings.sms_gateway_url, settings.sms_gateway_secret)
    if channel in (Channel.EMAIL, Channel.SMS):
        return MailDrop(settings.mail_drop_dir, settings.mail_from)
    return NoSender(channel)


def _message(notification: Notification) -> Message:
    return Message(
        notification_id=notification.id,
        channel=notification.channel,
        recipient=notification.recipient,
        masked_recipient=masked_recipient(notification),
        subject=notification.subject,
        body=notification.body,
    )


def _without_recipient(reason: str, notification: Notification) -> str:
    """An error as it is kept and shown: a server's reply may quote the address, which the API only shows masked."""
    return reason.replace(notification.recipient, masked_recipient(notification))[:MAX_ERROR]


# ---------------------------------------------------------------- outcomes

Outcome = Callable[[Sequence[Notification]], Awaitable[None]]
_outcome_callbacks: list[Outcome] = []


def on_outcome(callback: Outcome) -> Callable[[], None]:
    """Call `await callback(notifications)` each time notifications are recorded SENT or FAILED (the rows as
    recorded: status, attempts, last_error, sent_at; a batch's rows together), in the transaction that records
    them. Each callback runs in a savepoint of its own: one that raises is logged and undone alone, never the
    outcome (a message that went out must not be sent again). Registering the same callback twice registers it
    once. Returns a function that removes it again."""
    if callback not in _outcome_callbacks:
        _outcome_callbacks.append(callback)

    def remove() -> None:
        if callback in _outcome_callbacks:
            _outcome_callbacks.remove(callback)

    return remove


async def _record(outcomes: _Outcomes, settings: NotificationSettings) -> None:
    """Every outcome of an attempt in one transaction, a statement per kind of outcome (and per error text), then
    the callbacks. A row that is no longer QUEUED (erased meanwhile) is left as it is."""
    now = clock.now()
    allowed = settings.notification_attempts
    gave_up = f"gave up after {allowed} attempts: the last one never finished (its worker was lost)"
    async with atomic():
        for (reason, wait), rows in _grouped((r, (reason, wait)) for r, reason, wait in outcomes.to_retry).items():
            # Held until the retry is due, so that the sweep leaves it to the retry until then.
            await _queued(rows).update(last_error=reason, claimed_until=now + wait)
        recorded = await _finish(outcomes.sent, {"status": NotificationStatus.SENT, "sent_at": now})
        for reason, rows in _grouped((r, reason) for r, reason in outcomes.failed).items():
            recorded += await _finish(rows, {"status": NotificationStatus.FAILED, "last_error": reason})
        recorded += await _finish(
            outcomes.gave_up,
            {"status": NotificationStatus.FAILED, "last_error": gave_up, "attempts": allowed},
        )
        if recorded:
            await _tell(sorted(recorded, key=lambda row: row.id))


def _grouped(pairs: Iterable[tuple[Notification, Hashable]]) -> dict[Any, list[Notification]]:
    groups: dict[Any, list[Notification]] = {}
    for row, key in pairs:
        groups.setdefault(key, []).append(row)
    return groups


def _queued(rows: Sequence[Notification]) -> QuerySet[Notification]:
    return Notification.filter(id__in=[row.id for row in rows], status=NotificationStatus.QUEUED)


async def _finish(rows: Sequence[Notification], changes: dict[str, Any]) -> list[Notification]:
    """SENT or FAILED for those of `rows` still QUEUED; those rows, as recorded."""
    if not rows:
        return []
    changes = {**changes, "claimed_until": None}
    done = {row["id"] for row in await update_returning(_queued(rows).update(**changes), "id")}
    finished = [row for row in rows if row.id in done]
    for row in finished:
        for name, value in changes.items():
            setattr(row, name, value)
    return finished


async def _tell(recorded: Sequence[Notification]) -> None:
    for callback in list(_outcome_callbacks):
        try:
            async with atomic():
                await callback(recorded)
        except Exception:
            log.exception(
                "outcome callback %s failed for notifications %s",
                callback.__qualname__,
                ", ".join(str(n.id) for n in recorded),
            )


# ---------------------------------------------------------------- the sweep and retries


async def lost(limit: int = SWEEP_BATCH, older_than: timedelta = LOST_AFTER) -> list[int]:
    """QUEUED rows to send again, oldest first: nobody holds them and they waited longer than `older_than` (the
    message was lost), or their claim ran out (the worker died). A row sent meanwhile is skipped by the claim."""
    now = clock.now()
    return await (
        Notification.filter(
            Q(claimed_until__isnull=True, created_at__lt=now - older_than) | Q(claimed_until__lt=now),
            status=NotificationStatus.QUEUED,
        )
        .order_by("id")
        .limit(limit)
        .values_list("id", flat=True)
    )


async def retry(caller: Caller, notification_id: int) -> Notification:
    """A FAILED notification QUEUED again with all its attempts (its last_error stays until the next outcome)."""
    require_role(caller, access.NOTIFICATION_RETRIERS)
    notification = await visible(caller).get_or_none(id=notification_id)
    if notification is None:
        raise not_found("Notification")
    if notification.status != NotificationStatus.FAILED:
        raise DomainError(
            ErrorCode.INVALID_TRANSITION,
            f"Only a FAILED notification is sent again; this one is {notification.status.value}",
            "id",
        )
    if notification.customer_id is not None:
        customer = await Customer.get(id=notification.customer_id)
        if customer.status == CustomerStatus.ERASED:
            raise invalid("id", "The customer was erased: there is nobody to send this to")
    queued = await Notification.filter(id=notification.id, status=NotificationStatus.FAILED).update(
        status=NotificationStatus.QUEUED, attempts=0, claimed_until=None
    )
    if not queued:
        raise DomainError(ErrorCode.INVALID_TRANSITION, "This notification was queued again meanwhile", "id")
    dispatch.send_after_commit(SEND_ACTOR, [notification.id])
    return await Notification.get(id=notification.id)


# ---------------------------------------------------------------- reading


def visible(caller: Caller) -> QuerySet[Notification]:
    """Every notification the caller may see: those of the customers they may see (bank-wide staff: all)."""
    require_role(caller, ALL_ROLES)
    if customers.home_branch(caller) is None:
        return Notification.all()
    return Notification.filter(customer_id__in=Subquery(customers.visible(caller).values("id")))


@dataclass
class NotificationFilter(FilterParams):
    customer_id: int | None = None
    status: list[NotificationStatus] | None = None


def apply_filter(qs: QuerySet[Notification], f: NotificationFilter) -> QuerySet[Notification]:
    if f.customer_id is not None:
        qs = qs.filter(customer_id=f.customer_id)
    if f.status:
        qs = qs.filter(status__in=f.status)
    return qs


# Secrets that a domain puts in a message for the customer alone (a survey link's token): staff never see them.
_SECRETS: list[re.Pattern[str]] = []
HIDDEN = "[已隐藏]"


def hide_in_body(pattern: re.Pattern[str]) -> None:
    """Declare text of a message body that is for the customer alone; `shown_body` replaces it."""
    if pattern not in _SECRETS:
        _SECRETS.append(pattern)


def shown_body(notification: Notification) -> str:
    """The body as staff see it: every declared secret hidden."""
    body = notification.body
    for pattern in _SECRETS:
        body = pattern.sub(HIDDEN, body)
    return body


def masked_recipient(notification: Notification) -> str:
    """The address as the API and the logs show it: ``z***@example.com``, ``138****5678``, ``北京市朝阳区****``."""
    if notification.channel == Channel.EMAIL:
        return mask_email(notification.recipient)
    if notification.channel in (Channel.SMS, Channel.PHONE):
        return mask_phone(notification.recipient)
    return mask_address(notification.recipient)


async def counts() -> dict[tuple[str, str], int]:
    """How many notifications there are per (channel, status), for /metrics, in one GROUP BY: every status of
    every channel that has any notification, zeros included, so that a count that fell to 0 shows as 0."""
    rows = await Notification.annotate(n=Count("id")).group_by("channel", "status").values("channel", "status", "n")
    found = {(Channel(row["channel"]).value, NotificationStatus(row["status"]).value): row["n"] for row in rows}
    channels = sorted({channel for channel, _ in found})
    return {(c, s.value): found.get((c, s.value), 0) for c in channels for s in NotificationStatus}


# ---------------------------------------------------------------- erasure


async def _scrub_notifications(relation: Relation, customer_ids: list[int]) -> None:
    # Nothing more goes out to an erased customer; what was kept says that something was sent, not what or where.
    queued = await relation.rows(customer_ids).filter(status=NotificationStatus.QUEUED)
    async with atomic():
        recorded = await _finish(queued, {"status": NotificationStatus.FAILED, "last_error": ERASED_BEFORE_SENDING})
        if recorded:
            await _tell(recorded)
    await relation.rows(customer_ids).update(recipient=REDACTED, body=REDACTED)


register_scrubber(Notification, _scrub_notifications)
