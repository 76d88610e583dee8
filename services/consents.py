"""A customer's consents (docs/DOMAIN.md): the recorded answers per purpose and channel, their history and the
rule that decides whether a purpose is granted.

The rule, in one place (`granted_for`): a channel-specific answer wins over the general one (no channel),
which wins over the default (`CONSENT_DEFAULTS`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.connection import get_connection

from core.sql import Statement, rows_of
from models.customers import Channel, Consent, ConsentChange, ConsentPurpose, Customer, CustomerStatus
from services import access, customers, portraits
from services.access import Caller, require_role
from services.errors import DomainError, ErrorCode, invalid

# No record means: not granted, except SURVEY (service follow-up), granted until revoked (docs/DOMAIN.md).
CONSENT_DEFAULTS = {
    ConsentPurpose.MARKETING: False,
    ConsentPurpose.SURVEY: True,
    ConsentPurpose.PROFILING: False,
    ConsentPurpose.THIRD_PARTY_SHARING: False,
}


@dataclass(frozen=True)
class ConsentView:
    purpose: ConsentPurpose
    channel: Channel | None
    granted: bool
    source: str | None
    updated_at: datetime | None  # None: the default, never recorded


def consents_view(records: list[Consent], created_at: datetime) -> list[ConsentView]:
    """Recorded answers, plus the default for every purpose with no record."""
    views = [ConsentView(c.purpose, c.channel, c.granted, c.source, c.updated_at) for c in records]
    answered = {c.purpose for c in records if c.channel is None}
    for purpose, granted in CONSENT_DEFAULTS.items():
        if purpose not in answered:
            views.append(ConsentView(purpose, None, granted, "default", created_at))
    order = list(ConsentPurpose)
    return sorted(views, key=lambda v: (order.index(v.purpose), v.channel.value if v.channel else ""))


async def apply(caller: Caller, customer: Customer, consents: list[dict]) -> None:
    """Records each answer {purpose, channel?, granted, source?} (replacing the customer's earlier answer for
    the same purpose and channel) and its history entry. No checks: the caller's."""
    for item in consents:
        source = (item.get("source") or "").strip()[:64] or None
        await Consent.update_or_create(
            defaults={"granted": item["granted"], "source": source},
            customer=customer,
            purpose=item["purpose"],
            channel=item.get("channel"),
        )
        await ConsentChange.create(
            customer=customer,
            purpose=item["purpose"],
            channel=item.get("channel"),
            granted=item["granted"],
            source=source,
            actor=caller.staff,
        )
    if any(item["purpose"] == ConsentPurpose.PROFILING for item in consents):
        await portraits.mark_stale([customer.id])  # no recommendations without PROFILING consent (PIPL art. 24)


async def set_consents(caller: Caller, customer_id: int, consents: list[dict]) -> Customer:
    require_role(caller, access.CONSENT_WRITERS)
    customer = await customers.get(caller, customer_id, "customerId")
    if customer.status == CustomerStatus.ERASED:
        raise invalid("customerId", "An erased customer has no consents to change")
    if not consents:
        raise DomainError(ErrorCode.REQUIRED, "Give at least one consent", "consents")
    keys = [(c["purpose"], c.get("channel")) for c in consents]
    if len(set(keys)) != len(keys):
        raise invalid("consents", "Each purpose and channel may appear once")
    await apply(caller, customer, consents)
    return customer


def _granted(answers: dict[Channel | None, bool], purpose: ConsentPurpose, channel: Channel | None) -> bool:
    """The rule: a channel-specific answer wins over the general one, which wins over the default."""
    if channel is not None and channel in answers:
        return answers[channel]
    return answers.get(None, CONSENT_DEFAULTS[purpose])


async def granted_for(customer_ids: list[int], purpose: ConsentPurpose, channel: Channel | None = None) -> set[int]:
    """The ids among `customer_ids` whose consent to `purpose` (on `channel`, if given) is granted, in one
    query whatever their number (none for no ids). Plain rows: a portrait batch asks this for 1,000 ids."""
    ids = sorted(set(customer_ids))
    if not ids:
        return set()
    connection = get_connection("default")
    s = Statement(connection)
    # Placeholders are taken in the order they appear (SQLite's are positional).
    sql = f"SELECT customer_id, channel, granted FROM consent WHERE {s.covering('customer_id', ids)}"
    sql += f" AND purpose = {s.param(purpose.value)} AND "
    sql += "channel IS NULL" if channel is None else f"(channel IS NULL OR channel = {s.param(channel.value)})"
    answers: dict[int, dict[Channel | None, bool]] = {pk: {} for pk in ids}
    for customer_id, answer_channel, granted in await rows_of(connection, sql, s):
        if (answered := answers.get(customer_id)) is not None:
            answered[Channel(answer_channel) if answer_channel is not None else None] = bool(granted)
    return {pk for pk in ids if _granted(answers[pk], purpose, channel)}


async def consent_granted(customer_id: int, purpose: ConsentPurpose, channel: Channel | None = None) -> bool:
    """A channel-specific answer wins over the general one, which wins over the default."""
    return customer_id in await granted_for([customer_id], purpose, channel)
