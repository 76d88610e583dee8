from __future__ import annotations

from datetime import datetime

import strawberry

from schema.base import Connection, Node, node_types, registered_enum
from services import timeline
from services.timeline import Entry

# Kinds of the API contract whose domain has not landed yet; they go when it registers them.
CONTRACT_KINDS_NOT_BUILT: tuple[str, ...] = ()


TimelineKind = registered_enum("TimelineKind", timeline.kinds(), CONTRACT_KINDS_NOT_BUILT)


@strawberry.type
class TimelineItem:
    kind: TimelineKind
    at: datetime
    title: str
    detail: str | None
    subject: Node | None = strawberry.field(description="The Node behind this item, where it has one.")

    @classmethod
    def from_entry(cls, entry: Entry) -> TimelineItem:
        node_type = node_types()[entry.node] if entry.node else None
        return cls(
            kind=TimelineKind(entry.kind),
            at=entry.at,
            title=entry.title,
            detail=entry.detail,
            subject=node_type.from_model(entry.row) if node_type else None,
        )


@strawberry.type(name="TimelineConnection")
class TimelineConnection(Connection[TimelineItem]):
    """The contract names this connection after the timeline, not after its items."""
