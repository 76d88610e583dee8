"""Which rows belong to a customer, found from the models' foreign keys, and the hooks that say what
merging, erasing and exporting does with them (services.customer_merge, services.customer_erasure,
services.customer_export work on *every* row of a customer, so nothing is listed by hand).

A module that adds a model with a ForeignKeyField (or OneToOneField) to `models.Customer` —
interactions, complaints, surveys, notes, follow-ups — is merged, scrubbed and exported without touching
those modules. Three small hook tables cover what a foreign key cannot say:

- `MERGE_RESOLVERS[Model]` — how the duplicate's rows join the survivor when a plain
  ``UPDATE … SET customer_id = survivor`` could break a unique constraint (Consent: the more recent
  answer per purpose and channel wins; CustomerTag: the union). Default: the plain UPDATE (a
  one-to-one row moves only when the survivor has none).
- `SCRUBBERS[Model]` — what erasure does to that model's rows of the erased customer, typically
  clearing free-text fields that may name the person (a complaint's description, a note's body).
  Default: nothing but the generic redaction of services.customer_erasure. Rows stay linked to the
  customer id (regulatory retention, statistics).
- `EXPORT_FORMATTERS[Model]` — how that model's rows appear in the export. Default: every column of
  every row, as plain JSON values.

A domain registers its hooks in its own services module, at import time, next to its models, e.g. in
services/complaints.py::

    from services import customer_relations

    async def _scrub_complaints(relation, customer_ids):
        await Complaint.filter(**relation.lookup(customer_ids)).update(description=None, contact_name=None)
        await ComplaintEvent.filter(complaint__customer_id__in=customer_ids).update(message=None)

    customer_relations.SCRUBBERS[Complaint] = _scrub_complaints

(or `register_scrubber`, `register_merge_resolver`, `register_export_formatter`). Hooks receive the
`Relation` (model, foreign key, lookup path) so that one hook serves a model with two foreign keys.
`customer_relations()` imports every domain's services module (the domain list in core/domains.py)
before it answers, so the hooks are in place wherever merges, erasures and exports run. The hooks of the customer
file's own models (Consent, CustomerTag, ChangeEntry, ProductHolding, Customer) live with the code they
serve: merge resolvers in services.customer_merge, scrubbers in services.customer_erasure, export
formatters in services.customer_export.

Readable names come from the relation's name on Customer (`KIND_NAMES` overrides one); two relations
with the same name make `customer_relations` raise, which the discovery test catches.

Rows that hang off the customer *indirectly* (a ComplaintEvent through its Complaint) are discovered
too, up to `MAX_DEPTH` hops: they are exported and redacted; merging never needs them (they follow
their parent).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tortoise import Tortoise
from tortoise.fields.relational import ForeignKeyFieldInstance, OneToOneFieldInstance
from tortoise.models import Model

from core import domains
from models.customers import Customer
from models.staff import Staff
from services import clock, customer_rules as rules
from services.errors import DomainError, ErrorCode

# How far indirect relations are followed: Customer <- Complaint (1) <- ComplaintEvent (2) <- ... (3).
MAX_DEPTH = 3

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
    hang off those (breadth first, each model once, at its shortest distance). Every domain's services
    module is imported first, so that its hooks are registered wherever this runs (API or command line)."""
    domains.modules("services")
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


# ---------------------------------------------------------------- helpers of merge and erasure


def empty(value: Any) -> bool:
    """None or blank text: nothing worth keeping (merge fills it, erasure has nothing to note)."""
    return value is None or (isinstance(value, str) and not value.strip())


async def claim(customer: Customer, values: dict[str, Any]) -> None:
    """Writes `values` if nobody changed the customer since we read it; bumps the version."""
    updated = await Customer.filter(id=customer.id, version=customer.version).update(
        **values, version=customer.version + 1, updated_at=clock.now()
    )
    if not updated:
        raise DomainError(ErrorCode.STALE_VERSION, f"Customer {customer.customer_no} changed meanwhile; try again")
