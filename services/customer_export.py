"""PIPL data export (right of access): everything stored about one customer, found by
services.customer_relations, as one JSON-serialisable document.

The service raises DomainError and never opens its own transaction: the GraphQL layer runs each call in
one transaction. It writes its own success audit entry (`customer.export`); the mutation layer writes
rejections.
"""

from __future__ import annotations

import base64
import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from models.customers import Consent, Customer, CustomerTag
from services import access, audit, clock, customer_rules as rules, customers as customer_service
from services.access import Caller, require_role
from services.consents import consents_view
from services.customer_relations import (
    EXPORT_FORMATTERS,
    Relation,
    customer_relations,
    many_to_many_names,
    register_export_formatter,
)

# ---------------------------------------------------------------- export


async def export(caller: Caller, customer_id: int) -> dict:
    """Everything stored about the customer, as one JSON-serialisable document (PIPL access request).

    ``customer``: the customer's own fields, unmasked; then one list per relation, keyed by its kind
    ("tags", "consents" (current answers, defaults included), "consentChanges" (the history),
    "holdings", "changes", and whatever later modules add); ``exportedAt``, ``exportedBy``.
    """
    require_role(caller, access.CUSTOMER_EXPORTERS)
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
    document["exportedAt"] = clock.now().isoformat()
    document["exportedBy"] = staff.username if staff else "command-line"
    await audit.record(
        caller,
        "customer.export",
        subject_type="Customer",
        subject_id=str(customer.id),
        detail={"counts": {k: len(v) for k, v in document.items() if isinstance(v, list)}},
    )
    return document


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


# ---------------------------------------------------------------- export formatters of the customer file's models


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
