"""Shorter paths through Strawberry and graphql-core for the commonest fields of a response.

1. A scalar or enum read straight off its object (a "basic" Strawberry field: no resolver, no permission, no
   arguments).

graphql-core builds a resolve-info tuple, collects arguments, checks for an awaitable and completes the value for
every field; for a list of 50 customers with their holdings that is thousands of times per request, most of the
request's time. Here such a field is the attribute, coerced by its type exactly as complete_leaf_value would.
Anything unusual (a missing attribute, a null in a non-null field, a value the type refuses, field middleware)
takes graphql-core's own path, so errors and their paths are unchanged.

2. A field whose resolver takes only the object and `info` (no arguments, and no field extension but a role
   check): graphql-core calls the resolver itself, without Strawberry's per-call argument conversion and
   extension chain (and, for an async resolver, without a wrapping coroutine). A role check is made first, with
   the request's caller as soon as it is known (once per request, not once per object of a list): the same
   check and the same errors as the field's `allow(...)` extension (schema/permissions.py)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLNonNull, GraphQLSchema, Undefined, is_leaf_type
from graphql.pyutils import Path
from graphql.pyutils.gather_with_cancel import gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter

from schema.permissions import require_roles, roles_required

PLAIN = "crm_plain_leaf"  # the attribute of a GraphQLField holding (python name, coerce, nullable)


def mark_plain_leaves(schema: GraphQLSchema) -> int:
    """Mark every basic leaf field of the schema's object types; returns how many there are."""
    marked = 0
    for type_ in schema.type_map.values():
        fields = getattr(type_, "fields", None)
        if type_.name.startswith("__") or fields is None or not hasattr(type_, "is_type_of"):
            continue
        for field in fields.values():
            definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
            basic = getattr(field.resolve, "_is_default", False) and definition is not None
            if not basic or not definition.is_basic_field or field.args:
                continue
            nullable = not isinstance(field.type, GraphQLNonNull)
            leaf = field.type if nullable else field.type.of_type
            if is_leaf_type(leaf):
                setattr(field, PLAIN, (definition.python_name, leaf.coerce_output_value, nullable))
                marked += 1
    return marked


def use_direct_resolvers(schema: strawberry.Schema) -> int:
    """Let graphql-core call the resolvers that need nothing from Strawberry at call time; returns how many."""
    if schema.exception_handlers:  # Strawberry would route their errors: keep its wrapper
        return 0
    graphql = schema._schema
    roots = {t.name for t in (graphql.query_type, graphql.mutation_type, graphql.subscription_type) if t}
    info_class = schema.config.info_class
    direct = 0
    for type_ in graphql.type_map.values():
        fields = getattr(type_, "fields", None)
        if type_.name.startswith("__") or type_.name in roots or fields is None or not hasattr(type_, "is_type_of"):
            continue
        for field in fields.values():
            definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
            resolver = definition.base_resolver if definition is not None else None
            roles = roles_required(definition.extensions) if definition is not None else None
            guarded = bool(definition and definition.extensions)
            if resolver is None or (guarded and roles is None) or field.args or definition.arguments:
                continue
            if guarded and not resolver.is_async:  # a role check needs the caller: only async fields may wait
                continue
            parameters = list(resolver.signature.parameters)
            takes_info = resolver.info_parameter is not None and resolver.info_parameter.name == "info"
            if resolver.self_parameter is None or parameters != ["self", *(["info"] if takes_info else [])]:
                continue
            if not inspect.isfunction(resolver.wrapped_func):
                continue
            field.resolve = _direct(resolver.wrapped_func, definition, info_class, takes_info)
            if guarded:
                field.resolve = _role_checked(field.resolve, roles)
            direct += 1
    return direct


def _direct(func: Callable[..., Any], definition: Any, info_class: type, takes_info: bool) -> Callable[..., Any]:
    if not takes_info:
        return lambda source, info: func(source)
    return lambda source, info: func(source, info=info_class(_raw_info=info, _field=definition))


def _role_checked(resolve: Callable[..., Any], roles: frozenset) -> Callable[..., Any]:
    async def after_looking(source: Any, info: Any) -> Any:
        require_roles(await info.context.caller(), roles)
        return await resolve(source, info)

    def checked(source: Any, info: Any) -> Any:
        caller = info.context.known_caller()
        if caller is None:
            return after_looking(source, info)
        require_roles(caller, roles)
        return resolve(source, info)

    return checked


class PlainLeafExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Strawberry always passes a manager; it wraps fields only when an extension resolves them.
        self.plain_leaves = self.middleware_manager is None or not self.middleware_manager.middlewares

    def execute_fields(self, parent_type, source_value, path, grouped_field_set, position_context) -> Any:
        """graphql-core's loop over an object's fields, with the plain leaves read in place: no Path, no call."""
        if not self.plain_leaves:
            return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
        fields = parent_type.fields
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list in grouped_field_set.items():
                field_def = fields.get(field_details_list[0].node.name.value)
                plain = getattr(field_def, PLAIN, None) if field_def is not None else None
                if plain is not None:  # _plain_value, inlined: this line runs thousands of times a request
                    name, coerce, nullable = plain
                    value = getattr(source_value, name, Undefined)
                    if value is None and nullable:
                        results[response_name] = None
                        continue
                    if value is not None and value is not Undefined:
                        value = _coerced(coerce, value)
                        if value is not Undefined:
                            results[response_name] = value
                            continue
                result = self.execute_field(
                    parent_type,
                    source_value,
                    field_details_list,
                    Path(path, response_name, parent_type.name),
                    position_context,
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise
        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            if len(awaitable_fields) == 1:
                field = awaitable_fields[0]
                results[field] = await results[field]
            else:
                awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
                results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()


def _coerced(coerce: Any, value: Any) -> Any:
    """The value as its leaf type answers it, or Undefined when graphql-core's own path must report it."""
    try:
        coerced = coerce(value)
    except Exception:
        return Undefined
    return Undefined if coerced is None else coerced
