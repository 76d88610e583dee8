"""schema/execution.py's shorter paths answer exactly what Strawberry's own paths answer: values, nulls, errors
and their paths, for plain attributes and for resolvers taking only the object and `info`."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum

import pytest
import strawberry
from strawberry.types import Info

from schema.execution import PLAIN, PlainLeafExecutionContext, mark_plain_leaves, use_direct_resolvers


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


@pytest.mark.parametrize("role_checked", ["Customer.portrait", "Customer.surveyResponses"])
def test_fields_with_a_role_check_keep_strawberrys_path(role_checked):
    """The API's own schema: a field guarded by a permission extension is never called directly."""
    from schema.build import build_schema

    type_name, field_name = role_checked.split(".")
    field = build_schema()._schema.type_map[type_name].fields[field_name]
    assert field.resolve.__name__ != "<lambda>"
    assert not hasattr(field, PLAIN)
