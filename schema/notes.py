from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.types import Info

from models.notes import Note as NoteModel, NoteVisibility as NoteVisibilityEnum
from schema import loaders
from schema.base import Node, UserError, to_global_id
from schema.customers import reveal_text
from schema.staff import Staff, load_staff
from services import notes as notes_service
from services.access import Caller


@strawberry.enum
class NoteVisibility(Enum):
    INTERNAL = strawberry.enum_value(NoteVisibilityEnum.INTERNAL.value, description="Seen by staff only.")
    CUSTOMER = strawberry.enum_value(
        NoteVisibilityEnum.CUSTOMER.value, description="Part of what the customer is told (a reply)."
    )


@strawberry.type
class Note(Node):
    id: strawberry.ID
    visibility: NoteVisibility
    created_at: datetime
    _m: strawberry.Private[NoteModel]

    @strawberry.field
    def body(self, info: Info) -> str:
        return reveal_text(info, self._m.body)

    @strawberry.field
    async def author(self, info: Info) -> Staff | None:
        return await load_staff(info, self._m.author_id)

    @classmethod
    async def resolve_nodes(cls, caller: Caller, pks: list[int]) -> dict[int, Note]:
        return await cls.nodes_in(notes_service.visible(caller), pks)

    @classmethod
    def from_model(cls, m: NoteModel) -> Note:
        return cls(
            id=to_global_id("Note", m.id),
            visibility=NoteVisibility(m.visibility.value),
            created_at=m.created_at,
            _m=m,
        )


@strawberry.input
class AddNoteInput:
    subject_id: strawberry.ID = strawberry.field(description="A Customer or a Complaint.")
    body: str
    visibility: NoteVisibility | None = None


@strawberry.type
class NotePayload:
    note: Note | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


loaders.register("notes", loaders.grouped(NoteModel, "-created_at"))
loaders.register("complaint_notes", loaders.grouped(NoteModel, "-created_at", parent="complaint_id"))
