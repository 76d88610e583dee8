"""The root types: every domain's `Query`, `Mutation` and `Subscription` (declared in its resolvers
module, next to its resolvers), merged. Nothing here names a domain."""

from __future__ import annotations

from strawberry.tools import merge_types

from core import domains
from resolvers import nodes


def _merged(name: str, *extra: type) -> type:
    parts = [*extra, *(getattr(m, name) for m in domains.modules("resolvers") if hasattr(m, name))]
    return merge_types(name, tuple(parts))


Query = _merged("Query", nodes.Query)
Mutation = _merged("Mutation")
Subscription = _merged("Subscription")
