"""Schema extensions: error codes on every error, the connection cost limit, and production masking."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)
from strawberry.extensions import MaskErrors, SchemaExtension

from core.logs import request_id_var
from models.audit import AuditEntry
from services.errors import DomainError
from services.pagination import DEFAULT_PAGE

log = logging.getLogger(__name__)
MAX_COST = 50_000
# How strawberry's depth, alias and token limiters word their refusals.
LIMIT_MESSAGES = re.compile(r"exceeds max(imum)? |aliases found\. Allowed|contains more than \d+ tokens")


def _code_for(error: GraphQLError) -> str:
    original = error.original_error
    if isinstance(original, DomainError):
        return original.code.value
    if LIMIT_MESSAGES.search(error.message):
        return "LIMIT_EXCEEDED"
    if error.message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if error.path is None:  # refused before execution: the request's fault
        return "GRAPHQL_VALIDATION_FAILED" if original is None else "BAD_USER_INPUT"
    return "BAD_REQUEST" if original is None or isinstance(original, GraphQLError) else "INTERNAL_SERVER_ERROR"


class ErrorCodes(SchemaExtension):
    """Every error leaves with `extensions.code`; domain errors keep the field they concern."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        # Validation errors appear both as pre-execution errors and in the result: handle each once.
        errors = list(
            {
                id(e): e
                for e in [
                    *(getattr(result, "errors", None) or []),
                    *(self.execution_context.pre_execution_errors or []),
                ]
            }.values()
        )
        metrics = getattr(self.execution_context.context, "metrics", None)
        for error in errors:
            extensions = dict(error.extensions or {})
            extensions.setdefault("code", _code_for(error))
            if isinstance(error.original_error, DomainError) and error.original_error.field:
                extensions.setdefault("field", error.original_error.field)
            error.extensions = extensions
            if metrics is not None:
                metrics.graphql_errors.labels(extensions["code"]).inc()


def _unwrap_object(type_: Any) -> GraphQLObjectType | None:
    named = get_named_type(type_)
    return named if isinstance(named, GraphQLObjectType) else None


class CostLimiter(SchemaExtension):
    """Refuses, before execution, operations whose product of page sizes along nested connections
    could exceed MAX_COST nodes (DOMAIN.md: limits and protection)."""

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        if document is not None:
            fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
            for op in document.definitions:
                if not isinstance(op, OperationDefinitionNode):
                    continue
                if ctx.operation_name and op.name and op.name.value != ctx.operation_name:
                    continue
                root = ctx.schema._schema.get_root_type(op.operation)
                cost = self._cost(op.selection_set, root, 1, fragments, ctx.variables or {}, set())
                if cost > MAX_COST:
                    ctx.result = ExecutionResult(
                        data=None,
                        errors=[
                            GraphQLError(
                                f"Query could return up to {cost} nodes; the limit is {MAX_COST}. "
                                "Ask for smaller pages.",
                                extensions={"code": "LIMIT_EXCEEDED", "cost": cost},
                            )
                        ],
                    )
        yield

    def _cost(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLObjectType | None,
        multiplier: int,
        fragments: dict,
        variables: dict,
        seen: set[str],
    ) -> int:
        if selection_set is None or parent is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                field = parent.fields.get(selection.name.value)
                if field is None:
                    continue
                child = _unwrap_object(field.type)
                size = multiplier
                if child is not None and child.name.endswith("Connection"):
                    size = multiplier * max(1, self._page_size(selection, variables))
                    total += size
                total += self._cost(selection.selection_set, child, size, fragments, variables, seen)
            elif isinstance(selection, InlineFragmentNode):
                target = parent
                if selection.type_condition is not None:
                    target = (
                        _unwrap_object(
                            self.execution_context.schema._schema.get_type(selection.type_condition.name.value)
                        )
                        or parent
                    )
                total += self._cost(selection.selection_set, target, multiplier, fragments, variables, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in seen or name not in fragments:
                    continue
                fragment = fragments[name]
                target = (
                    _unwrap_object(self.execution_context.schema._schema.get_type(fragment.type_condition.name.value))
                    or parent
                )
                total += self._cost(fragment.selection_set, target, multiplier, fragments, variables, seen | {name})
        return total

    @staticmethod
    def _page_size(field: FieldNode, variables: dict) -> int:
        for argument in field.arguments or ():
            if argument.name.value not in ("first", "last"):
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, VariableNode) and isinstance(variables.get(value.name.value), int):
                return variables[value.name.value]
        return DEFAULT_PAGE


def _should_mask(error: GraphQLError) -> bool:
    original = error.original_error
    return error.path is not None and original is not None and not isinstance(original, GraphQLError | DomainError)


class MaskUnexpectedErrors(MaskErrors):
    """Production: an unexpected error says only that it happened, with the request id to quote."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=_should_mask)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        request_id = request_id_var.get()
        return GraphQLError(
            f"Unexpected error. Quote request id {request_id} to support.",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        )


class PiiReadAudit(SchemaExtension):
    """One `customer.pii_read` audit entry per customer per request whose personal data left unmasked."""

    async def on_operation(self) -> AsyncIterator[None]:
        yield
        context = self.execution_context.context
        reads = getattr(context, "pii_reads", None)
        if not reads:
            return
        caller = context._caller
        entries = [
            AuditEntry(
                actor=caller.staff,
                actor_name=caller.staff.username if caller.staff else None,
                action="customer.pii_read",
                subject_type="Customer",
                subject_id=str(customer_id),
                detail={"fields": sorted(fields)},
                request_id=caller.request_id,
                ip=caller.ip,
            )
            for customer_id, fields in sorted(reads.items())
        ]
        reads.clear()
        await AuditEntry.bulk_create(entries)
