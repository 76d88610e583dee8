"""Notes on a customer (and, with the complaints module, on a complaint): INTERNAL or told to the CUSTOMER."""

from __future__ import annotations

from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet

from models.customers import CustomerStatus
from models.notes import Note, NoteVisibility
from models.staff import Role
from services import customers
from services.access import ALL_ROLES, Caller, require_role
from services.errors import DomainError, ErrorCode, invalid

WRITERS = frozenset({Role.ADMIN, Role.MANAGER, Role.RELATIONSHIP_MANAGER, Role.SERVICE_AGENT,
                     Role.COMPLAINT_HANDLER})
MAX_BODY = 10_000


def visible(caller: Caller) -> QuerySet[Note]:
    require_role(caller, ALL_ROLES)
    if customers.home_branch(caller) is None:
        return Note.all()
    return Note.filter(customer_id__in=Subquery(customers.visible(caller).values("id")))


async def add_to_customer(caller: Caller, customer_id: int, body: str,
                          visibility: NoteVisibility | None = None) -> Note:
    require_role(caller, WRITERS)
    customer = await customers.get(caller, customer_id, "subjectId")
    if customer.status == CustomerStatus.ERASED:
        raise invalid("subjectId", "An erased customer takes no new notes")
    text = (body or "").strip()
    if not text:
        raise DomainError(ErrorCode.REQUIRED, "body is required", "body")
    if len(text) > MAX_BODY:
        raise invalid("body", f"body must be at most {MAX_BODY} characters")
    return await Note.create(customer=customer, author=caller.staff, body=text,
                             visibility=visibility or NoteVisibility.INTERNAL)
