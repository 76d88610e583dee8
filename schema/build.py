from __future__ import annotations

from datetime import datetime
from functools import cache

import strawberry
from strawberry.extensions import DisableIntrospection, MaxTokensLimiter, ValidationCache
from strawberry.schema.config import StrawberryConfig

from schema.base import DATETIME_SCALAR, node_types
from schema.execution import PlainLeafExecutionContext, mark_plain_leaves, use_direct_resolvers
from schema.protection import (
    AliasLimiter,
    CostLimiter,
    DepthLimiter,
    DocumentCache,
    ErrorCodes,
    InputSizeLimiter,
    MaskUnexpectedErrors,
    NoSuggestions,
    PiiReadAudit,
)
from schema.root import Mutation, Query, Subscription

LIMITS = {"depth": 10, "aliases": 30, "tokens": 5_000, "batch": 20}
# Parsed and validated documents kept, keyed by the query text: clients send the same few queries again and again.
DOCUMENT_CACHE_SIZE = 512


def protection_extensions(production: bool = False) -> list:
    """Fresh extensions per request (factories), in the order they must run."""
    extensions: list = [
        lambda: DepthLimiter(max_depth=LIMITS["depth"]),
        lambda: AliasLimiter(max_alias_count=LIMITS["aliases"]),
        lambda: MaxTokensLimiter(max_token_count=LIMITS["tokens"]),
        lambda: DocumentCache(maxsize=DOCUMENT_CACHE_SIZE),
        lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE),
        CostLimiter,
        InputSizeLimiter,
        ErrorCodes,
        PiiReadAudit,
    ]
    if production:
        extensions += [DisableIntrospection, MaskUnexpectedErrors, NoSuggestions]
    return extensions


def build_schema(production: bool = False) -> strawberry.Schema:
    schema = strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=list(node_types().values()),
        extensions=protection_extensions(production),
        config=StrawberryConfig(
            batching_config={"max_operations": LIMITS["batch"]},
            disable_field_suggestions=production,
            scalar_map={datetime: DATETIME_SCALAR},
        ),
        execution_context_class=PlainLeafExecutionContext,
    )
    mark_plain_leaves(schema._schema)
    use_direct_resolvers(schema)
    return schema


@cache
def shared_schema(production: bool) -> strawberry.Schema:
    """The schema every app of this process serves: built once (it is immutable once built, and the document
    caches key on it, so a schema per app would keep every earlier one alive in them)."""
    return build_schema(production=production)


def export_sdl() -> str:
    return build_schema().as_str() + "\n"
