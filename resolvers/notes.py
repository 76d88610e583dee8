from __future__ import annotations

import strawberry
from strawberry.types import Info

from models.notes import NoteVisibility as NoteVisibilityEnum
from resolvers.common import caller_of
from resolvers.complaints import publish_complaint
from schema.base import from_global_id, pk_of
from schema.conventions import mutation
from schema.notes import AddNoteInput, Note, NotePayload
from services import access, notes as note_service
from services.errors import not_found


async def add_note(info: Info, input: AddNoteInput) -> NotePayload:
    subject = from_global_id(input.subject_id)
    pk = pk_of(subject[1]) if subject is not None and subject[0] in ADD_TO else None
    if pk is None:
        raise not_found("Customer or complaint", "subjectId")
    visibility = NoteVisibilityEnum(input.visibility.value) if input.visibility else None
    note = await ADD_TO[subject[0]](await caller_of(info), pk, input.body, visibility)
    if note.complaint_id is not None:
        publish_complaint(info, note.complaint_id)
    return NotePayload(note=Note.from_model(note))


# What a note may be attached to.
ADD_TO = {"Customer": note_service.add_to_customer, "Complaint": note_service.add_to_complaint}


@strawberry.type
class Mutation:
    add_note: NotePayload = mutation("note.add", access.NOTE_WRITERS, resolver=add_note)
