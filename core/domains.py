"""The domain list: the one place a new domain is named.

A domain keeps one module per layer under the same name (`models/complaints.py`,
`services/complaints.py`, `schema/complaints.py`, `resolvers/complaints.py`, `tasks/complaints.py`);
a layer may be absent. Every central registry discovers its members by importing the domain modules
of its layer:

- models: Tortoise's model modules (core/db.py);
- services: settings sections, timeline kinds, customer-record hooks (registered at import);
- schema: Node types (each resolves its own ids) and per-request DataLoaders;
- resolvers: each domain's `Query`, `Mutation` and `Subscription` root fields (schema/root.py merges them);
- tasks: actors, scheduled work and job kinds;
- pages: HTTP pages a domain serves itself, outside GraphQL (`routes(settings)`), e.g. the survey page.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

DOMAINS = (
    "staff",
    "jobs",
    "audit",
    "customers",
    "interactions",
    "follow_ups",
    "notes",
    "complaints",
    "notifications",
    "surveys",
    "portraits",
    "segments",
    "limits",
)
LAYERS = ("models", "services", "schema", "resolvers", "tasks", "pages")


def module_names(layer: str) -> list[str]:
    """`layer.domain` for every domain that has a module in that layer, in domain order."""
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}; the layers are {', '.join(LAYERS)}")
    return [f"{layer}.{d}" for d in DOMAINS if importlib.util.find_spec(f"{layer}.{d}") is not None]


def modules(layer: str) -> list[ModuleType]:
    """The layer's module of every domain, imported (which runs its registrations)."""
    return [importlib.import_module(name) for name in module_names(layer)]
