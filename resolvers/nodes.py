"""`node` and `nodes`: each type says how to fetch what the caller may see; anything else is null."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import strawberry
from strawberry.types import Info
from tortoise.expressions import Subquery

from models.audit import AuditEntry as AuditEntryModel
from models.customers import ProductHolding as ProductHoldingModel
from models.staff import Staff as StaffModel
from resolvers.common import caller_of
from schema.audit import AuditEntry
from schema.base import Node, api_error, from_global_id, unauthenticated
from schema.complaints import Complaint
from schema.customers import Customer, ProductHolding
from schema.follow_ups import FollowUp
from schema.interactions import Interaction
from schema.jobs import Job
from schema.notes import Note
from schema.staff import Staff
from services import complaints, follow_ups, interactions, notes
from services import customers as customer_service
from services import jobs as job_service
from services.access import AUDIT_READERS, Caller

Fetch = Callable[[Caller, list[int]], Awaitable[dict[int, Node]]]


async def _staff(caller: Caller, pks: list[int]) -> dict[int, Node]:
    return {m.id: Staff.from_model(m) for m in await StaffModel.filter(id__in=pks)}


async def _jobs(caller: Caller, pks: list[int]) -> dict[int, Node]:
    return {m.id: Job.from_model(m) for m in await job_service.visible(caller).filter(id__in=pks)}


async def _audit_entries(caller: Caller, pks: list[int]) -> dict[int, Node]:
    if caller.role not in AUDIT_READERS:
        return {}
    return {m.id: AuditEntry.from_model(m) for m in await AuditEntryModel.filter(id__in=pks)}


async def _customers(caller: Caller, pks: list[int]) -> dict[int, Node]:
    return {m.id: Customer.from_model(m) for m in await customer_service.visible(caller).filter(id__in=pks)}


async def _holdings(caller: Caller, pks: list[int]) -> dict[int, Node]:
    visible = Subquery(customer_service.visible(caller).values("id"))
    rows = await ProductHoldingModel.filter(id__in=pks, customer_id__in=visible)
    return {m.id: ProductHolding.from_model(m) for m in rows}


async def _interactions(caller: Caller, pks: list[int]) -> dict[int, Node]:
    return {m.id: Interaction.from_model(m) for m in await interactions.visible(caller).filter(id__in=pks)}


async def _follow_ups(caller: Caller, pks: list[int]) -> dict[int, Node]:
    return {m.id: FollowUp.from_model(m) for m in await follow_ups.visible(caller).filter(id__in=pks)}


async def _notes(caller: Caller, pks: list[int]) -> dict[int, Node]:
    return {m.id: Note.from_model(m) for m in await notes.visible(caller).filter(id__in=pks)}


async def _complaints(caller: Caller, pks: list[int]) -> dict[int, Node]:
    return {m.id: Complaint.from_model(m) for m in await complaints.visible(caller).filter(id__in=pks)}


FETCHERS: dict[str, Fetch] = {
    "Staff": _staff,
    "Job": _jobs,
    "AuditEntry": _audit_entries,
    "Customer": _customers,
    "ProductHolding": _holdings,
    "Interaction": _interactions,
    "FollowUp": _follow_ups,
    "Note": _notes,
    "Complaint": _complaints,
}
MAX_NODES = 100


async def _resolve(info: Info, ids: list[str]) -> list[Node | None]:
    caller = await caller_of(info)
    if caller.staff is None:
        raise unauthenticated()
    wanted: dict[str, list[int]] = {}
    keys: list[tuple[str, int] | None] = []
    for global_id in ids:
        parsed = from_global_id(global_id)
        if parsed is None or parsed[0] not in FETCHERS or not parsed[1].isdigit():
            keys.append(None)
            continue
        keys.append((parsed[0], int(parsed[1])))
        wanted.setdefault(parsed[0], []).append(int(parsed[1]))
    found = {type_name: await FETCHERS[type_name](caller, pks) for type_name, pks in wanted.items()}
    return [found[k[0]].get(k[1]) if k else None for k in keys]


async def node(info: Info, id: strawberry.ID) -> Node | None:
    return (await _resolve(info, [id]))[0]


async def nodes(info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
    if len(ids) > MAX_NODES:
        raise api_error("LIMIT_EXCEEDED", f"At most {MAX_NODES} ids at once")
    return await _resolve(info, ids)
