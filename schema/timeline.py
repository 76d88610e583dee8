from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

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
    _entry: strawberry.Private[Entry]

    @strawberry.field(description="The Node behind this item, where it has one.")
    async def subject(self, info: Info) -> Node | None:
        entry = self._entry
        if entry.node is None or entry.node_id is None:
            return None
        node_type = node_types()[entry.node]
        if entry.row_is_node:
            return node_type.from_model(entry.row)
        # Another row (a complaint event's complaint): every item of the page asks at once, through the Node
        # lookup of its type, which also keeps to what the caller may see.
        caller = await info.context.caller()

        def make():
            async def load(pks: list[int]) -> list[Node | None]:
                found = await node_type.resolve_nodes(caller, list(set(pks)))
                return [found.get(pk) for pk in pks]

            return load

        return await info.context.loaders.made(("timeline_subject", entry.node), make).load(entry.node_id)

    @classmethod
    def from_entry(cls, entry: Entry) -> TimelineItem:
        return cls(kind=TimelineKind(entry.kind), at=entry.at, title=entry.title, detail=entry.detail, _entry=entry)


@strawberry.type(name="TimelineConnection")
class TimelineConnection(Connection[TimelineItem]):
    """The contract names this connection after the timeline, not after its items."""
