"""The whole record of one customer: merging duplicates, PIPL erasure and PIPL data export.

Everything here works on *every* row that belongs to a customer, so nothing is listed by hand: the
rows are found from the models' foreign keys (`customer_relations`). A module that adds a model with a
ForeignKeyField (or OneToOneField) to `models.Customer` — interactions, complaints, surveys, notes,
follow-ups — is merged, scrubbed and exported without touching this file. Three small hook tables
cover what a foreign key cannot say:

- `MERGE_RESOLVERS[Model]` — how the duplicate's rows join the survivor when a plain
  ``UPDATE … SET customer_id = survivor`` could break a unique constraint (Consent: the more recent
  answer per purpose and channel wins; CustomerTag: the union). Default: the plain UPDATE (a
  one-to-one row moves only when the survivor has none).
- `SCRUBBERS[Model]` — what erasure does to that model's rows of the erased customer, typically
  clearing free-text fields that may name the person (a complaint's description, a note's body).
  Default: nothing but the generic redaction below. Rows stay linked to the customer id (regulatory
  retention, statistics).
- `EXPORT_FORMATTERS[Model]` — how that model's rows appear in the export. Default: every column of
  every row, as plain JSON values.

A later module registers its hooks at import time, next to its models, e.g. in services/complaints.py::

    from services import customer_records

    async def _scrub_complaints(relation, customer_ids):
        await Complaint.filter(**relation.lookup(customer_ids)).update(description=None, contact_name=None)
        await ComplaintEvent.filter(complaint__customer_id__in=customer_ids).update(message=None)

    customer_records.SCRUBBERS[Complaint] = _scrub_complaints

(or `register_scrubber`, `register_merge_resolver`, `register_export_formatter`). Hooks receive the
`Relation` (model, foreign key, lookup path) so that one hook serves a model with two foreign keys. The
registering module must be imported wherever merges/erasures run (the resolvers import it); without
it the defaults apply — rows still move, are exported and get the generic redaction, but no more.
Readable names come from the relation's name on Customer (`KIND_NAMES` overrides one); two relations
with the same name make `customer_relations` raise, which the discovery test catches.

Rows that hang off the customer *indirectly* (a ComplaintEvent through its Complaint) are discovered
too, up to `MAX_DEPTH` hops: they are exported and redacted; merging never needs them (they follow
their parent).

Erasure also applies, on top of any hook, a generic redaction: every occurrence of the erased
person's name, ID number, phone, email and address in any text or JSON column of any of their rows
(direct or indirect) is replaced by ``***``. That catches exact copies only — free text written in
other forms ("138-1234-5678", a nickname) needs the model's scrubber.

The services raise DomainError and never open their own transaction: the GraphQL layer runs each call
in one transaction. They write their own success audit entries (`customer.merge` — also for a dry run,
with ``"dryRun": true`` —, `customer.erase`, `customer.export`); the mutation layer writes rejections.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from tortoise import Tortoise
from tortoise.fields import CharField, JSONField, TextField
from tortoise.fields.data import CharEnumFieldInstance
from tortoise.fields.relational import ForeignKeyFieldInstance, OneToOneFieldInstance
from tortoise.models import Model

from models.customers import (
    ChangeEntry,
    Consent,
    ConsentChange,
    ConsentPurpose,
    Customer,
    CustomerStatus,
    CustomerTag,
    Gender,
    KycStatus,
    ProductHolding,
)
from models.staff import Staff
from services import audit
from services import customer_rules as rules
from services import customers as customer_service
from services.access import Caller, require_role
from services.customers import CONSENT_DEFAULTS, ERASERS, EXPORTERS, MERGERS, consents_view, refresh_balances
from services.errors import DomainError, ErrorCode, invalid

# How far indirect relations are followed: Customer <- Complaint (1) <- ComplaintEvent (2) <- ... (3).
MAX_DEPTH = 3
ERASURE_SOURCE = "erasure"
REDACTED = "***"
MAX_REASON = 500

# Each relation's readable name (the key in `moved` and in the export) is the relation's name on
# Customer (its related_name: "holdings", "complaints") for a direct foreign key, the table's name in
# the plural for an indirect one ("complaintEvents"); here, by "Model.field", where that reads badly.
KIND_NAMES: dict[str, str] = {"CustomerTag.customer": "tags"}


# ---------------------------------------------------------------- discovery


@dataclass(frozen=True)
class Relation:
    """A model whose rows belong to a customer, and the lookup that finds them.

    `path` is the Tortoise filter path from the model to the customer id: ``customer_id`` for a
    direct foreign key, ``complaint__customer_id`` for a row of a Complaint of the customer.
    """

    model: type[Model]
    field: str  # the relation field on `model` (the first hop)
    path: str
    kind: str  # readable plural: "holdings", "consents", "complaintEvents", ...
    depth: int  # 1: a foreign key to Customer
    one_to_one: bool = False

    @property
    def column(self) -> str:
        """The model's own foreign-key field (``customer_id``, ``complaint_id``)."""
        return self.model._meta.fields_map[self.field].source_field

    def lookup(self, customer_ids: int | list[int]) -> dict[str, Any]:
        if isinstance(customer_ids, int):
            return {self.path: customer_ids}
        return {f"{self.path}__in": list(customer_ids)}

    def rows(self, customer_ids: int | list[int]):
        return self.model.filter(**self.lookup(customer_ids))


def _plural(word: str) -> str:
    if word.endswith("s"):
        return word
    if word.endswith("y") and not word.endswith(("ay", "ey", "oy", "uy")):
        return word[:-1] + "ies"
    return word + "s"


def _links(target: type[Model]) -> list[tuple[type[Model], str, ForeignKeyFieldInstance]]:
    """Every (model, field name, field) whose ForeignKeyField/OneToOneField points at `target`."""
    found = []
    for model in Tortoise.apps.get_models_iterable():
        meta = model._meta
        for name in sorted(meta.fk_fields | meta.o2o_fields):
            field = meta.fields_map[name]
            if isinstance(field, ForeignKeyFieldInstance) and field.related_model is target:
                found.append((model, name, field))
    return found


def customer_relations(max_depth: int = MAX_DEPTH) -> list[Relation]:
    """Every relation to Customer in the registered models: direct foreign keys first, then rows that
    hang off those (breadth first, each model once, at its shortest distance)."""
    direct: list[Relation] = []
    for model, name, field in _links(Customer):
        related_name = field.related_name or model._meta.db_table
        kind = KIND_NAMES.get(f"{model.__name__}.{name}") or rules.camel(related_name)
        direct.append(Relation(model, name, field.source_field, kind, 1, isinstance(field, OneToOneFieldInstance)))
    direct.sort(key=lambda r: (r.kind, r.path))
    _unique_kinds(direct)

    found = list(direct)
    seen = {r.model for r in direct} | {Customer, Staff}
    frontier = [r for r in direct if r.model is not Customer]
    for depth in range(2, max_depth + 1):
        next_frontier = []
        for parent in frontier:
            for model, name, field in _links(parent.model):
                if model in seen:
                    continue
                seen.add(model)
                kind = KIND_NAMES.get(f"{model.__name__}.{name}") or _plural(rules.camel(model._meta.db_table))
                relation = Relation(
                    model, name, f"{name}__{parent.path}", kind, depth, isinstance(field, OneToOneFieldInstance)
                )
                found.append(relation)
                next_frontier.append(relation)
        frontier = next_frontier
    _unique_kinds(found)
    return found


def _unique_kinds(relations: list[Relation]) -> None:
    kinds = [r.kind for r in relations]
    clashes = {k for k in kinds if kinds.count(k) > 1}
    if clashes:  # a configuration error (the discovery test fails on it): name one of them in KIND_NAMES
        raise RuntimeError(f"Two relations to Customer share the name(s) {sorted(clashes)}; set KIND_NAMES")


def direct_relations() -> list[Relation]:
    """The models with a foreign key to Customer: what a merge moves."""
    return customer_relations(max_depth=1)


def many_to_many_names() -> list[str]:
    """Customer's many-to-many relations (either side declared), e.g. segment membership lists."""
    return sorted(Customer._meta.m2m_fields)


# ---------------------------------------------------------------- hook tables

MergeCount = Callable[[Relation, int, int], Awaitable[int]]
MergeMove = Callable[[Relation, int, int], Awaitable[int]]
Scrubber = Callable[[Relation, list[int]], Awaitable[None]]
ExportFormatter = Callable[[Relation, Customer], Awaitable[list]]


@dataclass(frozen=True)
class MergeResolver:
    """`count(relation, duplicate_id, survivor_id)`: how many of the duplicate's rows the merge moves
    (for dryRun; must not write); `move(...)`: do it, return the same number. After `move` no row of
    the model may point at the duplicate through `relation` (drop the ones that lose)."""

    count: MergeCount
    move: MergeMove


MERGE_RESOLVERS: dict[type[Model], MergeResolver] = {}
SCRUBBERS: dict[type[Model], Scrubber] = {}
EXPORT_FORMATTERS: dict[type[Model], ExportFormatter] = {}


def register_merge_resolver(model: type[Model], count: MergeCount, move: MergeMove) -> None:
    MERGE_RESOLVERS[model] = MergeResolver(count, move)


def register_scrubber(model: type[Model], scrubber: Scrubber) -> None:
    SCRUBBERS[model] = scrubber


def register_export_formatter(model: type[Model], formatter: ExportFormatter) -> None:
    EXPORT_FORMATTERS[model] = formatter


# -- default merge: a plain UPDATE (a one-to-one row only when the survivor has none)


async def _default_count(relation: Relation, duplicate_id: int, survivor_id: int) -> int:
    if relation.one_to_one and await relation.rows(survivor_id).exists():
        return 0
    return await relation.rows(duplicate_id).count()


async def _default_move(relation: Relation, duplicate_id: int, survivor_id: int) -> int:
    if relation.one_to_one and await relation.rows(survivor_id).exists():
        return 0  # the survivor's own row stays; the duplicate keeps its one (nothing is deleted)
    meta = relation.model._meta
    if relation.column != meta.pk_attr:
        return await relation.rows(duplicate_id).update(**{relation.column: survivor_id})
    # A one-to-one that is the primary key (e.g. a portrait keyed by its customer): Tortoise's
    # update() refuses to change a primary key, so the same UPDATE is built by hand.
    count = await relation.rows(duplicate_id).count()
    column = meta.fields_db_projection[relation.column]
    table = meta.basetable
    query = meta.db.query_class.update(table).set(table[column], survivor_id).where(table[column] == duplicate_id)
    await meta.db.execute_query(query.get_sql())
    return count


DEFAULT_MERGE = MergeResolver(_default_count, _default_move)


# -- Consent: unique (customer, purpose, channel); the more recent answer per key wins (ties: survivor's)


async def _consent_plan(relation: Relation, duplicate_id: int, survivor_id: int) -> tuple[list, list, list]:
    """(duplicate rows to move, survivor rows they replace, duplicate rows that lose)."""
    theirs = {(c.purpose, c.channel): c for c in await Consent.filter(**relation.lookup(survivor_id))}
    move, replace, drop = [], [], []
    for consent in await Consent.filter(**relation.lookup(duplicate_id)).order_by("id"):
        other = theirs.get((consent.purpose, consent.channel))
        if other is None:
            move.append(consent)
        elif consent.updated_at > other.updated_at:
            move.append(consent)
            replace.append(other)
        else:
            drop.append(consent)
    return move, replace, drop


async def _consent_count(relation: Relation, duplicate_id: int, survivor_id: int) -> int:
    return len((await _consent_plan(relation, duplicate_id, survivor_id))[0])


async def _consent_move(relation: Relation, duplicate_id: int, survivor_id: int) -> int:
    move, replace, drop = await _consent_plan(relation, duplicate_id, survivor_id)
    losers = [c.id for c in replace + drop]
    if losers:  # the history (ConsentChange) of both keeps every answer
        await Consent.filter(id__in=losers).delete()
    if move:
        await Consent.filter(id__in=[c.id for c in move]).update(**{relation.column: survivor_id})
    return len(move)


# -- CustomerTag: unique (customer, tag); the survivor ends with the union


async def _new_tags(relation: Relation, duplicate_id: int, survivor_id: int):
    theirs = CustomerTag.filter(**relation.lookup(survivor_id)).values_list("tag", flat=True)
    return CustomerTag.filter(**relation.lookup(duplicate_id)).exclude(tag__in=await theirs)


async def _tag_count(relation: Relation, duplicate_id: int, survivor_id: int) -> int:
    return await (await _new_tags(relation, duplicate_id, survivor_id)).count()


async def _tag_move(relation: Relation, duplicate_id: int, survivor_id: int) -> int:
    new = await (await _new_tags(relation, duplicate_id, survivor_id)).values_list("id", flat=True)
    if new:
        await CustomerTag.filter(id__in=new).update(**{relation.column: survivor_id})
    await CustomerTag.filter(**relation.lookup(duplicate_id)).delete()  # tags the survivor already has
    return len(new)


register_merge_resolver(Consent, _consent_count, _consent_move)
register_merge_resolver(CustomerTag, _tag_count, _tag_move)


# -- erasure scrubbers of this module's models


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


# -- export formatters of this module's models


async def _export_tags(relation: Relation, customer: Customer) -> list:
    return await CustomerTag.filter(**relation.lookup(customer.id)).order_by("id").values_list("tag", flat=True)


async def _export_consents(relation: Relation, customer: Customer) -> list:
    """The current answer for every purpose (recorded ones, and the defaults nobody recorded)."""
    records = await Consent.filter(**relation.lookup(customer.id)).order_by("id")
    return [
        {
            "purpose": v.purpose.value,
            "channel": v.channel.value if v.channel else None,
            "granted": v.granted,
            "source": v.source,
            "updatedAt": _plain(v.updated_at),
        }
        for v in consents_view(records, customer.created_at)
    ]


async def _export_customers(relation: Relation, customer: Customer) -> list:
    # Other customers pointing at this one (a self-reference): never their personal data.
    rows = await relation.rows(customer.id).order_by("id").values("id", "customer_no")
    return [{"id": r["id"], "customerNo": r["customer_no"]} for r in rows]


register_export_formatter(CustomerTag, _export_tags)
register_export_formatter(Consent, _export_consents)
register_export_formatter(Customer, _export_customers)


# ---------------------------------------------------------------- helpers


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def _plain(value: Any) -> Any:
    """A JSON value: enums as their values, dates ISO-8601, decimals as strings."""
    if isinstance(value, Enum):
        return value.value
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return str(value)


def _plain_row(row: dict[str, Any]) -> dict[str, Any]:
    return {rules.camel(name): _plain(value) for name, value in row.items()}


def _now() -> datetime:
    return datetime.now(UTC)


async def _change_entries(customer_id: int, before: dict[str, Any], after: dict[str, Any], actor: Staff | None) -> None:
    await ChangeEntry.bulk_create(
        [
            ChangeEntry(
                customer_id=customer_id,
                field=rules.camel(name.removesuffix("_id")),
                old_value=_text(before[name]),
                new_value=_text(value),
                actor=actor,
            )
            for name, value in after.items()
        ]
    )


async def _claim(customer: Customer, values: dict[str, Any]) -> None:
    """Writes `values` if nobody changed the customer since we read it; bumps the version."""
    updated = await Customer.filter(id=customer.id, version=customer.version).update(
        **values, version=customer.version + 1, updated_at=_now()
    )
    if not updated:
        raise DomainError(ErrorCode.STALE_VERSION, f"Customer {customer.customer_no} changed meanwhile; try again")


# ---------------------------------------------------------------- merge

# Filled on the survivor from the duplicate when empty there (the identity document separately).
FILLABLE = (
    "gender",
    "birth_date",
    "phone",
    "email",
    "address",
    "occupation",
    "risk_level",
    "branch",
    "preferred_channel",
    "relationship_manager_id",
)


def merged_note(survivor: Customer) -> str:
    return f"merged into {survivor.customer_no}"


async def merge(
    caller: Caller, survivor_id: int, duplicate_id: int, *, dry_run: bool
) -> tuple[Customer, dict[str, int]]:
    """Moves everything of `duplicate_id` to `survivor_id`; returns the survivor and the moved counts by
    kind (zero kinds left out). `dry_run`: the same counts (COUNT queries), no data written — only the
    audit entry (`customer.merge` with ``"dryRun": true``)."""
    actor = require_role(caller, MERGERS)
    survivor = await customer_service.get(caller, survivor_id, "survivorId")
    duplicate = await customer_service.get(caller, duplicate_id, "duplicateId")
    if survivor.id == duplicate.id:
        raise invalid("duplicateId", "A customer cannot be merged into itself")
    for customer, field in ((duplicate, "duplicateId"), (survivor, "survivorId")):
        if customer.status == CustomerStatus.ERASED:
            raise invalid(field, f"Customer {customer.customer_no} is erased")
        if customer.status == CustomerStatus.CLOSED:
            raise invalid(
                field,
                f"Customer {customer.customer_no} is closed"
                + (f" ({customer.status_note})" if customer.status_note else ""),
            )
    if survivor.kind != duplicate.kind:
        raise invalid("duplicateId", "Only customers of the same kind (individual or corporate) can be merged")

    fills = {
        f: getattr(duplicate, f)
        for f in FILLABLE
        if (_empty(getattr(survivor, f)) or (f == "gender" and survivor.gender == Gender.UNKNOWN))
        and not _empty(getattr(duplicate, f))
        and not (f == "gender" and duplicate.gender == Gender.UNKNOWN)
    }
    moves_document = not survivor.id_number and bool(duplicate.id_type and duplicate.id_number)
    if moves_document:
        fills.update(id_type=duplicate.id_type, id_number=duplicate.id_number)
        if survivor.kyc_status == KycStatus.PENDING and duplicate.kyc_status != KycStatus.PENDING:
            fills["kyc_status"] = duplicate.kyc_status
    _check_merged_identity(survivor, fills)

    relations = direct_relations()
    m2m = many_to_many_names()
    if dry_run:
        counts = {
            r.kind: await MERGE_RESOLVERS.get(r.model, DEFAULT_MERGE).count(r, duplicate.id, survivor.id)
            for r in relations
        }
        for name in m2m:
            counts[rules.camel(name)] = len(await _m2m_new(name, duplicate, survivor))
        counts = {k: n for k, n in counts.items() if n}
        # The mutation layer leaves the success entry to this service: a dry run is audited too.
        await audit.record(
            caller,
            "customer.merge",
            subject_type="Customer",
            subject_id=str(survivor.id),
            detail={"duplicate": duplicate.customer_no, "moved": counts, "dryRun": True},
        )
        return survivor, counts

    # The duplicate first: its version claims it (a concurrent merge loses with STALE_VERSION) and its
    # identity document must be gone before the survivor takes it (unique idType + idNumber).
    note = merged_note(survivor)
    closing = {"status": CustomerStatus.CLOSED, "status_note": note}
    if moves_document:
        closing.update(id_type=None, id_number=None)
    duplicate_before = {name: getattr(duplicate, name) for name in closing}
    for name, value in closing.items():
        setattr(duplicate, name, value)
    await _claim(duplicate, {**closing, "completeness": rules.assess(duplicate)[0]})

    moved: dict[str, int] = {}
    for relation in relations:
        moved[relation.kind] = await MERGE_RESOLVERS.get(relation.model, DEFAULT_MERGE).move(
            relation, duplicate.id, survivor.id
        )
    for name in m2m:
        moved[rules.camel(name)] = await _m2m_move(name, duplicate, survivor)
    moved = {k: n for k, n in moved.items() if n}

    # Written after the move, so that each history stays with its customer.
    await _change_entries(duplicate.id, duplicate_before, closing, actor)
    if fills:
        survivor_before = {name: getattr(survivor, name) for name in fills}
        for name, value in fills.items():
            setattr(survivor, name, value)
        await _claim(survivor, {**fills, "completeness": rules.assess(survivor)[0]})
        await _change_entries(survivor.id, survivor_before, fills, actor)
    else:
        await _claim(survivor, {"completeness": rules.assess(survivor)[0]})
    await refresh_balances([survivor.id, duplicate.id])
    await audit.record(
        caller,
        "customer.merge",
        subject_type="Customer",
        subject_id=str(survivor.id),
        detail={"duplicate": duplicate.customer_no, "moved": moved},
    )
    return await Customer.get(id=survivor.id), moved


def _check_merged_identity(survivor: Customer, fills: dict[str, Any]) -> None:
    """Filling birth date, gender or the identity document must not make the survivor inconsistent."""
    if not fills.keys() & {"id_type", "id_number", "birth_date", "gender"}:
        return
    merged = {f: fills.get(f, getattr(survivor, f)) for f in ("id_type", "id_number", "birth_date", "gender")}
    if not (merged["id_type"] and merged["id_number"]):
        return

    def problems(values: dict[str, Any]) -> set[str]:
        errors: list[DomainError] = []
        if values["id_type"] and values["id_number"]:
            rules.check_identity(
                survivor.kind, values["id_type"], values["id_number"], values["birth_date"], values["gender"], errors
            )
        return {e.message for e in errors}

    before = problems({f: getattr(survivor, f) for f in merged})
    if problems(merged) - before:
        raise invalid(
            "duplicateId",
            "The duplicate's identity document, birth date or gender contradicts the "
            "survivor's; correct one of them before merging",
        )


async def _m2m_new(name: str, duplicate: Customer, survivor: Customer) -> list[Model]:
    pk = Customer._meta.fields_map[name].related_model._meta.pk_attr
    theirs = set(await getattr(survivor, name).all().values_list(pk, flat=True))
    return [obj for obj in await getattr(duplicate, name).all() if obj.pk not in theirs]


async def _m2m_move(name: str, duplicate: Customer, survivor: Customer) -> int:
    new = await _m2m_new(name, duplicate, survivor)
    if new:
        await getattr(survivor, name).add(*new)
    await getattr(duplicate, name).clear()
    return len(new)


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
    require_role(caller, ERASERS)
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
    if pattern is not None:
        for relation in relations:
            if relation.model is not Customer:  # other customers' rows are theirs, not this person's
                await _redact(relation, ids, pattern)

    for target, old in zip(targets, before, strict=True):
        # The history says what was erased, never the values (written after the scrub, which empties
        # every value of the earlier history).
        entries = [
            ChangeEntry(
                customer_id=target.id,
                field="status",
                old_value=_text(old["status"]),
                new_value=CustomerStatus.ERASED.value,
                actor=caller.staff,
            )
        ]
        entries += [
            ChangeEntry(
                customer_id=target.id, field=rules.camel(name), old_value=None, new_value=None, actor=caller.staff
            )
            for name in ("name", "status_note", *PII_FIELDS)
            if not _empty(old[name])
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


def _identifying_pattern(customers: list[Customer]) -> re.Pattern[str] | None:
    needles = {
        getattr(c, f).strip()
        for c in customers
        for f in IDENTIFYING
        if isinstance(getattr(c, f), str) and len(getattr(c, f).strip()) >= 2
    }
    needles.discard(rules.ERASED_NAME)
    if not needles:
        return None
    return re.compile("|".join(re.escape(n) for n in sorted(needles, key=len, reverse=True)), re.IGNORECASE)


async def _erase_customer_row(caller: Caller, customer: Customer) -> None:
    values: dict[str, Any] = {name: None for name in PII_FIELDS}
    values.update(name=rules.ERASED_NAME, status=CustomerStatus.ERASED, status_note="erased")
    for name, value in values.items():
        setattr(customer, name, value)
    await _claim(customer, {**values, "completeness": rules.assess(customer)[0]})

    # Every consent revoked, SURVEY included (its default is "granted"), with evidence of when and why.
    recorded = {(c.purpose, c.channel) for c in await Consent.filter(customer_id=customer.id)}
    missing = [(purpose, None) for purpose in CONSENT_DEFAULTS if (purpose, None) not in recorded]
    await Consent.filter(customer_id=customer.id).update(granted=False, source=ERASURE_SOURCE, updated_at=_now())
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


def _redacted(value: Any, pattern: re.Pattern[str], limit: int | None) -> Any:
    if isinstance(value, str):
        result = pattern.sub(REDACTED, value)
        return result[:limit] if limit else result
    if isinstance(value, dict):
        return {k: _redacted(v, pattern, None) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v, pattern, None) for v in value]
    return value


async def _redact(relation: Relation, customer_ids: list[int], pattern: re.Pattern[str]) -> None:
    """Replaces every copy of the person's identifying values in the text and JSON columns of the rows."""
    model = relation.model
    names = _text_fields(model)
    if not names:
        return
    pk = model._meta.pk_attr
    for row in await relation.rows(customer_ids).values(pk, *names):
        changes = {}
        for name in names:
            field = model._meta.fields_map[name]
            new = _redacted(row[name], pattern, getattr(field, "max_length", None))
            if new != row[name]:
                changes[name] = new
        if changes:
            await model.filter(**{pk: row[pk]}).update(**changes)


# ---------------------------------------------------------------- export


async def export(caller: Caller, customer_id: int) -> dict:
    """Everything stored about the customer, as one JSON-serialisable document (PIPL access request).

    ``customer``: the customer's own fields, unmasked; then one list per relation, keyed by its kind
    ("tags", "consents" (current answers, defaults included), "consentChanges" (the history),
    "holdings", "changes", and whatever later modules add); ``exportedAt``, ``exportedBy``.
    """
    require_role(caller, EXPORTERS)
    customer = await customer_service.get(caller, customer_id)
    own = (await Customer.filter(id=customer.id).values())[0]
    document: dict[str, Any] = {"customer": _plain_row(own)}
    for relation in customer_relations():
        formatter = EXPORT_FORMATTERS.get(relation.model)
        if formatter is not None:
            rows = await formatter(relation, customer)
        else:
            pk = relation.model._meta.pk_attr
            rows = [_plain_row(r) for r in await relation.rows(customer.id).order_by(pk).values()]
        document[relation.kind] = _plain(rows)
    for name in many_to_many_names():
        pk = Customer._meta.fields_map[name].related_model._meta.pk_attr
        related = await getattr(customer, name).all().order_by(pk).values()
        document[rules.camel(name)] = [_plain_row(r) for r in related]
    staff = caller.staff
    document["exportedAt"] = _now().isoformat()
    document["exportedBy"] = staff.username if staff else "command-line"
    await audit.record(
        caller,
        "customer.export",
        subject_type="Customer",
        subject_id=str(customer.id),
        detail={"counts": {k: len(v) for k, v in document.items() if isinstance(v, list)}},
    )
    return document
