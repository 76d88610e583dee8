from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from schema.base import Connection, Node
from schema.complaints import Complaint
from schema.customers import ProductHolding
from schema.follow_ups import FollowUp
from schema.interactions import Interaction
from schema.notes import Note
from services.timeline import Entry


@strawberry.enum
class TimelineKind(Enum):
    INTERACTION = "INTERACTION"
    COMPLAINT = "COMPLAINT"
    COMPLAINT_EVENT = "COMPLAINT_EVENT"
    SURVEY_INVITATION = "SURVEY_INVITATION"
    SURVEY_RESPONSE = "SURVEY_RESPONSE"
    FOLLOW_UP = "FOLLOW_UP"
    NOTE = "NOTE"
    CHANGE = "CHANGE"
    HOLDING = "HOLDING"


# How each kind's row becomes the Node a timeline item points at (None: the kind has no Node).
SUBJECTS = {
    "COMPLAINT": Complaint.from_model,
    "COMPLAINT_EVENT": None,
    "INTERACTION": Interaction.from_model,
    "FOLLOW_UP": FollowUp.from_model,
    "NOTE": Note.from_model,
    "HOLDING": ProductHolding.from_model,
    "CHANGE": None,
}


@strawberry.type
class TimelineItem:
    kind: TimelineKind
    at: datetime
    title: str
    detail: str | None
    subject: Node | None = strawberry.field(description="The Node behind this item, where it has one.")

    @classmethod
    def from_entry(cls, entry: Entry) -> TimelineItem:
        convert = SUBJECTS.get(entry.kind)
        return cls(
            kind=TimelineKind(entry.kind),
            at=entry.at,
            title=entry.title,
            detail=entry.detail,
            subject=convert(entry.row) if convert else None,
        )


@strawberry.type(name="TimelineConnection")
class TimelineConnection(Connection[TimelineItem]):
    """The contract names this connection after the timeline, not after its items."""
