"""Merging a duplicate customer into the survivor: every row of the duplicate (found by
services.customer_relations) moves to the survivor, the survivor's empty fields are filled from the
duplicate's, and the duplicate is CLOSED ("merged into C…").

The service raises DomainError and never opens its own transaction: the GraphQL layer runs each call in
one transaction. It writes its own success audit entry (`customer.merge`, also for a dry run, with
``"dryRun": true``); the mutation layer writes rejections.
"""

from __future__ import annotations

from typing import Any

from tortoise.models import Model

from models.customers import ChangeEntry, Consent, Customer, CustomerStatus, CustomerTag, Gender, KycStatus
from services import access, audit, customer_rules as rules, customers as customer_service, portraits
from services.access import Caller, require_role
from services.customer_relations import (
    DEFAULT_MERGE,
    MERGE_RESOLVERS,
    Relation,
    claim,
    direct_relations,
    empty,
    many_to_many_names,
    register_merge_resolver,
)
from services.customers import refresh_balances
from services.errors import DomainError, invalid

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
    actor = require_role(caller, access.CUSTOMER_MERGERS)
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
        if (empty(getattr(survivor, f)) or (f == "gender" and survivor.gender == Gender.UNKNOWN))
        and not empty(getattr(duplicate, f))
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
    await claim(duplicate, {**closing, "completeness": rules.assess(duplicate)[0]})

    moved: dict[str, int] = {}
    for relation in relations:
        moved[relation.kind] = await MERGE_RESOLVERS.get(relation.model, DEFAULT_MERGE).move(
            relation, duplicate.id, survivor.id
        )
    for name in m2m:
        moved[rules.camel(name)] = await _m2m_move(name, duplicate, survivor)
    moved = {k: n for k, n in moved.items() if n}

    # Written after the move, so that each history stays with its customer.
    await ChangeEntry.bulk_create(customer_service.change_entries(duplicate.id, duplicate_before, closing, actor))
    if fills:
        survivor_before = {name: getattr(survivor, name) for name in fills}
        for name, value in fills.items():
            setattr(survivor, name, value)
        await claim(survivor, {**fills, "completeness": rules.assess(survivor)[0]})
        await ChangeEntry.bulk_create(customer_service.change_entries(survivor.id, survivor_before, fills, actor))
    else:
        await claim(survivor, {"completeness": rules.assess(survivor)[0]})
    await refresh_balances([survivor.id, duplicate.id])
    # The duplicate's records moved to the survivor (its portrait was dropped: services/portraits.py).
    await portraits.mark_stale([survivor.id])
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


# ---------------------------------------------------------------- merge resolvers of the customer file's models


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
