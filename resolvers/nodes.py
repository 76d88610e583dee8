"""`node` and `nodes`: every Node type of every domain fetches its own ids (`resolve_nodes`), keeping
only what the caller may see; anything else is null."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.common import caller_of
from schema.base import Node, api_error, from_global_id, node_types, pk_of, unauthenticated

MAX_NODES = 100


async def _resolve(info: Info, ids: list[str]) -> list[Node | None]:
    caller = await caller_of(info)
    if caller.staff is None:
        raise unauthenticated()
    types = node_types()
    wanted: dict[str, list[int]] = {}
    keys: list[tuple[str, int] | None] = []
    for global_id in ids:
        parsed = from_global_id(global_id)
        pk = pk_of(parsed[1]) if parsed is not None and parsed[0] in types else None
        if pk is None:
            keys.append(None)
            continue
        keys.append((parsed[0], pk))
        wanted.setdefault(parsed[0], []).append(pk)
    found = {name: await types[name].resolve_nodes(caller, pks) for name, pks in wanted.items()}
    return [found[k[0]].get(k[1]) if k else None for k in keys]


async def node(info: Info, id: strawberry.ID) -> Node | None:
    return (await _resolve(info, [id]))[0]


async def nodes(info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
    if len(ids) > MAX_NODES:
        raise api_error("LIMIT_EXCEEDED", f"At most {MAX_NODES} ids at once")
    return await _resolve(info, ids)


@strawberry.type
class Query:
    node: Node | None = strawberry.field(
        resolver=node, description="Anything by its global id; null when it does not exist or is hidden from you."
    )
    nodes: list[Node | None] = strawberry.field(resolver=nodes)
