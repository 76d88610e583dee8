"""Interactions with customers; an INQUIRY is a consultation, OPEN until resolved with an outcome.

`on_resolved(callback)`: other domains hear of a consultation resolved (by `resolve`, or logged resolved with its
outcome), inside the transaction that resolves it; the post-consultation survey is sent that way
(services.surveys). A consultation is resolved once: nothing reopens it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.expressions import Q, Subquery
from tortoise.queryset import QuerySet

from models.customers import Channel, CustomerStatus
from models.interactions import Direction, Interaction, InteractionKind, InteractionStatus
from services import access, clock, customer_rules, customers, identity, portraits, timeline
from services.access import ALL_ROLES, Caller, require_role
from services.errors import DomainError, ErrorCode, invalid, not_found
from services.filters import FilterParams

MAX_SUBJECT, MAX_TEXT = 200, 20_000
MAX_DURATION = 24 * 60 * 60

ResolvedHook = Callable[[Interaction], Awaitable[None]]
_resolved_hooks: list[ResolvedHook] = []


def on_resolved(callback: ResolvedHook) -> None:
    """Call `await callback(interaction)` each time a consultation (INQUIRY) is resolved, inside the transaction
    that resolves it, with the interaction as resolved. Registering twice registers once."""
    if callback not in _resolved_hooks:
        _resolved_hooks.append(callback)


async def _resolved(interaction: Interaction) -> None:
    if interaction.kind == InteractionKind.INQUIRY and interaction.status == InteractionStatus.RESOLVED:
        for hook in list(_resolved_hooks):
            await hook(interaction)


def visible(caller: Caller) -> QuerySet[Interaction]:
    require_role(caller, ALL_ROLES)
    if customers.home_branch(caller) is None:
        return Interaction.all()
    return Interaction.filter(customer_id__in=Subquery(customers.visible(caller).values("id")))


def _text(value: str | None, field: str, limit: int) -> str | None:
    if value is None or not value.strip():
        return None
    if len(value) > limit:
        raise invalid(field, f"{field} must be at most {limit} characters")
    return value.strip()


async def log(
    caller: Caller,
    customer_id: int,
    *,
    channel: Channel,
    direction: Direction,
    kind: InteractionKind,
    subject: str,
    content: str | None = None,
    outcome: str | None = None,
    status: InteractionStatus | None = None,
    occurred_at: datetime | None = None,
    duration_seconds: int | None = None,
) -> Interaction:
    require_role(caller, access.INTERACTION_WRITERS)
    customer = await customers.get(caller, customer_id, "customerId")
    if customer.status == CustomerStatus.ERASED:
        raise invalid("customerId", "An erased customer has no new interactions")
    subject_text = _text(subject, "subject", MAX_SUBJECT)
    if subject_text is None:
        raise DomainError(ErrorCode.REQUIRED, "subject is required", "subject")
    outcome = _text(outcome, "outcome", MAX_TEXT)
    # A consultation stays open until answered; other kinds are records of something already done.
    status = status or (
        InteractionStatus.OPEN if kind == InteractionKind.INQUIRY and not outcome else InteractionStatus.RESOLVED
    )
    if status == InteractionStatus.RESOLVED and kind == InteractionKind.INQUIRY and not outcome:
        raise DomainError(ErrorCode.REQUIRED, "A resolved consultation needs its outcome", "outcome")
    now = clock.now()
    occurred_at = occurred_at or now
    if occurred_at > now + timedelta(minutes=5):
        raise invalid("occurredAt", "occurredAt must not be in the future")
    if duration_seconds is not None and not 0 <= duration_seconds <= MAX_DURATION:
        raise invalid("durationSeconds", "durationSeconds must be between 0 and 86400")
    interaction = await Interaction.create(
        customer=customer,
        channel=channel,
        direction=direction,
        kind=kind,
        status=status,
        subject=subject_text,
        content=_text(content, "content", MAX_TEXT),
        outcome=outcome,
        staff=caller.staff,
        occurred_at=occurred_at,
        duration_seconds=duration_seconds,
        resolved_at=now if status == InteractionStatus.RESOLVED else None,
    )
    await portraits.mark_stale([customer.id])
    await _resolved(interaction)
    return interaction


async def resolve(caller: Caller, interaction_id: int, outcome: str) -> Interaction:
    require_role(caller, access.INTERACTION_WRITERS)
    interaction = await visible(caller).get_or_none(id=interaction_id)
    if interaction is None:
        raise not_found("Interaction")
    outcome_text = _text(outcome, "outcome", MAX_TEXT)
    if outcome_text is None:
        raise DomainError(ErrorCode.REQUIRED, "outcome is required", "outcome")
    # Conditional, so that two people resolving at once cannot both succeed.
    done = await Interaction.filter(id=interaction.id, status=InteractionStatus.OPEN).update(
        status=InteractionStatus.RESOLVED, outcome=outcome_text, resolved_at=clock.now()
    )
    if not done:
        raise DomainError(ErrorCode.INVALID_TRANSITION, "This interaction is resolved already", "id")
    await portraits.mark_stale([interaction.customer_id])
    resolved = await Interaction.get(id=interaction.id)
    await _resolved(resolved)
    return resolved


@dataclass
class InteractionFilter(FilterParams):
    customer_id: int | None = None
    staff_id: int | None = None
    channel: list[Channel] | None = None
    kind: list[InteractionKind] | None = None
    status: InteractionStatus | None = None
    occurred_after: datetime | None = None
    occurred_before: datetime | None = None
    search: str | None = None


def matching(caller: Caller, interaction_filter: InteractionFilter) -> QuerySet[Interaction]:
    """The interactions of `interaction_filter` among those the caller may see, searched as the caller may."""
    sees_pii = caller.operator or customer_rules.sees_pii(caller.role)
    return apply_filter(visible(caller), interaction_filter, sees_pii=sees_pii)


def apply_filter(qs: QuerySet[Interaction], f: InteractionFilter, *, sees_pii: bool = True) -> QuerySet[Interaction]:
    if f.customer_id is not None:
        qs = qs.filter(customer_id=f.customer_id)
    if f.staff_id is not None:
        qs = qs.filter(staff_id=f.staff_id)
    if f.channel:
        qs = qs.filter(channel__in=f.channel)
    if f.kind:
        qs = qs.filter(kind__in=f.kind)
    if f.status:
        qs = qs.filter(status=f.status)
    if f.occurred_after:
        qs = qs.filter(occurred_at__gte=f.occurred_after)
    if f.occurred_before:
        qs = qs.filter(occurred_at__lt=f.occurred_before)
    if f.search and f.search.strip():
        text = f.search.strip()
        if sees_pii or not identity.probes_identifiers(text):
            qs = qs.filter(Q(subject__icontains=text) | Q(content__icontains=text))
        else:  # digits typed into the texts are masked for this viewer: a search may not probe them
            qs = qs.filter(id__in=[])
    return qs


timeline.register(
    timeline.Source(
        "INTERACTION",
        Interaction,
        "occurred_at",
        lambda r: (r.subject, timeline.short(r.outcome or r.content)),
        node="Interaction",
    )
)
