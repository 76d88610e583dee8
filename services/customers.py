"""The customer file: who may see and change which customers, creation, optimistic updates with
field-level history, holdings, duplicates and list filters (consents: services.consents)."""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q, Subquery
from tortoise.functions import Coalesce, Sum
from tortoise.queryset import QuerySet

from core.sql import Statement, rows_of
from models.customers import (
    ChangeEntry,
    Customer,
    CustomerKind,
    CustomerStatus,
    CustomerTag,
    HoldingStatus,
    ProductHolding,
    ProductType,
    RiskLevel,
)
from models.portraits import Portrait
from models.staff import Role, Staff
from services import access, clock, consents as consent_service, customer_rules as rules, portraits, timeline
from services.access import ALL_ROLES, Caller, require_role
from services.errors import DomainError, ErrorCode, forbidden, invalid, not_found
from services.filters import FilterParams
from services.identity import IdentityError, mask_account, normalize_mobile

# What updateCustomer may change (the one list: the resolver and the import derive theirs from it).
UPDATABLE = (
    "name",
    "gender",
    "birth_date",
    "id_type",
    "id_number",
    "phone",
    "email",
    "address",
    "occupation",
    "risk_level",
    "kyc_status",
    "status",
    "branch",
    "preferred_channel",
    "relationship_manager_id",
)
MAX_AMOUNT = Decimal("999999999999999999.99")


def home_branch(caller: Caller) -> str | None:
    """The branch a branch-bound staff member is limited to, or None for bank-wide staff."""
    staff = caller.staff
    if staff is not None and staff.role in access.BRANCH_BOUND and staff.branch:
        return staff.branch
    return None


def visible(caller: Caller) -> QuerySet[Customer]:
    """Every customer the caller may see: others simply do not exist for them (NOT_FOUND)."""
    require_role(caller, ALL_ROLES)
    branch = home_branch(caller)
    return Customer.filter(branch=branch) if branch else Customer.all()


async def get(caller: Caller, customer_id: int, field: str | list[str] = "id") -> Customer:
    customer = await visible(caller).get_or_none(id=customer_id)
    if customer is None:
        raise not_found("Customer", field)
    return customer


def _require_writer(caller: Caller, roles: frozenset[Role] = access.CUSTOMER_WRITERS) -> Staff | None:
    return require_role(caller, roles)


async def new_customer_numbers(count: int, avoid: Collection[str] = ()) -> list[str]:
    """`count` unused customer numbers (none of them in `avoid`), checked against the database one query
    per round, not per number."""
    numbers: list[str] = []
    while len(numbers) < count:
        candidates = {f"C{secrets.randbelow(10**10):010d}" for _ in range(count - len(numbers))}
        candidates -= set(avoid)
        candidates -= set(numbers)
        if not candidates:
            continue
        numbers.extend(sorted(candidates - await _numbers_taken(sorted(candidates))))
    return numbers


async def _numbers_taken(numbers: list[str]) -> set[str]:
    """Which of `numbers` customers hold: a plain statement (an import asks for 5,000 at a time, which the ORM
    would turn into 5,000 query terms first)."""
    connection = connections.get("default")
    statement = Statement(connection)
    sql = f"SELECT customer_no FROM customer WHERE customer_no IN ({statement.params(numbers)})"
    return {row[0] for row in await rows_of(connection, sql, statement)}


async def _check_relationship_manager(staff_id: int | None) -> None:
    if staff_id is None:
        return
    manager = await Staff.get_or_none(id=staff_id, active=True)
    if manager is None or manager.role not in (Role.RELATIONSHIP_MANAGER, Role.MANAGER):
        raise invalid("relationshipManagerId", "relationshipManagerId must be an active relationship manager")


async def _check_unique(data: dict[str, Any], exclude_id: int | None = None) -> None:
    if data.get("id_type") and data.get("id_number"):
        qs = Customer.filter(id_type=data["id_type"], id_number=data["id_number"])
        if exclude_id is not None:
            qs = qs.exclude(id=exclude_id)
        if await qs.exists():
            raise DomainError(ErrorCode.DUPLICATE, "Another customer has this identity document", "idNumber")
    if data.get("customer_no") and await Customer.exists(customer_no=data["customer_no"]):
        raise DomainError(ErrorCode.DUPLICATE, "Another customer has this customer number", "customerNo")


def check_branch(caller: Caller, branch: str | None) -> str | None:
    """The branch a customer kept by `caller` ends up in: a branch-bound caller's own (FORBIDDEN for another)."""
    own = home_branch(caller)
    if own is None:
        return branch
    if branch not in (None, own):
        raise forbidden("You can only keep customers of your own branch")
    return own


async def create(caller: Caller, data: dict[str, Any], consents: list[dict] | None = None) -> Customer:
    _require_writer(caller)
    clean = rules.validate_new(data)
    clean["branch"] = check_branch(caller, clean["branch"])
    await _check_relationship_manager(data.get("relationship_manager_id"))
    await _check_unique(clean)
    tags = clean.pop("tags")
    clean["customer_no"] = clean["customer_no"] or (await new_customer_numbers(1))[0]
    customer = Customer(**clean, relationship_manager_id=data.get("relationship_manager_id"))
    customer.completeness = rules.assess(customer)[0]
    customer.portrait_stale_since = clock.now()  # its first portrait: the freshness sweep computes it
    try:
        await customer.save()
    except IntegrityError:  # lost a race for the identity document or the customer number
        raise DomainError(
            ErrorCode.DUPLICATE, "Another customer has this identity document or number", "idNumber"
        ) from None
    await CustomerTag.bulk_create([CustomerTag(customer=customer, tag=t) for t in tags])
    if consents:
        await consent_service.apply(caller, customer, consents)
    return customer


def as_text(value: Any) -> str | None:
    """A field's value as the change history stores it (enums by value, dates ISO-8601)."""
    if value is None:
        return None
    if hasattr(value, "value"):
        return value.value
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


async def update(
    caller: Caller, customer_id: int, version: int, changes: dict[str, Any], tags: list[str] | None = None
) -> Customer:
    """`changes` holds only the fields the caller gave (None clears one). An older `version` changes nothing."""
    actor = _require_writer(caller)
    customer = await get(caller, customer_id)
    if customer.status == CustomerStatus.ERASED:
        raise invalid("id", "An erased customer cannot be changed")
    if customer.version != version:
        raise DomainError(
            ErrorCode.STALE_VERSION, f"The customer changed since version {version}; reload it", "version"
        )
    if changes.get("status") == CustomerStatus.ERASED:
        raise invalid("status", "Use eraseCustomer to erase a customer")
    if "name" in changes and changes["name"] is None:
        raise DomainError(ErrorCode.REQUIRED, "name is required", "name")

    errors: list[DomainError] = []
    merged, new_tags = merge_changes(customer, changes, tags, errors)
    rules.raise_if(errors)
    if "branch" in changes:
        merged["branch"] = check_branch(caller, merged["branch"])
    if "relationship_manager_id" in changes:
        await _check_relationship_manager(merged["relationship_manager_id"])
    if "id_type" in changes or "id_number" in changes:
        await _check_unique(merged, exclude_id=customer.id)

    changed = changed_values(customer, merged)
    old_tags = await tags_of(customer.id)
    tags_changed = new_tags is not None and new_tags != old_tags
    if not changed and not tags_changed:
        return customer
    before = {name: getattr(customer, name) for name in changed}
    for name, value in changed.items():
        setattr(customer, name, value)
    completeness = rules.assess(customer)[0]
    try:
        updated = await Customer.filter(id=customer.id, version=version).update(
            **changed, completeness=completeness, version=version + 1
        )
    except IntegrityError:
        raise DomainError(ErrorCode.DUPLICATE, "Another customer has this identity document", "idNumber") from None
    if not updated:  # someone else's update committed between our read and write
        raise DomainError(
            ErrorCode.STALE_VERSION, f"The customer changed since version {version}; reload it", "version"
        )
    entries = change_entries(customer.id, before, changed, actor)
    if "status" in changed or tags_changed:  # the portrait shows both
        await portraits.mark_stale([customer.id])
    if tags_changed:
        await CustomerTag.filter(customer_id=customer.id).delete()
        await CustomerTag.bulk_create([CustomerTag(customer_id=customer.id, tag=t) for t in new_tags])
        entries.append(tags_entry(customer.id, old_tags, new_tags, actor))
    await ChangeEntry.bulk_create(entries)
    return await Customer.get(id=customer.id)


def merge_changes(
    customer: Customer, changes: dict[str, Any], tags: list[str] | None, errors: list[DomainError]
) -> tuple[dict[str, Any], list[str] | None]:
    """The rules of updateCustomer for `changes` (only the fields given; None clears one) and `tags` (None:
    not given) on the stored `customer`, without the database: appends every problem to `errors` and
    returns (every UPDATABLE field with the changes applied and cleaned, the cleaned tags or None).
    The branch (`check_branch`), the relationship manager and uniqueness are the caller's to check."""
    merged = {f: getattr(customer, f) for f in UPDATABLE}
    merged.update(changes)
    ident = rules.check_identity(
        customer.kind, merged["id_type"], merged["id_number"], merged["birth_date"], merged["gender"], errors
    )
    merged.update(id_type=ident.id_type, id_number=ident.id_number, birth_date=ident.birth_date, gender=ident.gender)
    merged["phone"], merged["email"] = rules.check_contact(merged["phone"], merged["email"], errors)
    for text_field in ("name", "address", "occupation", "branch"):
        if text_field in changes:
            merged[text_field] = rules.clean_text(text_field, changes[text_field], errors, text_field == "name")
    new_tags = rules.check_tags(tags, errors) if tags is not None else None
    return merged, new_tags


def changed_values(customer: Customer, merged: dict[str, Any]) -> dict[str, Any]:
    """The fields of `merged` whose value differs from the stored customer's."""
    return {f: v for f, v in merged.items() if v != getattr(customer, f)}


def change_entries(
    customer_id: int, before: dict[str, Any], after: dict[str, Any], actor: Staff | None
) -> list[ChangeEntry]:
    """The change history (unsaved) of the fields of `after`: one entry per field, old value from `before`."""
    return [
        ChangeEntry(
            customer_id=customer_id,
            field=rules.camel(name.removesuffix("_id")),
            old_value=as_text(before[name]),
            new_value=as_text(value),
            actor=actor,
        )
        for name, value in after.items()
    ]


def tags_entry(customer_id: int, old_tags: list[str], new_tags: list[str], actor: Staff | None) -> ChangeEntry:
    """The change history entry (unsaved) of a new set of tags."""
    return ChangeEntry(
        customer_id=customer_id, field="tags", old_value=", ".join(old_tags), new_value=", ".join(new_tags), actor=actor
    )


async def tags_of(customer_id: int) -> list[str]:
    return await CustomerTag.filter(customer_id=customer_id).order_by("id").values_list("tag", flat=True)


# ---------------------------------------------------------------- holdings


def _amount(value: Any, field_name: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise invalid(field_name, f"{field_name} must be a decimal number") from None
    if not amount.is_finite() or abs(amount) > MAX_AMOUNT or amount.as_tuple().exponent < -2:
        raise invalid(field_name, f"{field_name} must be a finite amount with at most 2 decimal places")
    return amount


async def upsert_holding(
    caller: Caller,
    customer_id: int,
    *,
    account_no: str,
    product: ProductType,
    balance: Any,
    currency: str | None,
    opened_at: date,
    closed_at: date | None,
) -> ProductHolding:
    """Keyed by account number: a new account is added, a known one (of the same customer) is updated."""
    _require_writer(caller)
    customer = await get(caller, customer_id, "customerId")
    if customer.status == CustomerStatus.ERASED:
        raise invalid("customerId", "An erased customer cannot be changed")
    account_no = "".join(account_no.split())
    if not 6 <= len(account_no) <= 40 or not account_no.isalnum():
        raise invalid("accountNo", "accountNo must be 6 to 40 letters or digits")
    amount = _amount(balance, "balance")
    currency = (currency or "CNY").strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise invalid("currency", "currency is a three-letter ISO 4217 code")
    if closed_at is not None and closed_at < opened_at:
        raise invalid("closedAt", "closedAt must not be before openedAt")
    if opened_at > clock.today():
        raise invalid("openedAt", "openedAt must not be in the future")
    status = HoldingStatus.CLOSED if closed_at else HoldingStatus.ACTIVE
    holding = await ProductHolding.get_or_none(account_no=account_no)
    if holding is not None and holding.customer_id != customer.id:
        raise DomainError(ErrorCode.DUPLICATE, "This account belongs to another customer", "accountNo")
    values = {
        "product": product,
        "balance": amount,
        "currency": currency,
        "opened_at": opened_at,
        "closed_at": closed_at,
        "status": status,
    }
    if holding is None:
        try:
            holding = await ProductHolding.create(customer=customer, account_no=account_no, **values)
        except IntegrityError:
            raise DomainError(ErrorCode.DUPLICATE, "This account belongs to another customer", "accountNo") from None
    else:
        holding.update_from_dict(values)
        await holding.save()
    await refresh_balances([customer.id])
    await portraits.mark_stale([customer.id])
    return holding


async def refresh_balances(customer_ids: list[int]) -> None:
    """AUM and debt from the ACTIVE CNY holdings (docs/DOMAIN.md), stored on the customer for filters and sorting."""
    rows = (
        await ProductHolding.filter(customer_id__in=customer_ids, status=HoldingStatus.ACTIVE, currency="CNY")
        .group_by("customer_id", "product")
        .annotate(total=Sum("balance"))
        .values("customer_id", "product", "total")
    )
    sums: dict[int, list[Decimal]] = {cid: [Decimal(0), Decimal(0)] for cid in customer_ids}
    for row in rows:
        product = ProductType(row["product"])
        total = Decimal(str(row["total"] or 0))
        if product in rules.ASSET_PRODUCTS:
            sums[row["customer_id"]][0] += total
        elif product in rules.DEBT_PRODUCTS:
            sums[row["customer_id"]][1] += abs(total)
    for customer_id, (aum, debt) in sums.items():
        await Customer.filter(id=customer_id).update(aum=aum, debt=debt)


# ---------------------------------------------------------------- duplicates


MAX_DUPLICATES = 50  # shown per customer, lowest ids first


async def possible_duplicates(caller: Caller, customer: Customer) -> list[Customer]:
    """Other customers with the same phone, the same email, or the same name and birth date."""
    return (await possible_duplicates_of(caller, [customer]))[customer.id]


async def possible_duplicates_of(caller: Caller, customers: Sequence[Customer]) -> dict[int, list[Customer]]:
    """For each customer, up to MAX_DUPLICATES others the caller may see, not erased, with the same phone, the
    same email, or the same name and birth date, by id. Two statements however many customers: the first takes,
    for every phone, email and name with birth date asked about, its first MAX_DUPLICATES + 1 holders by id (a
    window function: a number shared by thousands reads no more), the second reads those customers."""
    require_role(caller, ALL_ROLES)
    result: dict[int, list[Customer]] = {c.id: [] for c in customers}
    phones = sorted({c.phone for c in customers if c.phone})
    emails = sorted({c.email for c in customers if c.email})
    named = sorted({(c.name, c.birth_date) for c in customers if c.birth_date})
    if not (phones or emails or named):
        return result
    connection = Customer._choose_db()
    s = Statement(connection)
    branch = home_branch(caller)
    parts = []
    for partition, values in (("phone", phones), ("email", emails), ("name, birth_date", named)):
        if not values:
            continue
        if partition == "name, birth_date":
            condition = " OR ".join(f"(name = {s.param(n)} AND birth_date = {s.param(d)})" for n, d in values)
        else:
            condition = f"{partition} IN ({s.params(values)})"
        scope = f"status <> {s.param(CustomerStatus.ERASED.value)}"
        if branch:
            scope += f" AND branch = {s.param(branch)}"
        parts.append(
            f"SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY id) AS rn "
            f"FROM customer WHERE ({condition}) AND {scope}) AS ranked_{len(parts)} "
            f"WHERE rn <= {MAX_DUPLICATES + 1}"
        )
    ids = {row[0] for row in await rows_of(connection, " UNION ".join(parts), s)}
    if not ids:
        return result
    holders: dict[tuple, list[Customer]] = defaultdict(list)
    for found in await Customer.filter(id__in=ids).order_by("id"):
        for key in _duplicate_keys(found):
            holders[key].append(found)
    for customer in customers:
        same = {other.id: other for key in _duplicate_keys(customer) for other in holders.get(key, ())}
        same.pop(customer.id, None)
        result[customer.id] = [same[i] for i in sorted(same)][:MAX_DUPLICATES]
    return result


def _duplicate_keys(customer: Customer) -> list[tuple]:
    keys: list[tuple] = []
    if customer.phone:
        keys.append(("phone", customer.phone))
    if customer.email:
        keys.append(("email", customer.email))
    if customer.birth_date:
        keys.append(("name", customer.name, customer.birth_date))
    return keys


# ---------------------------------------------------------------- lists


@dataclass
class CustomerFilter(FilterParams):
    """What a customer list can be filtered by (the customers query; saved segments store it as params)."""

    search: str | None = None
    status: list[CustomerStatus] | None = None
    kind: CustomerKind | None = None
    branch: str | None = None
    relationship_manager_id: int | None = None
    tags: list[str] | None = None
    risk_level: list[RiskLevel] | None = None
    value_tier: list[rules.TierName] | None = None
    min_aum: Decimal | None = None
    max_aum: Decimal | None = None
    min_churn_risk: float | None = None
    holds_product: ProductType | None = None
    lacks_product: ProductType | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def _search(text: str, sees_pii: bool) -> Q:
    """Name (any part) and customer number (its start); phone, e-mail and ID number on any part of the value
    for a viewer who sees them unmasked, and only on the whole value for a masked viewer (docs/DOMAIN.md: a customer
    on the phone gives their number), so that hidden digits cannot be probed one at a time. LIKE wildcards in
    `text` match literally (Tortoise escapes them)."""
    text = text.strip()
    options = [Q(name__icontains=text), Q(customer_no__istartswith=text)]
    compact = "".join(ch for ch in text if ch not in " -").upper()
    if sees_pii:
        digits = "".join(ch for ch in text if ch.isdigit())
        options.append(Q(email__icontains=text))
        if len(digits) >= 3:  # phones are stored normalised: 13812345678
            options.append(Q(phone__contains=digits.removeprefix("86") if len(digits) > 11 else digits))
        if len(compact) >= 3:
            options.append(Q(id_number__icontains=compact))
        return Q(*options, join_type=Q.OR)
    if "@" in text:
        options.append(Q(email__iexact=text))
    try:
        options.append(Q(phone=normalize_mobile(text)))
    except IdentityError:
        pass
    if compact:
        options.append(Q(id_number=compact))
    return Q(*options, join_type=Q.OR)


def matching(caller: Caller, customer_filter: CustomerFilter) -> QuerySet[Customer]:
    """The customers of `customer_filter` among those the caller may see: the one way a customer list is made
    (the customers query, a segment's size and members, a survey campaign's audience)."""
    return apply_filter(visible(caller), customer_filter, sees_pii=caller.operator or rules.sees_pii(caller.role))


# The sort keys of a customer list that are not columns of the customer: the churn risk is the portrait's (0 for
# a customer without one: not computed yet, or erased), so the portrait computation writes no customer row.
_DERIVED_KEYS = {"churn_risk": Coalesce("portrait__churn_risk", 0.0)}


def sortable(qs: QuerySet[Customer], key: str) -> QuerySet[Customer]:
    """`qs` ready to be ordered and paged by `key`, a customer column or a derived key."""
    derived = _DERIVED_KEYS.get(key)
    return qs.annotate(**{key: derived}) if derived is not None else qs


def apply_filter(qs: QuerySet[Customer], f: CustomerFilter, *, sees_pii: bool) -> QuerySet[Customer]:
    """`qs` narrowed by `f`; `sees_pii`: whether the viewer sees phone, e-mail and ID numbers unmasked (search)."""
    if f.search and f.search.strip():
        qs = qs.filter(_search(f.search, sees_pii))
    if f.status:
        qs = qs.filter(status__in=f.status)
    if f.kind:
        qs = qs.filter(kind=f.kind)
    if f.branch:
        qs = qs.filter(branch=f.branch)
    if f.relationship_manager_id is not None:
        qs = qs.filter(relationship_manager_id=f.relationship_manager_id)
    for tag in f.tags or []:
        qs = qs.filter(id__in=Subquery(CustomerTag.filter(tag=tag.strip()).values("customer_id")))
    if f.risk_level:
        qs = qs.filter(risk_level__in=f.risk_level)
    if f.value_tier:
        tiers = []
        for tier in f.value_tier:
            lower, upper = rules.tier_bounds(tier)
            tiers.append(Q(aum__gte=lower, aum__lt=upper) if upper is not None else Q(aum__gte=lower))
        qs = qs.filter(Q(*tiers, join_type=Q.OR))
    if f.min_aum is not None:
        qs = qs.filter(aum__gte=f.min_aum)
    if f.max_aum is not None:
        qs = qs.filter(aum__lte=f.max_aum)
    if f.min_churn_risk is not None and f.min_churn_risk > 0:  # everyone's risk is at least 0
        at_risk = Portrait.filter(churn_risk__gte=f.min_churn_risk).values("customer_id")
        qs = qs.filter(id__in=Subquery(at_risk))

    def active_of(product: ProductType) -> Subquery:
        return Subquery(ProductHolding.filter(product=product, status=HoldingStatus.ACTIVE).values("customer_id"))

    if f.holds_product:
        qs = qs.filter(id__in=active_of(f.holds_product))
    if f.lacks_product:
        qs = qs.exclude(id__in=active_of(f.lacks_product))
    if f.created_after:
        qs = qs.filter(created_at__gte=f.created_after)
    if f.created_before:
        qs = qs.filter(created_at__lt=f.created_before)
    return qs


timeline.register(timeline.Source("CHANGE", ChangeEntry, "at", lambda r: (f"{r.field} changed", None)))
timeline.register(
    timeline.Source(
        "HOLDING",
        ProductHolding,
        "created_at",
        lambda r: (f"{r.product.value} account {mask_account(r.account_no)}", r.status.value),
        node="ProductHolding",
    )
)
