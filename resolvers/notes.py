from __future__ import annotations

from strawberry.types import Info

from models.notes import NoteVisibility as NoteVisibilityEnum
from resolvers.common import caller_of
from schema.base import from_global_id
from schema.notes import AddNoteInput, Note, NotePayload
from services import notes as note_service
from services.errors import not_found


async def add_note(info: Info, input: AddNoteInput) -> NotePayload:
    subject = from_global_id(input.subject_id)
    if subject is None or subject[0] != "Customer" or not subject[1].isdigit():
        raise not_found("Customer or complaint", "subjectId")
    visibility = NoteVisibilityEnum(input.visibility.value) if input.visibility else None
    note = await note_service.add_to_customer(await caller_of(info), int(subject[1]), input.body, visibility)
    return NotePayload(note=Note.from_model(note))
