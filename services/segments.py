"""Customer segments (客户细分, docs/DOMAIN.md "Portraits and segments"): a named CustomerFilter, stored as its
`to_params()` JSON, whose members are evaluated live.

- Members are `customers.matching(caller, filter)`: the very filter and visibility code of the customers query,
  so a branch-bound reader sees only their branch's members and a hidden customer is simply not a member.
  `member_query` gives them for a segment, `member_ids_query` for a segment id (recomputePortraits); a survey
  campaign over a segment takes a snapshot of its filter (services/survey_campaigns.py).
- Reading: access.SEGMENT_READERS; creating, changing and deleting: access.SEGMENT_EDITORS.
- A name is required, its whitespace collapsed, at most NAME_LIMIT characters, and unique ignoring case
  (DUPLICATE). A description is optional (blank: none), at most DESCRIPTION_LIMIT characters.
- A filter is kept only when it reads back as the same filter (`CustomerFilter.from_params`, the code that
  evaluates it later); what it cannot hold is INVALID on ["filter", field].
- An update changes only the fields given; one that carries an older `version` changes nothing
  (STALE_VERSION), and one that changes nothing keeps the version and updatedAt.
"""

from __future__ import annotations

from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet

from models.customers import Customer
from models.segments import Segment
from services import access, clock, customers
from services.access import Caller, require_role
from services.customers import CustomerFilter
from services.errors import DomainError, DomainErrors, ErrorCode, invalid, not_found

NAME_LIMIT = 120  # models.segments.Segment.name
DESCRIPTION_LIMIT = 2000


def may_read(caller: Caller) -> bool:
    return caller.operator or caller.role in access.SEGMENT_READERS


def readable(caller: Caller) -> QuerySet[Segment]:
    """Every segment, for a reader: segments are bank-wide definitions (their members are not)."""
    require_role(caller, access.SEGMENT_READERS)
    return Segment.all()


async def get(caller: Caller, segment_id: int, field: str | list[str] = "id") -> Segment:
    segment = await readable(caller).get_or_none(id=segment_id)
    if segment is None:
        raise not_found("Segment", field)
    return segment


# ---------------------------------------------------------------- members


def stored_filter(segment: Segment, path: tuple[str, ...] = ("filter",)) -> CustomerFilter:
    """The segment's CustomerFilter; one that no longer reads (a filter field since removed) is INVALID."""
    return CustomerFilter.from_params(segment.filter_params, path)


def member_query(caller: Caller, segment: Segment) -> QuerySet[Customer]:
    """The segment's members that `caller` may see, evaluated now, with the customers query's own code."""
    require_role(caller, access.SEGMENT_READERS)
    return customers.matching(caller, stored_filter(segment))


async def member_ids_query(caller: Caller, segment_id: int, field: str | list[str] = "segmentId") -> QuerySet[Customer]:
    """`member_query` of the segment with this id (NOT_FOUND on `field` when there is none)."""
    return member_query(caller, await get(caller, segment_id, field))


async def size(caller: Caller, segment: Segment) -> int:
    return await member_query(caller, segment).count()


# ---------------------------------------------------------------- writes


async def create(caller: Caller, *, name: str, description: str | None, customer_filter: CustomerFilter) -> Segment:
    staff = require_role(caller, access.SEGMENT_EDITORS)
    errors: list[DomainError] = []
    values = {
        "name": _clean_name(name, errors),
        "description": _clean_description(description, errors),
        "filter_params": _storable(customer_filter, errors),
    }
    _raise_if(errors)
    await _check_name_free(values["name"])
    try:
        return await Segment.create(**values, created_by=staff)
    except IntegrityError:  # lost a race for the name
        raise _taken(values["name"]) from None


async def update(caller: Caller, segment_id: int, changes: dict[str, Any], version: int | None = None) -> Segment:
    """`changes` holds only the fields given: name, description (None clears it) and filter (a CustomerFilter).
    A `version` older than the stored one changes nothing (STALE_VERSION)."""
    require_role(caller, access.SEGMENT_EDITORS)
    segment = await get(caller, segment_id)
    if version is not None and version != segment.version:
        raise _stale(version)
    errors: list[DomainError] = []
    values: dict[str, Any] = {}
    if "name" in changes:
        values["name"] = _clean_name(changes["name"], errors)
    if "description" in changes:
        values["description"] = _clean_description(changes["description"], errors)
    if "filter" in changes:
        if changes["filter"] is None:
            errors.append(DomainError(ErrorCode.REQUIRED, "A segment needs a filter ({} for every customer)", "filter"))
        else:
            values["filter_params"] = _storable(changes["filter"], errors)
    _raise_if(errors)
    values = {k: v for k, v in values.items() if v != getattr(segment, k)}
    if not values:
        return segment
    if "name" in values:
        await _check_name_free(values["name"], segment.id)
    try:
        updated = await Segment.filter(id=segment.id, version=segment.version).update(
            **values, version=segment.version + 1, updated_at=clock.now()
        )
    except IntegrityError:  # lost a race for the name
        raise _taken(values.get("name", segment.name)) from None
    if not updated:  # another update committed between our read and write
        raise _stale(segment.version)
    return await Segment.get(id=segment.id)


async def delete(caller: Caller, segment_id: int) -> int:
    """Deletes the segment; returns its id. Campaigns launched over it keep the filter they took at launch."""
    require_role(caller, access.SEGMENT_EDITORS)
    segment = await get(caller, segment_id)
    await Segment.filter(id=segment.id).delete()
    return segment.id


# ---------------------------------------------------------------- checks


def _clean_name(name: str | None, errors: list[DomainError]) -> str | None:
    cleaned = " ".join((name or "").split())
    if not cleaned:
        errors.append(DomainError(ErrorCode.REQUIRED, "A segment needs a name", "name"))
    elif len(cleaned) > NAME_LIMIT:
        errors.append(invalid("name", f"A segment's name has at most {NAME_LIMIT} characters"))
    return cleaned or None


def _clean_description(description: str | None, errors: list[DomainError]) -> str | None:
    cleaned = (description or "").strip()
    if len(cleaned) > DESCRIPTION_LIMIT:
        errors.append(invalid("description", f"A segment's description has at most {DESCRIPTION_LIMIT} characters"))
    return cleaned or None


def _storable(customer_filter: CustomerFilter, errors: list[DomainError]) -> dict[str, Any]:
    """The filter's params, checked to read back with the code that will evaluate them (e.g. minAum NaN does not)."""
    params = customer_filter.to_params()
    try:
        CustomerFilter.from_params(params, ("filter",))
    except DomainError as error:
        errors.extend(error.errors)
    return params


async def _check_name_free(name: str, segment_id: int | None = None) -> None:
    others = Segment.filter(name__iexact=name)
    if segment_id is not None:
        others = others.exclude(id=segment_id)
    if await others.exists():
        raise _taken(name)


def _taken(name: str) -> DomainError:
    return DomainError(ErrorCode.DUPLICATE, f"Another segment is named {name}", "name")


def _stale(version: int) -> DomainError:
    return DomainError(ErrorCode.STALE_VERSION, f"The segment changed since version {version}; reload it", "version")


def _raise_if(errors: list[DomainError]) -> None:
    if errors:
        raise errors[0] if len(errors) == 1 else DomainErrors(errors)
