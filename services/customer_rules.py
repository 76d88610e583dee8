"""Pure rules of the customer file: field validation, completeness, value tiers, masking.

No I/O here, so that createCustomer, updateCustomer and the CSV import apply exactly the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from models.customers import CustomerKind, Gender, IdType, ProductType
from models.staff import Role
from services import access, clock, identity
from services.errors import DomainError, DomainErrors, ErrorCode, invalid

CUSTOMER_NO = re.compile(r"^C\d{10}$")
OTHER_ID = re.compile(r"^[A-Z0-9]{5,20}$")
_ID_SEPARATORS = re.compile(r"[\s-]")
_EARLIEST_BIRTH = date(1900, 1, 1)
MAX_TAGS, MAX_TAG = 20, 32
ERASED_NAME = "已注销客户"
TEXT_LIMITS = {"name": 128, "address": 256, "occupation": 64, "branch": 64}

ASSET_PRODUCTS = frozenset(
    {
        ProductType.CURRENT_DEPOSIT,
        ProductType.TIME_DEPOSIT,
        ProductType.DEBIT_CARD,
        ProductType.WEALTH_MANAGEMENT,
        ProductType.FUND,
        ProductType.INSURANCE,
        ProductType.PRECIOUS_METAL,
    }
)
DEBT_PRODUCTS = frozenset({ProductType.PERSONAL_LOAN, ProductType.MORTGAGE, ProductType.CREDIT_CARD})
# Value tiers by AUM in CNY, highest first (docs/DOMAIN.md).
TIER_FLOORS = (
    ("PRIVATE_BANKING", Decimal(6_000_000)),
    ("WEALTH", Decimal(500_000)),
    ("AFFLUENT", Decimal(50_000)),
    ("MASS", Decimal(0)),
)
TierName = Literal["PRIVATE_BANKING", "WEALTH", "AFFLUENT", "MASS"]  # the names in TIER_FLOORS


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def value_tier(aum: Decimal) -> str:
    return next(tier for tier, floor in TIER_FLOORS if aum >= floor)


def tier_bounds(tier: str) -> tuple[Decimal, Decimal | None]:
    """[lower, upper) AUM bounds of a tier; upper None for the top tier."""
    names = [t for t, _ in TIER_FLOORS]
    index = names.index(tier)
    upper = TIER_FLOORS[index - 1][1] if index > 0 else None
    return TIER_FLOORS[index][1], upper


@dataclass(frozen=True)
class Identity:
    id_type: IdType | None
    id_number: str | None
    birth_date: date | None
    gender: Gender | None


def clean_text(field: str, value: str | None, errors: list[DomainError], required: bool = False) -> str | None:
    if value is None:
        if required:
            errors.append(DomainError(ErrorCode.REQUIRED, f"{camel(field)} is required", camel(field)))
        return None
    cleaned = " ".join(value.split())
    if not cleaned:
        if required:
            errors.append(DomainError(ErrorCode.REQUIRED, f"{camel(field)} is required", camel(field)))
        return None
    if len(cleaned) > TEXT_LIMITS[field]:
        errors.append(invalid(camel(field), f"{camel(field)} must be at most {TEXT_LIMITS[field]} characters"))
    return cleaned


def check_identity(
    kind: CustomerKind,
    id_type: IdType | None,
    id_number: str | None,
    birth_date: date | None,
    gender: Gender | None,
    errors: list[DomainError],
    today: date | None = None,
) -> Identity:
    """Validates the identity document; fills birth date and gender from a resident ID when not given."""
    if id_number is not None and not id_number.strip():
        id_number = None
    if (id_type is None) != (id_number is None):
        missing = "idNumber" if id_number is None else "idType"
        errors.append(DomainError(ErrorCode.REQUIRED, "idType and idNumber go together", missing))
        return Identity(id_type, id_number, birth_date, gender)
    if birth_date is not None and (birth_date > (today or clock.today()) or birth_date < _EARLIEST_BIRTH):
        errors.append(invalid("birthDate", "birthDate must be a real date of birth"))
    if id_type is None:
        return Identity(None, None, birth_date, gender)
    if kind == CustomerKind.CORPORATE and id_type != IdType.UNIFIED_SOCIAL_CREDIT_CODE:
        errors.append(invalid("idType", "A corporate customer is identified by its unified social credit code"))
    if kind == CustomerKind.INDIVIDUAL and id_type == IdType.UNIFIED_SOCIAL_CREDIT_CODE:
        errors.append(invalid("idType", "A unified social credit code identifies organisations, not people"))
    try:
        if id_type == IdType.RESIDENT_ID:
            parsed = identity.parse_resident_id(id_number, today=today)
            id_number = parsed.number
            if birth_date is not None and birth_date != parsed.birth_date:
                errors.append(invalid("birthDate", "birthDate does not match the resident ID"))
            if gender not in (None, Gender.UNKNOWN) and gender.value != parsed.gender:
                errors.append(invalid("gender", "gender does not match the resident ID"))
            return Identity(
                id_type,
                id_number,
                birth_date or parsed.birth_date,
                gender if gender not in (None, Gender.UNKNOWN) else Gender(parsed.gender),
            )
        if id_type == IdType.UNIFIED_SOCIAL_CREDIT_CODE:
            id_number = identity.validate_unified_social_credit_code(id_number)
        else:
            id_number = _ID_SEPARATORS.sub("", id_number).upper()
            if not OTHER_ID.match(id_number):
                raise identity.IdentityError("must be 5 to 20 letters or digits")
    except identity.IdentityError as exc:
        errors.append(invalid("idNumber", f"idNumber is not a valid {id_type.value}: {exc}"))
    return Identity(id_type, id_number, birth_date, gender)


def check_contact(phone: str | None, email: str | None, errors: list[DomainError]) -> tuple[str | None, str | None]:
    if phone is not None and phone.strip():
        try:
            phone = identity.normalize_mobile(phone)
        except identity.IdentityError as exc:
            errors.append(invalid("phone", f"phone is not a mainland mobile number: {exc}"))
    else:
        phone = None
    if email is not None and email.strip():
        try:
            email = identity.validate_email(email.strip())
        except identity.IdentityError as exc:
            errors.append(invalid("email", f"email is not a valid address: {exc}"))
    else:
        email = None
    return phone, email


def check_tags(tags: list[str] | None, errors: list[DomainError]) -> list[str]:
    cleaned = list(dict.fromkeys(t.strip() for t in tags or [] if t.strip()))
    if len(cleaned) > MAX_TAGS or any(len(t) > MAX_TAG for t in cleaned):
        errors.append(invalid("tags", f"At most {MAX_TAGS} tags of at most {MAX_TAG} characters each"))
    return cleaned


def check_customer_no(value: str | None, errors: list[DomainError]) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip().upper()
    if not CUSTOMER_NO.match(value):
        errors.append(invalid("customerNo", "customerNo is C followed by 10 digits"))
    return value


def raise_if(errors: list[DomainError]) -> None:
    if errors:
        raise DomainErrors(errors)


def validate_new(data: dict[str, Any], today: date | None = None) -> dict[str, Any]:
    """The cleaned fields of a new customer (model field names), or DomainErrors naming every bad field."""
    errors: list[DomainError] = []
    today = today or clock.today()  # once: check_identity would ask the clock twice for a resident ID
    kind = data["kind"]
    clean = {
        "kind": kind,
        "customer_no": check_customer_no(data.get("customer_no"), errors),
        "name": clean_text("name", data.get("name"), errors, required=True),
        "address": clean_text("address", data.get("address"), errors),
        "occupation": clean_text("occupation", data.get("occupation"), errors),
        "branch": clean_text("branch", data.get("branch"), errors),
        "risk_level": data.get("risk_level"),
        "preferred_channel": data.get("preferred_channel"),
        "tags": check_tags(data.get("tags"), errors),
    }
    ident = check_identity(
        kind, data.get("id_type"), data.get("id_number"), data.get("birth_date"), data.get("gender"), errors, today
    )
    clean.update(id_type=ident.id_type, id_number=ident.id_number, birth_date=ident.birth_date, gender=ident.gender)
    clean["phone"], clean["email"] = check_contact(data.get("phone"), data.get("email"), errors)
    raise_if(errors)
    return clean


@dataclass(frozen=True)
class Issue:
    field: str
    message: str


def assess(customer: Any, today: date | None = None) -> tuple[float, list[Issue]]:
    """Completeness (share of key fields present and valid) and what is missing or invalid."""
    issues: list[Issue] = []

    def check(field: str, present: bool, problem: str | None = None) -> None:
        if not present:
            issues.append(Issue(field, f"{field} is missing"))
        elif problem:
            issues.append(Issue(field, problem))

    check("name", bool(customer.name))
    errors: list[DomainError] = []
    if customer.id_type and customer.id_number:
        check_identity(
            customer.kind, customer.id_type, customer.id_number, customer.birth_date, customer.gender, errors, today
        )
    id_errors = [e for e in errors if e.field and e.field[0] in ("idNumber", "idType")]
    check("idNumber", bool(customer.id_type and customer.id_number), id_errors[0].message if id_errors else None)
    contact_errors: list[DomainError] = []
    check_contact(customer.phone, customer.email, contact_errors)
    by_field = {e.field[0]: e.message for e in contact_errors}
    check("phone", bool(customer.phone), by_field.get("phone"))
    check("email", bool(customer.email), by_field.get("email"))
    check("address", bool(customer.address))
    keys = 8
    if customer.kind == CustomerKind.INDIVIDUAL:
        keys = 9
        birth_errors = [e for e in errors if e.field and e.field[0] == "birthDate"]
        check("birthDate", customer.birth_date is not None, birth_errors[0].message if birth_errors else None)
    check("occupation", bool(customer.occupation))
    check("riskLevel", customer.risk_level is not None)
    check("branch", bool(customer.branch))
    return round((keys - len(issues)) / keys, 4), issues


def completeness_of_valid(clean: Mapping[str, Any]) -> float:
    """`assess(customer)[0]` for a customer whose fields are what `validate_new` returned (every value then
    passes assess's checks, which are validate_new's own: only absent fields count), without checking them
    a second time. For the bulk import; tests/customers/test_import_copy.py holds it equal to `assess`."""
    present = (
        bool(clean.get("name"))
        + bool(clean.get("id_type") and clean.get("id_number"))
        + bool(clean.get("phone"))
        + bool(clean.get("email"))
        + bool(clean.get("address"))
        + bool(clean.get("occupation"))
        + (clean.get("risk_level") is not None)
        + bool(clean.get("branch"))
    )
    keys = 8
    if clean["kind"] == CustomerKind.INDIVIDUAL:
        keys = 9
        present += clean.get("birth_date") is not None
    return round(present / keys, 4)


def sees_pii(role: Role | None) -> bool:
    return role in access.PII_READERS


def mask_address(value: str | None) -> str | None:
    """Keeps the first six characters (city and district), never more than half."""
    if value is None:
        return None
    keep = min(6, len(value) // 2)
    return value[:keep] + "****"


MASKS = {
    "id_number": identity.mask_id_number,
    "phone": identity.mask_phone,
    "email": identity.mask_email,
    "address": mask_address,
    "account_no": identity.mask_account,
}
