"""Schema extensions: error codes on every error, the cost limit, string sizes, and production masking."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from functools import cache
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    NamedTypeNode,
    ObjectFieldNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    Visitor,
    get_named_type,
    is_abstract_type,
    value_from_ast_untyped,
    visit,
)
from graphql.validation import ValidationContext, ValidationRule
from strawberry.extensions import AddValidationRules, MaskErrors, ParserCache, SchemaExtension

from core.db import UNAVAILABLE_MESSAGE, is_unavailable
from core.logs import request_id_var
from models.customers import Channel, ConsentPurpose, ProductType
from resolvers.nodes import MAX_NODES
from services.customer_rules import MAX_TAGS
from services.customers import MAX_DUPLICATES
from services.errors import DomainError
from services.jobs import MAX_STORED_ERRORS
from services.pagination import DEFAULT_PAGE, MAX_PAGE
from services.surveys import MAX_OPTIONS, MAX_QUESTIONS

log = logging.getLogger(__name__)
MAX_COST = 50_000
# How strawberry's depth, alias and token limiters word their refusals.
LIMIT_MESSAGES = re.compile(r"exceeds max(imum)? |aliases found\. Allowed|contains more than \d+ tokens")


def _code_for(error: GraphQLError) -> str:
    original = error.original_error
    if is_unavailable(original):  # the database is out of reach: nobody's fault, worth trying again
        return "SERVICE_UNAVAILABLE"
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
    """Every error leaves with `extensions.code`; domain errors keep the field they concern. An error of the
    database being out of reach (core.db.is_unavailable) leaves as SERVICE_UNAVAILABLE with a generic message: its
    own (a socket's) tells the client nothing it can use."""

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
            if extensions["code"] == "SERVICE_UNAVAILABLE" and is_unavailable(error.original_error):
                error.message = UNAVAILABLE_MESSAGE
            if isinstance(error.original_error, DomainError) and error.original_error.field:
                extensions.setdefault("field", error.original_error.field)
            error.extensions = extensions
            if metrics is not None:
                metrics.graphql_errors.labels(extensions["code"]).inc()


# ---------------------------------------------------------------- the cost of an operation

# The most items each plain list field (one that is not a connection's `edges`) can hold: its real maximum,
# or the bound its resolver applies. `tests/security/test_cost_limit.py` fails on a list field missing here.
HOLDINGS_SHOWN = 200  # Customer.holdings (resolver keeps the first 200)
NOTES_SHOWN = 200  # Customer.notes and Complaint.notes (newest 200)
EVENTS_SHOWN = 200  # Complaint.events (first 200)
FOLLOW_UPS_SHOWN = 100  # Complaint.followUps (first 100)
STAT_BUCKETS = 3 * 366 + 1  # a stats period spans at most 3 years: one bucket a day at most
USER_ERRORS = 50  # a payload's errors: one per input field at most
LIST_BOUNDS: dict[tuple[str, str], int] = {
    ("Customer", "tags"): MAX_TAGS,
    ("Customer", "consents"): len(ConsentPurpose) * (len(Channel) + 1),
    ("Customer", "dataIssues"): 20,  # one per assessed field (customer_rules.assess)
    ("Customer", "holdings"): HOLDINGS_SHOWN,
    ("Customer", "notes"): NOTES_SHOWN,
    ("Customer", "possibleDuplicates"): MAX_DUPLICATES,
    ("Complaint", "events"): EVENTS_SHOWN,
    ("Complaint", "notes"): NOTES_SHOWN,
    ("Complaint", "followUps"): FOLLOW_UPS_SHOWN,
    ("Portrait", "productTypes"): len(ProductType),
    ("Portrait", "nextBestProducts"): len(ProductType),
    ("Portrait", "churnDrivers"): 5,  # each of the 5 signals at most once (portrait_rules.churn_drivers)
    ("Portrait", "tags"): MAX_TAGS + 4,  # the staff's tags and at most 4 derived ones
    ("SurveyTemplate", "questions"): MAX_QUESTIONS,
    ("PublicSurvey", "questions"): MAX_QUESTIONS,
    ("SurveyResponse", "answers"): MAX_QUESTIONS,
    ("SurveyQuestion", "options"): MAX_OPTIONS,
    ("SurveyAnswer", "choices"): MAX_OPTIONS,
    ("Job", "errors"): MAX_STORED_ERRORS + 1,  # the stored row errors, and the job's own failure
    ("Query", "nodes"): MAX_NODES,  # counted at the number of ids given
    ("Query", "complaintStats"): STAT_BUCKETS,
    ("Query", "surveyStats"): STAT_BUCKETS,
    ("Query", "tierDistribution"): 4,  # the value tiers
    ("UserError", "field"): 10,  # a path into the input
}
# Lists counted at the length of one of their arguments (a list of ids): field -> argument.
SIZED_BY_ARGUMENT: dict[tuple[str, str], str] = {("Query", "nodes"): "ids"}
DEFAULT_LIST_BOUND = MAX_PAGE  # a list field nobody declared above (payload `errors`: USER_ERRORS)
MAX_WALK_DEPTH = 64  # nesting the cost walk follows; deeper is refused (the depth limit stops queries at 10)


class _TooDeep(Exception):
    pass


def list_bound(type_name: str, field_name: str) -> int:
    if field_name == "errors" and type_name.endswith("Payload"):
        return USER_ERRORS
    return LIST_BOUNDS.get((type_name, field_name), DEFAULT_LIST_BOUND)


class CostEstimate:
    """The most nodes an operation can return: each list field counts at its maximum (a connection at its page,
    `first`/`last` or the default 20; `nodes(ids:)` at the ids given; a plain list at LIST_BOUNDS), multiplied
    along the nesting. Fields are collected as execution collects them (named and inline fragments, each
    fragment once per selection set, same-named fields merged); an abstract type (interface, union) costs its
    most expensive possible type. Variables and their defaults are resolved; a fragment spread inside itself
    (refused by validation anyway) is not followed."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode, variables: dict[str, Any] | None) -> None:
        self.schema = schema
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self.variables = dict(variables or {})
        self._known: dict[tuple, int] = {}

    def of_operation(self, operation: OperationDefinitionNode) -> int:
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            if name not in self.variables and definition.default_value is not None:
                self.variables[name] = value_from_ast_untyped(definition.default_value, self.variables)
        root = self.schema.get_root_type(operation.operation)
        if root is None:
            return 0
        try:
            return self._cost([operation.selection_set], root, (), 0)
        except (_TooDeep, RecursionError):
            return MAX_COST + 1

    def _cost(
        self, selection_sets: list[SelectionSetNode], type_: GraphQLObjectType, active: tuple[str, ...], depth: int
    ) -> int:
        """Nodes below one object of `type_` selecting `selection_sets` (merged)."""
        if depth > MAX_WALK_DEPTH:
            raise _TooDeep
        key = (tuple(id(s) for s in selection_sets), type_.name)
        if key not in self._known:  # a fragment reached along many paths is costed once per type
            self._known[key] = self._cost_of(selection_sets, type_, active, depth)
        return self._known[key]

    def _cost_of(
        self, selection_sets: list[SelectionSetNode], type_: GraphQLObjectType, active: tuple[str, ...], depth: int
    ) -> int:
        fields: dict[str, list[FieldNode]] = {}
        self._collect(selection_sets, type_, fields, set(), active)
        total = 0
        for nodes in fields.values():
            name = nodes[0].name.value
            if name.startswith("__"):  # __typename; introspection is its own matter
                continue
            field = type_.fields.get(name)
            if field is None:
                continue
            field_type = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
            named = get_named_type(field_type)
            size, counted = 1, False
            if _is_connection(named):
                size, counted = self._page_size(nodes[0]), True
            elif isinstance(field_type, GraphQLList) and not (name == "edges" and _is_connection(type_)):
                size, counted = self._list_size(type_.name, nodes[0]), True  # edges: counted with the connection
            below = [n.selection_set for n in nodes if n.selection_set is not None]
            child = 0
            if below and is_abstract_type(named):
                child = max(
                    (self._cost(below, t, active, depth + 1) for t in self.schema.get_possible_types(named)),
                    default=0,
                )
            elif below and isinstance(named, GraphQLObjectType):
                child = self._cost(below, named, active, depth + 1)
            total += (size if counted else 0) + size * child
        return total

    def _collect(
        self,
        selection_sets: list[SelectionSetNode],
        type_: GraphQLObjectType,
        fields: dict[str, list[FieldNode]],
        visited: set[str],
        active: tuple[str, ...],
    ) -> None:
        for selection_set in selection_sets:
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    key = selection.alias.value if selection.alias else selection.name.value
                    fields.setdefault(key, []).append(selection)
                elif isinstance(selection, InlineFragmentNode):
                    if self._applies(selection.type_condition, type_):
                        self._collect([selection.selection_set], type_, fields, visited, active)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.fragments.get(name)
                    if fragment is None or name in visited or name in active:
                        continue
                    visited.add(name)
                    if self._applies(fragment.type_condition, type_):
                        self._collect([fragment.selection_set], type_, fields, visited, (*active, name))

    def _applies(self, condition: NamedTypeNode | None, type_: GraphQLObjectType) -> bool:
        if condition is None:
            return True
        target = self.schema.get_type(condition.name.value)
        if target is None:
            return False
        if is_abstract_type(target):
            return self.schema.is_sub_type(target, type_)
        return target is type_

    def _argument(self, field: FieldNode, name: str) -> Any:
        for argument in field.arguments or ():
            if argument.name.value == name:
                return value_from_ast_untyped(argument.value, self.variables)
        return None

    def _page_size(self, field: FieldNode) -> int:
        sizes = [v for v in (self._argument(field, "first"), self._argument(field, "last")) if _is_int(v)]
        return max(0, *sizes) if sizes else DEFAULT_PAGE

    def _list_size(self, type_name: str, field: FieldNode) -> int:
        argument = SIZED_BY_ARGUMENT.get((type_name, field.name.value))
        if argument is not None:
            value = self._argument(field, argument)
            if isinstance(value, list):
                return len(value)
            return 0 if value is None else 1
        return list_bound(type_name, field.name.value)


def _is_connection(type_: Any) -> bool:
    return isinstance(type_, GraphQLObjectType) and type_.name.endswith("Connection") and "edges" in type_.fields


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class CostLimiter(SchemaExtension):
    """Refuses, before execution, operations that could return more than MAX_COST nodes (CostEstimate;
    docs/DOMAIN.md: limits and protection)."""

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        if document is not None:
            estimate = CostEstimate(ctx.schema._schema, document, ctx.variables)
            for op in document.definitions:
                if not isinstance(op, OperationDefinitionNode):
                    continue
                if ctx.operation_name and (op.name is None or op.name.value != ctx.operation_name):
                    continue
                cost = estimate.of_operation(op)
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
                    break
        yield


# ---------------------------------------------------------------- string sizes

MAX_STRING = 20_000  # any string argument or input field: the longest text the domain takes (MAX_TEXT)
# Smaller limits for arguments and input fields by name, wherever they appear.
MAX_STRING_BY_NAME: dict[str, int] = {"search": 200}


def string_limit(name: str | None) -> int:
    return MAX_STRING_BY_NAME.get(name or "", MAX_STRING)


class _Strings(Visitor):
    """Walks an operation: string literals too long for the argument or input field that holds them, and the
    argument or input field each variable is given to."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.too_long: list[tuple[list[str], int]] = []
        self.unstorable: list[list[str]] = []
        self.uses: dict[str, set[str | None]] = {}

    def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
        self.names.append(node.name.value)

    def leave_argument(self, *_: Any) -> None:
        self.names.pop()

    def enter_object_field(self, node: ObjectFieldNode, *_: Any) -> None:
        self.names.append(node.name.value)

    def leave_object_field(self, *_: Any) -> None:
        self.names.pop()

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        limit = string_limit(self.names[-1] if self.names else None)
        if len(node.value) > limit:
            self.too_long.append((list(self.names), limit))
        if not storable(node.value):
            self.unstorable.append(list(self.names))

    def enter_variable(self, node: VariableNode, *_: Any) -> None:
        if self.names:  # given to an argument or input field (not its own definition)
            self.uses.setdefault(node.name.value, set()).add(self.names[-1])


def storable(text: str) -> bool:
    """Whether text can be stored and encoded: no NUL character (PostgreSQL's text refuses it) and no unpaired
    surrogate (valid in JSON escapes, not in UTF-8)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unstorable(value: Any, path: list[str]) -> list[str] | None:
    """The path of the first string in a variable's value that is not storable."""
    if isinstance(value, str):
        return None if storable(value) else path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if (found := _unstorable(item, [*path, str(key)] if isinstance(value, dict) else path)) is not None:
            return found
    return None


def _long_string(value: Any, name: str | None, path: list[str]) -> tuple[list[str], int] | None:
    """The first string in a variable's value longer than the limit of the input field holding it."""
    if isinstance(value, str):
        limit = string_limit(name)
        return (path, limit) if len(value) > limit else None
    if isinstance(value, list):
        for item in value:
            if found := _long_string(item, name, path):
                return found
    if isinstance(value, dict):
        for key, item in value.items():
            if found := _long_string(item, str(key), [*path, str(key)]):
                return found
    return None


def oversized_strings(
    document: DocumentNode, operation: OperationDefinitionNode, variables: dict
) -> GraphQLError | None:
    """BAD_USER_INPUT for the first string that cannot be stored (NUL, unpaired surrogate), LIMIT_EXCEEDED for the
    first string literal or variable value longer than its limit, else None."""
    walker = _Strings()
    for definition in document.definitions:  # fragments too: they may hold literals
        if definition is operation or isinstance(definition, FragmentDefinitionNode):
            visit(definition, walker)
    unstorable = walker.unstorable[0] if walker.unstorable else None
    for name, value in variables.items():
        if unstorable is None:
            unstorable = _unstorable(value, [f"${name}"])
    if unstorable is not None:
        return GraphQLError(
            f"{'.'.join(unstorable) or 'A string'} holds a NUL character or an unpaired surrogate.",
            extensions={"code": "BAD_USER_INPUT", "field": unstorable},
        )
    found = walker.too_long[0] if walker.too_long else None
    if found is None:
        given = {}
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            if name in variables:
                given[name] = variables[name]
            elif definition.default_value is not None:
                given[name] = value_from_ast_untyped(definition.default_value)
        for name, value in given.items():
            # The strictest limit of the places the variable is given to; inside an input object, the field's own.
            used = sorted(walker.uses.get(name) or [], key=lambda n: (string_limit(n), n))
            place = used[0] if used else None
            if hit := _long_string(value, place, [place] if place else [f"${name}"]):
                found = hit
                break
    if found is None:
        return None
    path, limit = found
    return GraphQLError(
        f"{'.'.join(path) or 'A string'} is too long: at most {limit} characters.",
        extensions={"code": "LIMIT_EXCEEDED", "field": path, "limit": limit},
    )


class InputSizeLimiter(SchemaExtension):
    """Refuses, before execution, string arguments and input fields (literals or variables, at any depth of input
    objects and lists) longer than their limit (MAX_STRING, or MAX_STRING_BY_NAME for their name) or holding text
    no database stores (a NUL character, an unpaired surrogate)."""

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        if document is not None and ctx.result is None:
            for op in document.definitions:
                if not isinstance(op, OperationDefinitionNode):
                    continue
                if ctx.operation_name and (op.name is None or op.name.value != ctx.operation_name):
                    continue
                error = oversized_strings(document, op, ctx.variables or {})
                if error is not None:
                    ctx.result = ExecutionResult(data=None, errors=[error])
                    break
        yield


# ---------------------------------------------------------------- suggestions

SUGGESTION = re.compile(r"\s*Did you mean .*$", re.DOTALL)


class NoSuggestions(SchemaExtension):
    """Production: no "Did you mean ...?" in any error (fields, arguments, enum values, input fields, types), so
    that wrong guesses teach nothing about the schema."""

    def on_operation(self) -> Iterator[None]:
        yield
        ctx = self.execution_context
        for error in [*(getattr(ctx.result, "errors", None) or []), *(ctx.pre_execution_errors or [])]:
            if "Did you mean" in error.message:
                error.message = SUGGESTION.sub("", error.message)


# ---------------------------------------------------------------- depth and aliases


class _Shape:
    """The depth and the alias count of operations, each fragment measured once. strawberry's limiters walk
    every path, so that a fragment spread n times in each of k chained fragments costs them n^k steps: a query of
    a few hundred tokens held a worker for hours. Counts are those of strawberry's limiters: depth is the nesting
    of fields below the root fields (`{ a { b } }` is 1), aliases count once per place a fragment expands."""

    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self._known: dict[tuple[str, str], int] = {}
        self._open: set[str] = set()

    def depth(self, selection_set: SelectionSetNode | None) -> int:
        height = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                if selection.selection_set is not None and not selection.name.value.startswith("__"):
                    height = max(height, 1 + self.depth(selection.selection_set))
            elif isinstance(selection, InlineFragmentNode):
                height = max(height, self.depth(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                height = max(height, self._fragment("depth", selection.name.value))
        return height

    def aliases(self, selection_set: SelectionSetNode | None) -> int:
        count = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                count += (selection.alias is not None) + self.aliases(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                count += self.aliases(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                count += self._fragment("aliases", selection.name.value)
        return count

    def _fragment(self, measure: str, name: str) -> int:
        fragment = self.fragments.get(name)
        if fragment is None or name in self._open:  # unknown, or a cycle: validation refuses both
            return 0
        if (measure, name) not in self._known:
            self._open.add(name)
            try:
                self._known[(measure, name)] = getattr(self, measure)(fragment.selection_set)
            finally:
                self._open.discard(name)
        return self._known[(measure, name)]


def _shape_rule(check: Callable[[_Shape, OperationDefinitionNode], str | None]) -> type[ValidationRule]:
    class ShapeRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            shape = _Shape(context.document)
            for operation in context.document.definitions:
                if isinstance(operation, OperationDefinitionNode):
                    try:
                        message = check(shape, operation)
                    except RecursionError:
                        message = "The document nests too deep: exceeds maximum nesting"
                    if message:
                        context.report_error(GraphQLError(message, [operation]))

    return ShapeRule


@cache
def depth_rule(max_depth: int) -> type[ValidationRule]:
    """One rule class per limit, for every request: the validation cache keys on the rules."""

    def check(shape: _Shape, operation: OperationDefinitionNode) -> str | None:
        if shape.depth(operation.selection_set) > max_depth:
            name = operation.name.value if operation.name else "anonymous"
            return f"'{name}' exceeds maximum operation depth of {max_depth}"
        return None

    return _shape_rule(check)


@cache
def alias_rule(max_alias_count: int) -> type[ValidationRule]:
    def check(shape: _Shape, operation: OperationDefinitionNode) -> str | None:
        count = shape.aliases(operation.selection_set)
        return f"{count} aliases found. Allowed: {max_alias_count}" if count > max_alias_count else None

    return _shape_rule(check)


class DepthLimiter(AddValidationRules):
    """Operations nesting fields deeper than `max_depth` below their root fields are refused (LIMIT_EXCEEDED)."""

    def __init__(self, max_depth: int) -> None:
        super().__init__([depth_rule(max_depth)])


class AliasLimiter(AddValidationRules):
    """Documents with more than `max_alias_count` aliases, fragments counted where they expand, are refused."""

    def __init__(self, max_alias_count: int) -> None:
        super().__init__([alias_rule(max_alias_count)])


class DocumentCache(ParserCache):
    """Parsed documents by query text (and, with ValidationCache, their validation). A text that does not parse
    (a syntax error, too many tokens) is left to Strawberry's own parse, which reports it as usual."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        try:
            context.graphql_document = self.cached_parse_document(context.query, **context.parse_options)
        except GraphQLError:
            pass  # not cached: Strawberry parses it again and reports the error its own way
        yield


def _should_mask(error: GraphQLError) -> bool:
    original = error.original_error
    return (
        error.path is not None
        and original is not None
        and not isinstance(original, GraphQLError | DomainError)
        and not is_unavailable(original)  # SERVICE_UNAVAILABLE says only that (ErrorCodes)
    )


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
        if getattr(context, "pii_reads", None):
            try:
                await context.flush_pii_reads()
            except Exception as error:
                if not is_unavailable(error):
                    raise
                # Unaudited personal data does not leave: the whole answer becomes SERVICE_UNAVAILABLE.
                log.warning("PII read audit not written: the database is unavailable (%s)", type(error).__name__)
                result = self.execution_context.result  # Strawberry returns this object: change it in place
                refusal = GraphQLError(UNAVAILABLE_MESSAGE, extensions={"code": "SERVICE_UNAVAILABLE"})
                if result is None:
                    self.execution_context.result = ExecutionResult(data=None, errors=[refusal])
                else:
                    result.data, result.errors = None, [refusal]
