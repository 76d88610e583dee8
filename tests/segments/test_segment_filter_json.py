"""The filter a segment shows (`Segment.filter`) is JSON a client can send back as it is: for any filter a segment
can store, that JSON passes the schema's own CustomerFilter input coercion and comes back as the same filter."""

from __future__ import annotations

from functools import cache

import strawberry
from graphql import GraphQLInputObjectType
from graphql.utilities import coerce_input_value
from hypothesis import given
from strawberry.types.arguments import convert_argument

from resolvers.customers import CUSTOMER_FILTER
from schema.base import MAX_PK
from schema.build import build_schema
from schema.customers import CustomerFilter as CustomerFilterInput
from services.customers import CustomerFilter
from tests.customers.test_filter_params import filters


@cache
def _schema() -> strawberry.Schema:
    return build_schema()


def as_client_sends(json_value: dict) -> CustomerFilterInput:
    """What the API makes of `json_value` given as a CustomerFilter variable (a GraphQLError if it does not fit)."""
    schema = _schema()
    input_type = schema._schema.get_type("CustomerFilter")
    assert isinstance(input_type, GraphQLInputObjectType)
    coerced = coerce_input_value(json_value, input_type)
    return convert_argument(coerced, CustomerFilterInput, schema.schema_converter.scalar_registry, schema.config)


# Filters a segment can hold: ids are primary keys (positive, at most MAX_PK), as the API's global ids give them.
storable = filters(CustomerFilter).map(
    lambda f: f if f.relationship_manager_id is None else CustomerFilter(
        **{**vars(f), "relationship_manager_id": abs(f.relationship_manager_id) % MAX_PK + 1}
    )
)  # fmt: skip


@given(storable)
def test_the_shown_filter_is_the_stored_filter_as_a_client_sends_it(f: CustomerFilter) -> None:
    shown = CUSTOMER_FILTER.to_input_json(f)
    assert CUSTOMER_FILTER.to_service(as_client_sends(shown)) == f
    # ... and shown again, it is the same JSON.
    assert CUSTOMER_FILTER.to_input_json(CUSTOMER_FILTER.to_service(as_client_sends(shown))) == shown


def test_the_shown_form() -> None:
    f = CustomerFilter.from_params(
        {"status": ["ACTIVE"], "relationship_manager_id": 3, "value_tier": ["WEALTH"], "min_aum": "500000.00",
         "created_after": "2022-01-01T00:00:00+00:00", "holds_product": "FUND", "tags": ["VIP"]}
    )  # fmt: skip
    assert CUSTOMER_FILTER.to_input_json(f) == {
        "status": ["ACTIVE"],
        "relationshipManagerId": "U3RhZmY6Mw",  # Staff:3
        "tags": ["VIP"],
        "valueTier": ["WEALTH"],
        "minAum": "500000.00",
        "holdsProduct": "FUND",
        "createdAfter": "2022-01-01T00:00:00+00:00",
    }
    assert CUSTOMER_FILTER.to_input_json(CustomerFilter()) == {}
