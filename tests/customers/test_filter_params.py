"""List filters: the JSON params form of every service filter (saved segments and export jobs store it) round-trips
exactly, a stored filter that no longer parses is a clear INVALID error, and every GraphQL filter input maps onto
its service filter by field name (so the two cannot drift apart)."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import typing
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Literal

import pytest
import strawberry
from hypothesis import given, strategies as st
from strawberry.types.base import get_object_definition

import schema
from models.customers import CustomerStatus
from resolvers.audit import AUDIT_FILTER
from resolvers.complaints import COMPLAINT_FILTER
from resolvers.customers import CUSTOMER_FILTER
from resolvers.filters import FilterMapping, GlobalId
from resolvers.follow_ups import FOLLOW_UP_FILTER
from resolvers.interactions import INTERACTION_FILTER
from schema import audit as audit_schema, complaints as complaint_schema, customers as customer_schema
from schema.base import to_global_id
from schema.complaints import SlaState
from schema.customers import ValueTier
from services import customer_rules
from services.audit import AuditFilter
from services.complaints import ComplaintFilter
from services.customers import CustomerFilter
from services.errors import DomainError, ErrorCode
from services.filters import field_types
from services.follow_ups import FollowUpFilter
from services.interactions import InteractionFilter

SERVICE_FILTERS = [CustomerFilter, InteractionFilter, FollowUpFilter, ComplaintFilter, AuditFilter]
MAPPINGS = [CUSTOMER_FILTER, INTERACTION_FILTER, FOLLOW_UP_FILTER, COMPLAINT_FILTER, AUDIT_FILTER]

# ---------------------------------------------------------------- generated filters

offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda minutes: timezone(timedelta(minutes=minutes)))
aware_datetimes = st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1), timezones=st.just(UTC) | offsets)


def values_of(annotation) -> st.SearchStrategy:
    """Any value a filter field of this annotation may hold; a new kind of field fails here until added."""
    origin = typing.get_origin(annotation)
    if origin is list:
        return st.lists(values_of(typing.get_args(annotation)[0]), max_size=4)
    if origin is Literal:
        return st.sampled_from(typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return st.sampled_from(list(annotation))
    simple = {
        str: st.text(max_size=20),
        bool: st.booleans(),
        int: st.integers(),
        float: st.floats(allow_nan=False, allow_infinity=False),
        Decimal: st.decimals(allow_nan=False, allow_infinity=False),
        datetime: aware_datetimes,
        date: st.dates(),
    }
    return simple[annotation]


def filters(cls: type) -> st.SearchStrategy:
    return st.builds(cls, **{name: st.none() | values_of(t) for name, t in field_types(cls).items()})


def assert_round_trips(f) -> None:
    params = f.to_params()
    assert set(params) == {name for name in field_types(type(f)) if getattr(f, name) is not None}
    stored = json.loads(json.dumps(params, allow_nan=False))
    assert type(f).from_params(params) == f
    assert type(f).from_params(stored) == f
    assert type(f).from_params(stored).to_params() == params


@given(filters(CustomerFilter))
def test_customer_filter_round_trips_through_json(f: CustomerFilter) -> None:
    assert_round_trips(f)


@pytest.mark.parametrize("cls", SERVICE_FILTERS, ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_every_filter_round_trips_through_json(cls: type, data: st.DataObject) -> None:
    assert_round_trips(data.draw(filters(cls)))


def test_params_form() -> None:
    f = CustomerFilter(
        status=[CustomerStatus.ACTIVE],
        value_tier=["WEALTH", "MASS"],
        min_aum=Decimal("50000.00"),
        min_churn_risk=0.5,
        created_after=datetime(2024, 3, 1, 8, 0, tzinfo=timezone(timedelta(hours=8))),
    )
    assert f.to_params() == {
        "status": ["ACTIVE"],
        "value_tier": ["WEALTH", "MASS"],
        "min_aum": "50000.00",
        "min_churn_risk": 0.5,
        "created_after": "2024-03-01T00:00:00+00:00",
    }
    assert CustomerFilter().to_params() == {}
    assert CustomerFilter.from_params({}) == CustomerFilter()


def test_older_audit_params_still_parse() -> None:
    """Export jobs queued before listed every field, unset ones as null."""
    stored = {"actor_id": 7, "action": "login", "subject_type": None, "subject_id": None}
    stored |= {"start": "2024-01-01T00:00:00+00:00", "end": None}
    assert AuditFilter.from_params(stored) == AuditFilter(
        actor_id=7, action="login", start=datetime(2024, 1, 1, tzinfo=UTC)
    )


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"segment": "vip"}, "segment", "Unknown filter field 'segment'"),
        ({"status": "ACTIVE"}, "status", "expected a list"),
        ({"status": ["GONE"]}, "status", "'GONE' is not one of ACTIVE, DORMANT, CLOSED, ERASED"),
        ({"value_tier": ["GOLD"]}, "valueTier", "'GOLD' is not one of PRIVATE_BANKING, WEALTH, AFFLUENT, MASS"),
        ({"kind": 1}, "kind", "is not one of"),
        ({"relationship_manager_id": "12"}, "relationshipManagerId", "expected an integer"),
        ({"relationship_manager_id": True}, "relationshipManagerId", "expected an integer"),
        ({"min_aum": "lots"}, "minAum", "'lots' is not a decimal number"),
        ({"min_aum": "NaN"}, "minAum", "not a finite decimal"),
        ({"min_aum": 1.5}, "minAum", "expected a decimal number as a string"),
        ({"min_churn_risk": "0.5"}, "minChurnRisk", "expected a number"),
        ({"created_after": "2024-01-01T00:00:00"}, "createdAfter", "has no UTC offset"),
        ({"created_after": "yesterday"}, "createdAfter", "is not an ISO-8601 date and time"),
        ({"tags": ["vip", 3]}, "tags", "expected a string, got 3"),
    ],
)
def test_a_stored_filter_that_no_longer_parses_is_invalid(params: dict, field: str, message: str) -> None:
    with pytest.raises(DomainError) as raised:
        CustomerFilter.from_params(params)
    assert raised.value.code == ErrorCode.INVALID
    assert raised.value.field == ["filter", field]
    assert message in raised.value.message


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(DomainError) as raised:
        ComplaintFilter.from_params({"sla_state": ["LATE"], "overdue": True, "handler_id": 1.5}, ["segment", "filter"])
    assert [(e.code, e.field) for e in raised.value.errors] == [
        (ErrorCode.INVALID, ["segment", "filter", "slaState"]),
        (ErrorCode.INVALID, ["segment", "filter", "overdue"]),
        (ErrorCode.INVALID, ["segment", "filter", "handlerId"]),
    ]


def test_params_must_be_an_object() -> None:
    with pytest.raises(DomainError) as raised:
        FollowUpFilter.from_params(["overdue"])
    assert (raised.value.code, raised.value.field) == (ErrorCode.INVALID, ["filter"])


def test_a_time_without_offset_has_no_params_form() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        InteractionFilter(occurred_after=datetime(2024, 1, 1)).to_params()


def test_tier_names_are_the_tiers() -> None:
    assert list(typing.get_args(customer_rules.TierName)) == [name for name, _ in customer_rules.TIER_FLOORS]


# ---------------------------------------------------------------- GraphQL inputs -> service filters


@pytest.mark.parametrize("mapping", MAPPINGS, ids=lambda m: m.input.__name__)
def test_every_input_field_has_a_same_named_service_field(mapping: FilterMapping) -> None:
    input_fields = {f.python_name for f in get_object_definition(mapping.input, strict=True).fields}
    assert input_fields <= set(field_types(mapping.service))
    assert mapping.problems() == []


def test_every_filter_input_has_a_mapping() -> None:
    inputs = set()
    for module_info in pkgutil.iter_modules(schema.__path__):
        module = importlib.import_module(f"schema.{module_info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            definition = get_object_definition(cls)
            if definition is not None and definition.is_input and cls.__name__.endswith("Filter"):
                inputs.add(cls)
    assert inputs == {m.input for m in MAPPINGS}


def test_drift_is_reported() -> None:
    @strawberry.input
    class DriftedFilter:
        customer_id: strawberry.ID | None = None
        staff_id: strawberry.ID | None = None
        channel: list[ValueTier] | None = None
        colour: str | None = None
        search: int | None = None

    problems = FilterMapping(DriftedFilter, InteractionFilter, ids={"customer_id": GlobalId("Customer")}).problems()
    assert any("staff_id is an ID" in p for p in problems)
    assert any("channel: ValueTier values" in p for p in problems)
    assert any("colour has no same-named field" in p for p in problems)
    assert any("search:" in p for p in problems)
    assert len(problems) == 4


def test_input_values_become_what_the_service_holds() -> None:
    given_ = customer_schema.CustomerFilter(
        relationship_manager_id=to_global_id("Staff", 42),
        value_tier=[ValueTier.WEALTH],
        min_aum=Decimal("10"),
        search="张",
    )
    assert CUSTOMER_FILTER.to_service(given_) == CustomerFilter(
        relationship_manager_id=42, value_tier=["WEALTH"], min_aum=Decimal("10"), search="张"
    )
    assert CUSTOMER_FILTER.to_service(None) == CustomerFilter()
    complaint = COMPLAINT_FILTER.to_service(complaint_schema.ComplaintFilter(sla_state=[SlaState.AT_RISK]))
    assert complaint.sla_state == ["AT_RISK"]
    audit = AUDIT_FILTER.to_service(audit_schema.AuditFilter(subject_id=to_global_id("Customer", 9)))
    assert (audit.subject_type, audit.subject_id) == ("Customer", "9")


@pytest.mark.parametrize(
    ("mapping", "given_", "field", "message"),
    [
        (CUSTOMER_FILTER, {"relationship_manager_id": "Customer:1"}, "relationshipManagerId", "Relationship manager"),
        (INTERACTION_FILTER, {"customer_id": "Staff:1"}, "customerId", "Customer"),
        (FOLLOW_UP_FILTER, {"complaint_id": "Customer:1"}, "complaintId", "Complaint"),
        (COMPLAINT_FILTER, {"handler_id": "Customer:1"}, "handlerId", "Staff"),
        (AUDIT_FILTER, {"actor_id": "Customer:1"}, "actorId", "Staff member"),
        (AUDIT_FILTER, {"subject_id": "not-an-id"}, "subjectId", "Subject"),
    ],
)
def test_an_id_of_something_else_is_not_found(mapping: FilterMapping, given_: dict, field: str, message: str) -> None:
    values = {k: to_global_id(*v.split(":")) if v.count(":") == 1 else v for k, v in given_.items()}
    with pytest.raises(DomainError) as raised:
        mapping.to_service(mapping.input(**values))
    assert (raised.value.code, raised.value.field) == (ErrorCode.NOT_FOUND, ["filter", field])
    assert raised.value.message == f"{message} not found"
