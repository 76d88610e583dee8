from __future__ import annotations

from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from core.db import atomic
from resolvers.common import caller_of
from resolvers.filters import FilterMapping, GlobalId
from schema.base import Connection, SortDirection, api_error, int_pk, require_pk
from schema.conventions import mutation
from schema.customers import (
    CreateCustomerInput,
    Customer,
    CustomerFilter,
    CustomerOrder,
    CustomerOrderField,
    CustomerPayload,
    EraseCustomerInput,
    HoldingPayload,
    ImportCustomersInput,
    MergeCustomersInput,
    MergeCustomersPayload,
    ProductHolding,
    SetConsentsInput,
    UpdateCustomerInput,
    UpsertHoldingInput,
)
from schema.jobs import Job, JobPayload
from schema.permissions import allow
from services import (
    access,
    consents as consent_service,
    customer_erasure,
    customer_export,
    customer_import,
    customer_merge,
    customers as customer_service,
)
from services.errors import not_found
from services.pagination import OrderKey, paginate

DEFAULT_ORDER = CustomerOrder(field=CustomerOrderField.CREATED_AT, direction=SortDirection.DESC)


def _staff_pk(global_id: str | None, field: str | list[str]) -> int | None:
    return None if global_id is None else require_pk(global_id, "Staff", field)


CUSTOMER_FILTER = FilterMapping(
    CustomerFilter,
    customer_service.CustomerFilter,
    ids={"relationship_manager_id": GlobalId("Staff", "Relationship manager")},
)


async def customer(info: Info, id: strawberry.ID | None = None, customer_no: str | None = None) -> Customer | None:
    if (id is None) == (customer_no is None):
        raise api_error("INVALID", "Give either id or customerNo")
    qs = customer_service.visible(await caller_of(info))
    if id is not None:
        pk = int_pk(id, "Customer")
        found = await qs.get_or_none(id=pk) if pk else None
    else:
        found = await qs.get_or_none(customer_no=customer_no.strip().upper())
    return Customer.from_model(found) if found else None


async def customers(
    info: Info,
    filter: CustomerFilter | None = None,
    order_by: CustomerOrder | None = None,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Connection[Customer]:
    order = order_by or DEFAULT_ORDER
    descending = order.direction == SortDirection.DESC
    qs = customer_service.matching(await caller_of(info), CUSTOMER_FILTER.to_service(filter))
    qs = customer_service.sortable(qs, order.field.value)
    keys = [OrderKey(order.field.value, descending), OrderKey("id", descending)]
    page = await paginate(qs, keys, first=first, after=after, last=last, before=before)
    return Connection.of(page, Customer.from_model)


async def export_customer_data(info: Info, id: strawberry.ID) -> JSON:
    pk = int_pk(id, "Customer")
    if pk is None:
        raise not_found("Customer")
    # Reading is audited (customer.export) like a mutation, in one transaction with the read.
    async with atomic():
        document = await customer_export.export(await caller_of(info), pk)
    # The whole record leaves unmasked: that is a personal-data read too.
    info.context.pii_reads.setdefault(pk, set()).add("*")
    return document


def _create_data(input: CreateCustomerInput) -> dict[str, Any]:
    return {
        "customer_no": input.customer_no,
        "kind": input.kind,
        "name": input.name,
        "gender": input.gender,
        "birth_date": input.birth_date,
        "id_type": input.id_type,
        "id_number": input.id_number,
        "phone": input.phone,
        "email": input.email,
        "address": input.address,
        "occupation": input.occupation,
        "risk_level": input.risk_level,
        "branch": input.branch,
        "preferred_channel": input.preferred_channel,
        "relationship_manager_id": _staff_pk(input.relationship_manager_id, "relationshipManagerId"),
        "tags": input.tags,
    }


def _consents(items) -> list[dict]:
    return [{"purpose": c.purpose, "channel": c.channel, "granted": c.granted, "source": c.source} for c in items]


async def create_customer(info: Info, input: CreateCustomerInput) -> CustomerPayload:
    created = await customer_service.create(await caller_of(info), _create_data(input), _consents(input.consents or []))
    return CustomerPayload(customer=Customer.from_model(created))


# updateCustomer's fields as given (the relationship manager, a global id, is decoded below).
PLAIN_UPDATES = tuple(f for f in customer_service.UPDATABLE if f != "relationship_manager_id")


async def update_customer(info: Info, input: UpdateCustomerInput) -> CustomerPayload:
    changes = {name: getattr(input, name) for name in PLAIN_UPDATES if getattr(input, name) is not strawberry.UNSET}
    if input.relationship_manager_id is not strawberry.UNSET:
        changes["relationship_manager_id"] = _staff_pk(input.relationship_manager_id, "relationshipManagerId")
    tags = None if input.tags is strawberry.UNSET else (input.tags or [])
    updated = await customer_service.update(
        await caller_of(info), require_pk(input.id, "Customer"), input.version, changes, tags
    )
    return CustomerPayload(customer=Customer.from_model(updated))


async def set_consents(info: Info, input: SetConsentsInput) -> CustomerPayload:
    updated = await consent_service.set_consents(
        await caller_of(info), require_pk(input.customer_id, "Customer", "customerId"), _consents(input.consents)
    )
    return CustomerPayload(customer=Customer.from_model(updated))


async def merge_customers(info: Info, input: MergeCustomersInput) -> MergeCustomersPayload:
    survivor, moved = await customer_merge.merge(
        await caller_of(info),
        require_pk(input.survivor_id, "Customer", "survivorId"),
        require_pk(input.duplicate_id, "Customer", "duplicateId"),
        dry_run=bool(input.dry_run),
    )
    return MergeCustomersPayload(customer=Customer.from_model(survivor), moved=moved)


async def erase_customer(info: Info, input: EraseCustomerInput) -> CustomerPayload:
    erased = await customer_erasure.erase(await caller_of(info), require_pk(input.id, "Customer"), input.reason)
    return CustomerPayload(customer=Customer.from_model(erased))


async def upsert_holding(info: Info, input: UpsertHoldingInput) -> HoldingPayload:
    holding = await customer_service.upsert_holding(
        await caller_of(info),
        require_pk(input.customer_id, "Customer", "customerId"),
        account_no=input.account_no,
        product=input.product,
        balance=input.balance,
        currency=input.currency,
        opened_at=input.opened_at,
        closed_at=input.closed_at,
    )
    return HoldingPayload(holding=ProductHolding.from_model(holding))


async def import_customers(info: Info, input: ImportCustomersInput) -> JobPayload:
    upload = input.file

    async def chunks():
        while data := await upload.read(256 * 1024):
            yield data

    job = await customer_import.start_import(
        await caller_of(info),
        chunks(),
        filename=getattr(upload, "filename", None),
        update_existing=bool(input.update_existing),
        enqueue=info.context.enqueue("run_job"),
    )
    return JobPayload(job=Job.from_model(job))


@strawberry.type
class Query:
    customer: Customer | None = strawberry.field(
        resolver=customer,
        extensions=allow(access.ALL_ROLES),
        description="One customer by id or customer number; null when it does not exist or is hidden from you.",
    )
    customers: Connection[Customer] = strawberry.field(resolver=customers, extensions=allow(access.ALL_ROLES))
    export_customer_data: JSON = strawberry.field(
        resolver=export_customer_data,
        extensions=allow(access.CUSTOMER_EXPORTERS),
        description="Everything held about one customer, as one JSON document (PIPL access request).",
    )


@strawberry.type
class Mutation:
    create_customer: CustomerPayload = mutation("customer.create", access.CUSTOMER_WRITERS, resolver=create_customer)
    update_customer: CustomerPayload = mutation("customer.update", access.CUSTOMER_WRITERS, resolver=update_customer)
    set_consents: CustomerPayload = mutation("customer.consents", access.CONSENT_WRITERS, resolver=set_consents)
    merge_customers: MergeCustomersPayload = mutation(
        "customer.merge", access.CUSTOMER_MERGERS, service_audits=True, resolver=merge_customers
    )
    erase_customer: CustomerPayload = mutation(
        "customer.erase",
        access.CUSTOMER_ERASERS,
        service_audits=True,
        resolver=erase_customer,
        description="PIPL erasure: personal data is anonymised; records the bank must keep stay, unlinked.",
    )
    upsert_holding: HoldingPayload = mutation("holding.upsert", access.CUSTOMER_WRITERS, resolver=upsert_holding)
    import_customers: JobPayload = mutation("customer.import", access.CUSTOMER_WRITERS, resolver=import_customers)
