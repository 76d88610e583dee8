"""Notes on a customer (and, with the complaints module, on a complaint): INTERNAL or told to the CUSTOMER."""

from __future__ import annotations

from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet

from models.customers import CustomerStatus
from models.notes import Note, NoteVisibility
from services import access, customers, timeline
from services.access import ALL_ROLES, Caller, require_role
from services.errors import DomainError, ErrorCode, invalid

MAX_BODY = 10_000


def visible(caller: Caller) -> QuerySet[Note]:
    require_role(caller, ALL_ROLES)
    if customers.home_branch(caller) is None:
        return Note.all()
    return Note.filter(customer_id__in=Subquery(customers.visible(caller).values("id")))


async def add_to_customer(
    caller: Caller, customer_id: int, body: str, visibility: NoteVisibility | None = None
) -> Note:
    require_role(caller, access.NOTE_WRITERS)
    customer = await customers.get(caller, customer_id, "subjectId")
    if customer.status == CustomerStatus.ERASED:
        raise invalid("subjectId", "An erased customer takes no new notes")
    text = _body(body)
    return await Note.create(
        customer=customer, author=caller.staff, body=text, visibility=visibility or NoteVisibility.INTERNAL
    )


async def add_to_complaint(
    caller: Caller, complaint_id: int, body: str, visibility: NoteVisibility | None = None
) -> Note:
    """A note on a complaint also belongs to its customer, and is a NOTE_ADDED event of the complaint."""
    from models.complaints import ComplaintEventType
    from services import complaints

    require_role(caller, access.NOTE_WRITERS)
    complaint = await complaints.get(caller, complaint_id, "subjectId")
    text = _body(body)
    note = await Note.create(
        customer_id=complaint.customer_id,
        complaint=complaint,
        author=caller.staff,
        body=text,
        visibility=visibility or NoteVisibility.INTERNAL,
    )
    await complaints.add_event(
        complaint, ComplaintEventType.NOTE_ADDED, actor=caller.staff, message=f"{note.visibility.value} note added"
    )
    return note


def _body(body: str) -> str:
    text = (body or "").strip()
    if not text:
        raise DomainError(ErrorCode.REQUIRED, "body is required", "body")
    if len(text) > MAX_BODY:
        raise invalid("body", f"body must be at most {MAX_BODY} characters")
    return text


timeline.register(
    timeline.Source(
        "NOTE",
        Note,
        "created_at",
        lambda r: (f"Note ({r.visibility.value.lower()})", timeline.short(r.body)),
        node="Note",
    )
)
