"""PIPL erasure (right to deletion) of a customer and of the duplicates merged into it.

Every row of the customer (found by services.customer_relations, direct or indirect) stays linked to
the customer id (regulatory retention, statistics); each model's scrubber (`SCRUBBERS`) clears what may
name the person. Erasure also applies, on top of any hook, a generic redaction: every occurrence of the
erased person's name, ID number, phone, email and address in any text or JSON column of any of their
rows (direct or indirect) is replaced by ``***``, phone and ID numbers however typed ("158-8771-7721",
"158 8771 7721", "+86 15887717721"). In free text (`_free_text`: text columns, and long character
columns that are not unique, such as notes, interaction records, complaint texts, follow-ups and survey
comments) every other phone number, resident ID number and e-mail address goes too: the rest of the
text stays (services.identity.scrub_identifiers, the pattern that also masks free text for masked
viewers). A nickname or a misspelt name still needs the model's scrubber.

The service raises DomainError and never opens its own transaction: the GraphQL layer runs each call in
one transaction. It writes its own success audit entries (`customer.erase`); the mutation layer writes
rejections.
"""

from __future__ import annotations

import re
from typing import Any

from tortoise.fields import CharField, JSONField, TextField
from tortoise.fields.data import CharEnumFieldInstance
from tortoise.models import Model

from models.customers import (
    ChangeEntry,
    Consent,
    ConsentChange,
    ConsentPurpose,
    Customer,
    CustomerStatus,
    CustomerTag,
    ProductHolding,
)
from services import access, audit, clock, customer_rules as rules, customers as customer_service, identity
from services.access import Caller, require_role
from services.consents import CONSENT_DEFAULTS
from services.customer_merge import merged_note
from services.customer_relations import SCRUBBERS, Relation, claim, customer_relations, empty, register_scrubber
from services.errors import DomainError, ErrorCode, invalid

ERASURE_SOURCE = "erasure"
REDACTED = "***"
MAX_REASON = 500
# A character column at least this long holds prose (a complaint's summary, an interaction's subject).
FREE_TEXT_LENGTH = 200

# ---------------------------------------------------------------- erase

# Cleared on erasure. The relationship manager, branch, risk level and KYC status stay: they identify
# the bank's handling, not the person, and the retained holdings and complaints need them.
PII_FIELDS = (
    "gender",
    "birth_date",
    "id_type",
    "id_number",
    "phone",
    "email",
    "address",
    "occupation",
    "preferred_channel",
)
IDENTIFYING = ("name", "id_number", "phone", "email", "address")


async def erase(caller: Caller, customer_id: int, reason: str) -> Customer:
    """PIPL erasure (right to deletion). Irreversible.

    `reason` is stored in the audit trail, which is append-only and never erased: it must say *why*
    (e.g. "PIPL art. 47 request, ticket 2024-118"), never repeat who. A reason containing the
    customer's name, ID number, phone, email or address is refused (INVALID on "reason").

    Duplicates merged into this customer (CLOSED, "merged into C…") are the same person: they are
    erased with it, each with its own `customer.erase` audit entry.
    """
    require_role(caller, access.CUSTOMER_ERASERS)
    customer = await customer_service.get(caller, customer_id)
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(ErrorCode.REQUIRED, "Give the reason for the erasure", "reason")
    if len(reason) > MAX_REASON:
        raise invalid("reason", f"reason must be at most {MAX_REASON} characters")
    if customer.status == CustomerStatus.ERASED:
        raise invalid("id", "This customer is already erased")

    targets = [customer, *await _merged_into(customer)]
    ids = [t.id for t in targets]
    pattern = _identifying_pattern(targets)
    free_text_pattern = _identifying_pattern(targets, any_identifier=True)
    if pattern is not None and pattern.search(reason):
        raise invalid(
            "reason", "The reason is kept in the audit trail for good: it must not repeat the customer's personal data"
        )

    before = [{name: getattr(t, name) for name in ("name", "status", "status_note", *PII_FIELDS)} for t in targets]
    for target in targets:
        await _erase_customer_row(caller, target)
    relations = customer_relations()
    for relation in relations:
        scrubber = SCRUBBERS.get(relation.model)
        if scrubber is not None and relation.model is not Customer:
            await scrubber(relation, ids)
    for relation in relations:
        if relation.model is not Customer:  # other customers' rows are theirs, not this person's
            await _redact(relation, ids, pattern, free_text_pattern)

    for target, old in zip(targets, before, strict=True):
        # The history says what was erased, never the values (written after the scrub, which empties
        # every value of the earlier history).
        entries = [
            ChangeEntry(
                customer_id=target.id,
                field="status",
                old_value=customer_service.as_text(old["status"]),
                new_value=CustomerStatus.ERASED.value,
                actor=caller.staff,
            )
        ]
        entries += [
            ChangeEntry(
                customer_id=target.id, field=rules.camel(name), old_value=None, new_value=None, actor=caller.staff
            )
            for name in ("name", "status_note", *PII_FIELDS)
            if not empty(old[name])
        ]
        await ChangeEntry.bulk_create(entries)
        detail = {"reason": reason}
        if target is not customer:
            detail["mergedInto"] = customer.customer_no
        await audit.record(caller, "customer.erase", subject_type="Customer", subject_id=str(target.id), detail=detail)
    return await Customer.get(id=customer.id)


async def _merged_into(customer: Customer) -> list[Customer]:
    """Customers merged into this one, also through earlier merges (A into B, B into C)."""
    found: list[Customer] = []
    queue, seen = [customer], {customer.id}
    while queue:
        current = queue.pop()
        for duplicate in await Customer.filter(status=CustomerStatus.CLOSED, status_note=merged_note(current)):
            if duplicate.id not in seen:
                seen.add(duplicate.id)
                found.append(duplicate)
                queue.append(duplicate)
    return found


def _identifying_pattern(customers: list[Customer], any_identifier: bool = False) -> re.Pattern[str] | None:
    """The erased people's name, ID number, phone, email and address (numbers however typed); with
    `any_identifier`, also any other phone number, resident ID number or e-mail address (free text)."""
    return identity.identifiers_pattern(
        names=[c.name for c in customers if c.name != rules.ERASED_NAME],
        phones=[c.phone for c in customers],
        id_numbers=[c.id_number for c in customers],
        emails=[c.email for c in customers],
        others=[c.address for c in customers],
        any_identifier=any_identifier,
    )


async def _erase_customer_row(caller: Caller, customer: Customer) -> None:
    values: dict[str, Any] = {name: None for name in PII_FIELDS}
    values.update(name=rules.ERASED_NAME, status=CustomerStatus.ERASED, status_note="erased")
    for name, value in values.items():
        setattr(customer, name, value)
    await claim(customer, {**values, "completeness": rules.assess(customer)[0]})

    # Every consent revoked, SURVEY included (its default is "granted"), with evidence of when and why.
    recorded = {(c.purpose, c.channel) for c in await Consent.filter(customer_id=customer.id)}
    missing = [(purpose, None) for purpose in CONSENT_DEFAULTS if (purpose, None) not in recorded]
    await Consent.filter(customer_id=customer.id).update(granted=False, source=ERASURE_SOURCE, updated_at=clock.now())
    await Consent.bulk_create(
        [
            Consent(customer_id=customer.id, purpose=purpose, channel=channel, granted=False, source=ERASURE_SOURCE)
            for purpose, channel in missing
        ]
    )
    order = list(ConsentPurpose)
    await ConsentChange.bulk_create(
        [
            ConsentChange(
                customer_id=customer.id,
                purpose=purpose,
                channel=channel,
                granted=False,
                source=ERASURE_SOURCE,
                actor=caller.staff,
            )
            for purpose, channel in sorted(
                recorded | set(missing), key=lambda k: (order.index(k[0]), k[1].value if k[1] else "")
            )
        ]
    )


def _text_fields(model: type[Model]) -> list[str]:
    meta = model._meta
    names = []
    for name in meta.fields_db_projection:
        field = meta.fields_map[name]
        if isinstance(field, CharEnumFieldInstance) or field.pk:
            continue
        if isinstance(field, CharField | TextField | JSONField):
            names.append(name)
    return names


def _free_text(field: Any) -> bool:
    """Prose staff or the customer typed: a text column, or a long character column that is not a key."""
    if isinstance(field, TextField):
        return True
    return isinstance(field, CharField) and not field.unique and (field.max_length or 0) >= FREE_TEXT_LENGTH


def _redacted(value: Any, pattern: re.Pattern[str] | None, limit: int | None) -> Any:
    if isinstance(value, str):
        result = identity.scrub_with(value, pattern, REDACTED)
        return result[:limit] if limit else result
    if isinstance(value, dict):
        return {k: _redacted(v, pattern, None) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v, pattern, None) for v in value]
    return value


async def _redact(
    relation: Relation, customer_ids: list[int], pattern: re.Pattern[str] | None, free_text_pattern: re.Pattern[str]
) -> None:
    """Replaces every copy of the person's identifying values in the text and JSON columns of the rows, and
    any phone number, ID number or e-mail address in their free text."""
    model = relation.model
    names = _text_fields(model)
    if not names:
        return
    pk = model._meta.pk_attr
    for row in await relation.rows(customer_ids).values(pk, *names):
        changes = {}
        for name in names:
            field = model._meta.fields_map[name]
            wanted = free_text_pattern if _free_text(field) else pattern
            new = _redacted(row[name], wanted, getattr(field, "max_length", None))
            if new != row[name]:
                changes[name] = new
        if changes:
            await model.filter(**{pk: row[pk]}).update(**changes)


# ---------------------------------------------------------------- scrubbers of the customer file's models


async def _scrub_changes(relation: Relation, customer_ids: list[int]) -> None:
    # The field names stay (what was changed, by whom, when); the values go.
    await ChangeEntry.filter(**relation.lookup(customer_ids)).update(old_value=None, new_value=None)


async def _scrub_holdings(relation: Relation, customer_ids: list[int]) -> None:
    # Kept with their balances (regulatory retention); the account number is replaced by a value that
    # is unique but says nothing.
    for holding_id in await ProductHolding.filter(**relation.lookup(customer_ids)).values_list("id", flat=True):
        await ProductHolding.filter(id=holding_id).update(account_no=f"ERASED{holding_id}")


async def _scrub_tags(relation: Relation, customer_ids: list[int]) -> None:
    await CustomerTag.filter(**relation.lookup(customer_ids)).delete()


register_scrubber(ChangeEntry, _scrub_changes)
register_scrubber(ProductHolding, _scrub_holdings)
register_scrubber(CustomerTag, _scrub_tags)
