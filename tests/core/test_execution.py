"""schema/execution.py's shorter paths answer exactly what Strawberry's own paths answer: values, nulls, errors
and their paths, for plain attributes and for resolvers taking only the object and `info`."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from types import SimpleNamespace

import pytest
import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from models.staff import Role, Staff as StaffModel
from schema.execution import (
    PLAIN,
    PlainLeafExecutionContext,
    _role_checked,
    mark_plain_leaves,
    use_direct_resolvers,
)
from services.access import Caller


@strawberry.enum
class Colour(Enum):
    RED = "RED"
    BLUE = "BLUE"


@strawberry.type
class Item:
    name: str
    colour: Colour
    amount: Decimal
    when: datetime
    day: date | None
    note: str | None
    count: int
    ratio: float
    flag: bool

    @strawberry.field
    def shout(self, info: Info) -> str:
        return f"{self.name.upper()} for {info.context['viewer']}"

    @strawberry.field
    async def later(self, info: Info) -> str:
        return f"{self.name} later ({info.path.key})"

    @strawberry.field
    def broken(self) -> str | None:
        raise ValueError("no shouting here")

    @strawberry.field
    def tagged(self, prefix: str = "#") -> str:  # has an argument: stays on Strawberry's path
        return prefix + self.name


def _item(**changes) -> Item:
    values = {
        "name": "a",
        "colour": Colour.BLUE,
        "amount": Decimal("12.50"),
        "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "day": None,
        "note": None,
        "count": 3,
        "ratio": 0.25,
        "flag": True,
    }
    return Item(**{**values, **changes})


ITEMS = [
    _item(),
    _item(name="b", colour=Colour.RED, day=date(2026, 5, 1), note="x"),
    _item(name="c", count=None),  # a null in a non-null field: an error at items.2.count, items.2 null
    _item(name="d", colour="GREEN"),  # a value the enum refuses
    _item(name="e", ratio="not a number"),
]


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item | None]:
        return ITEMS


QUERY = """{ items { name colour amount when day note count ratio flag shout later broken tagged(prefix: "@")
  __typename } }"""


def _schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    plain = strawberry.Schema(query=Query)
    fast = strawberry.Schema(query=Query, execution_context_class=PlainLeafExecutionContext)
    assert mark_plain_leaves(fast._schema) == 9
    assert use_direct_resolvers(fast) == 3  # shout, later, broken: not tagged (an argument)
    return plain, fast


def _errors(result) -> list[tuple[str, tuple]]:
    return sorted((e.message, tuple(e.path or ())) for e in result.errors or [])


async def test_the_short_paths_answer_what_strawberry_answers():
    plain, fast = _schemas()
    expected = await plain.execute(QUERY, context_value={"viewer": "ops"})
    got = await fast.execute(QUERY, context_value={"viewer": "ops"})
    assert got.data == expected.data
    assert _errors(got) == _errors(expected)
    assert got.data["items"][0]["shout"] == "A for ops" and got.data["items"][0]["later"] == "a later (later)"
    assert got.data["items"][2] is None and got.data["items"][3] is None  # null propagated to the list item
    assert ("no shouting here", ("items", 0, "broken")) in _errors(got)


def test_only_basic_leaf_fields_are_marked():
    _, fast = _schemas()
    fields = fast._schema.type_map["Item"].fields
    assert hasattr(fields["name"], PLAIN) and hasattr(fields["colour"], PLAIN)
    assert not any(hasattr(fields[name], PLAIN) for name in ("shout", "later", "broken", "tagged"))


def test_a_role_checked_field_is_checked_on_the_short_path_and_one_with_arguments_keeps_strawberrys():
    from schema.build import build_schema

    fields = build_schema()._schema.type_map["Customer"].fields
    assert fields["portrait"].resolve.__name__ == "checked"  # allow(PORTRAIT_READERS), no arguments
    assert fields["surveyResponses"].resolve.__name__ == "_async_resolver"  # allow(...) and paging arguments


class _Context:
    def __init__(self, known: Caller | None, looked_up: Caller) -> None:
        self.known, self.looked_up, self.lookups = known, looked_up, 0

    def known_caller(self) -> Caller | None:
        return self.known

    async def caller(self) -> Caller:
        self.lookups += 1
        return self.looked_up


def _staff(role: Role) -> Caller:
    return Caller(StaffModel(username="x", role=role))


@pytest.mark.parametrize("known", [True, False])
async def test_the_role_check_of_the_short_path_refuses_and_allows_as_the_extension_does(known):
    async def resolve(source, info):
        return f"portrait of {source}"

    checked = _role_checked(resolve, frozenset({Role.ANALYST}))

    async def answer(caller: Caller):
        context = _Context(caller if known else None, caller)
        result = checked("c1", SimpleNamespace(context=context))  # a known caller is checked before any await
        value = await result
        assert context.lookups == (0 if known else 1)
        return value

    assert await answer(_staff(Role.ANALYST)) == "portrait of c1"
    for caller, code in ((_staff(Role.SERVICE_AGENT), "FORBIDDEN"), (Caller(None), "UNAUTHENTICATED")):
        with pytest.raises(GraphQLError) as refused:
            await answer(caller)
        assert refused.value.extensions["code"] == code
