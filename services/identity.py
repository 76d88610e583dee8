"""Validation and masking rules for customer identity data.

Pure functions, standard library only (and services.clock for today's date), no I/O.  Error messages never echo the
offending value, so they are safe to log and to return to API clients.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from operator import mul
from typing import Literal, overload

from services import clock

__all__ = [
    "Gender",
    "IdentityError",
    "ResidentId",
    "find_identifiers",
    "identifiers_pattern",
    "mask_account",
    "mask_email",
    "mask_free_text",
    "mask_id_number",
    "mask_phone",
    "normalize_mobile",
    "parse_resident_id",
    "resident_id_check_char",
    "scrub_identifiers",
    "scrub_with",
    "unified_social_credit_check_char",
    "validate_email",
    "validate_unified_social_credit_code",
]

Gender = Literal["MALE", "FEMALE"]


class IdentityError(ValueError):
    """Raised when customer identity data fails validation."""


# --- Resident identity card number (GB 11643-1999) ---------------------------

RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
RESIDENT_ID_CHECK_CHARS = "10X98765432"
EARLIEST_BIRTH_DATE = date(1900, 1, 1)

# ASCII only: `\d` and str.isdigit() would also accept e.g. full-width digits.
_SEVENTEEN_DIGITS = re.compile(r"[0-9]{17}")
_RESIDENT_ID = re.compile(r"[0-9]{17}[0-9X]")


@dataclass(frozen=True, slots=True)
class ResidentId:
    number: str  # normalised: 18 characters, check character upper-case
    region_code: str  # administrative division code, digits 1-6
    birth_date: date  # digits 7-14
    gender: Gender  # parity of digit 17: odd = male


def resident_id_check_char(first17: str) -> str:
    """Check character for the first 17 digits of a resident ID number."""
    if not _SEVENTEEN_DIGITS.fullmatch(first17):
        raise IdentityError("resident ID body must be exactly 17 digits")
    total = sum(map(mul, map(int, first17), RESIDENT_ID_WEIGHTS))  # the hot line of a bulk import's validation
    return RESIDENT_ID_CHECK_CHARS[total % 11]


def parse_resident_id(value: str, *, today: date | None = None) -> ResidentId:
    """Validate an 18-character resident ID number and decode it.

    Surrounding whitespace is ignored and a trailing ``x`` is upper-cased.
    ``today`` (default: ``clock.today()``, the UTC date) bounds the birth date.
    """
    number = value.strip().upper()
    if len(number) != 18:
        raise IdentityError(f"resident ID must be 18 characters long, got {len(number)}")
    if not _RESIDENT_ID.fullmatch(number):
        raise IdentityError("resident ID must be 17 digits followed by a digit or X")
    try:
        birth_date = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise IdentityError("resident ID contains an impossible birth date") from None
    if birth_date < EARLIEST_BIRTH_DATE:
        raise IdentityError("resident ID birth date is before 1900-01-01")
    if birth_date > (today or clock.today()):
        raise IdentityError("resident ID birth date is in the future")
    if resident_id_check_char(number[:17]) != number[17]:
        raise IdentityError("resident ID check character is wrong")
    gender: Gender = "MALE" if int(number[16]) % 2 == 1 else "FEMALE"
    return ResidentId(number=number, region_code=number[:6], birth_date=birth_date, gender=gender)


# --- Unified social credit code (GB 32100-2015) ------------------------------

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_VALUES = {c: i for i, c in enumerate(USCC_ALPHABET)}


def unified_social_credit_check_char(first17: str) -> str:
    """Check character for the first 17 characters of a unified social credit code."""
    body = first17.upper()
    if len(body) != 17 or any(c not in _USCC_VALUES for c in body):
        raise IdentityError(f"unified social credit code body must be 17 characters from {USCC_ALPHABET}")
    total = sum(_USCC_VALUES[c] * w for c, w in zip(body, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def validate_unified_social_credit_code(value: str) -> str:
    """Validate a unified social credit code; return it upper-cased."""
    code = value.strip().upper()
    if len(code) != 18:
        raise IdentityError(f"unified social credit code must be 18 characters long, got {len(code)}")
    if any(c not in _USCC_VALUES for c in code):
        raise IdentityError("unified social credit code may only contain digits and the letters A-Y except I, O, S, V")
    if unified_social_credit_check_char(code[:17]) != code[17]:
        raise IdentityError("unified social credit code check character is wrong")
    return code


# --- Mobile phone --------------------------------------------------------------

_MOBILE = re.compile(r"1[3-9][0-9]{9}")


def normalize_mobile(value: str) -> str:
    """Return a mainland mobile number as 11 bare digits.

    Spaces and hyphens are removed, as is a leading ``+86`` or ``86``.
    """
    number = value.strip().replace(" ", "").replace("-", "")
    if number.startswith("+86"):
        number = number[3:]
    elif number.startswith("86"):
        number = number[2:]
    if not _MOBILE.fullmatch(number):
        raise IdentityError("mobile number must be 11 digits starting with 13-19")
    return number


# --- E-mail --------------------------------------------------------------------

_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# Letters only, or an IDN top-level domain in punycode (e.g. xn--fiqs8s = .中国).
_TLD = re.compile(r"[A-Za-z]{2,63}|xn--[A-Za-z0-9-]+", re.IGNORECASE)


def validate_email(value: str) -> str:
    """Syntactic e-mail check (ASCII dot-atom local part, LDH domain).

    Returns the address stripped of surrounding whitespace with its domain
    lower-cased.  Quoted local parts and IP-literal domains are rejected.
    """
    email = value.strip()
    if len(email) > 254:
        raise IdentityError("email must be at most 254 characters")
    if email.count("@") != 1:
        raise IdentityError("email must contain exactly one '@'")
    local, domain = email.split("@")
    if not 1 <= len(local) <= 64:
        raise IdentityError("email local part must be 1 to 64 characters")
    if not _EMAIL_LOCAL.fullmatch(local):
        raise IdentityError("email local part contains invalid characters or dots")
    labels = domain.split(".")
    if len(labels) < 2:
        raise IdentityError("email domain must contain at least one dot")
    if not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise IdentityError(
            "email domain labels must be 1-63 letters, digits or hyphens, not starting or ending with a hyphen"
        )
    if not _TLD.fullmatch(labels[-1]):
        raise IdentityError("email top-level domain must be at least 2 letters")
    return f"{local}@{domain.lower()}"


# --- Masking -------------------------------------------------------------------


def _mask_middle(value: str, head: int, tail: int) -> str:
    return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail :]


def _mask_short(value: str) -> str:
    """Keep at most 2 leading and 2 trailing characters, never more than half."""
    keep = min(2, len(value) // 4)
    return _mask_middle(value, keep, keep)


@overload
def mask_id_number(value: None) -> None: ...
@overload
def mask_id_number(value: str) -> str: ...
def mask_id_number(value: str | None) -> str | None:
    """``110105********1234``: first 6 and last 4 of an 18+ character value."""
    if value is None:
        return None
    if len(value) >= 18:
        return _mask_middle(value, 6, 4)
    return _mask_short(value)


@overload
def mask_phone(value: None) -> None: ...
@overload
def mask_phone(value: str) -> str: ...
def mask_phone(value: str | None) -> str | None:
    """``138****5678`` for a mainland mobile (normalised first)."""
    if value is None:
        return None
    try:
        return _mask_middle(normalize_mobile(value), 3, 4)
    except IdentityError:
        return _mask_short(value)


@overload
def mask_email(value: None) -> None: ...
@overload
def mask_email(value: str) -> str: ...
def mask_email(value: str | None) -> str | None:
    """``z***@example.com``: first character of the local part, then ``***``.

    A one-character local part is hidden entirely.
    """
    if value is None:
        return None
    if "@" not in value:
        return _mask_short(value)
    local, domain = value.rsplit("@", 1)
    visible = local[:1] if len(local) >= 2 else ""
    return f"{visible}***@{domain}"


@overload
def mask_account(value: None) -> None: ...
@overload
def mask_account(value: str) -> str: ...
def mask_account(value: str | None) -> str | None:
    """``****7890``: the last 4 characters (never more than half the number)."""
    if value is None:
        return None
    compact = value.replace(" ", "").replace("-", "")
    keep = min(4, len(compact) // 2)
    return "****" + compact[len(compact) - keep :]


# --- Identifiers inside free text ------------------------------------------------
#
# Staff type phone numbers, resident ID numbers and e-mail addresses into notes, interaction records, complaint
# texts, follow-ups and survey comments, in any form: 15887717721, 158-8771-7721, 158 8771 7721,
# +86 158 8771 7721, 110105 19900307 1234.  `find_identifiers` finds them (one place), `mask_free_text` shows
# them to masked viewers in the masked forms of the fields, `scrub_identifiers` removes them on erasure.

IdentifierKind = Literal["EMAIL", "RESIDENT_ID", "PHONE"]

# At most one separator between two digits: a space, a hyphen, a dot, a no-break or an ideographic space.
_SEP = "[ \\-.\u00a0\u3000]?"
_LABEL_IN_TEXT = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_EMAIL_IN_TEXT = rf"[A-Za-z0-9._%+-]+@{_LABEL_IN_TEXT}(?:\.{_LABEL_IN_TEXT})+"
# 18 characters (the last may be X), not part of a longer run of digits.
_ID_IN_TEXT = rf"(?<![0-9])[0-9](?:{_SEP}[0-9]){{16}}{_SEP}[0-9Xx](?![0-9])"
# A mainland mobile, optionally after +86 / 0086 / 86 / (+86), not part of a longer run of digits.
_PHONE_PREFIX = rf"(?:(?:\+|00)?86{_SEP}|\(\+?86\){_SEP})"
_PHONE_IN_TEXT = rf"(?<![0-9]){_PHONE_PREFIX}?1{_SEP}[3-9](?:{_SEP}[0-9]){{9}}(?![0-9])"
_IDENTIFIER = re.compile(f"(?P<EMAIL>{_EMAIL_IN_TEXT})|(?P<RESIDENT_ID>{_ID_IN_TEXT})|(?P<PHONE>{_PHONE_IN_TEXT})")


def _compact(value: str) -> str:
    """The characters of a typed number without its separators, upper-cased (a trailing x becomes X)."""
    return re.sub(r"[^0-9A-Za-z]", "", value).upper()


def find_identifiers(text: str) -> list[tuple[IdentifierKind, int, int]]:
    """Every e-mail address, resident ID number (18 characters) and mainland mobile number in `text`, however
    typed, as (kind, start, end), left to right and never overlapping."""
    found: list[tuple[IdentifierKind, int, int]] = []
    for match in _IDENTIFIER.finditer(text):
        kind: IdentifierKind = match.lastgroup  # type: ignore[assignment]
        found.append((kind, match.start(), match.end()))
    return found


def _masked_identifier(kind: IdentifierKind, value: str) -> str:
    if kind == "EMAIL":
        return mask_email(value)
    if kind == "RESIDENT_ID":
        return mask_id_number(_compact(value))
    digits = _compact(value)  # +86 158 8771 7721 -> 8615887717721
    return _mask_middle(digits[-11:], 3, 4)


# The last word of a text cut short with "…" (services.timeline.short), digit groups typed apart included.
_CUT_TAIL = re.compile("[0-9A-Za-z._%+@()-]*[0-9@][0-9A-Za-z._%+@()-]*(?:[ \u00a0\u3000][0-9()+-]+)*…$")


def mask_free_text(text: str) -> str:
    """`text` with every phone number, resident ID number and e-mail address in it in the masked form of the
    fields (``138****5678``, ``110105********1234``, ``z***@example.com``); the rest is kept as written.

    A text cut short (ending in "…") may end in part of a number or address, too short to be recognised: such
    a last word with three digits or an ``@`` becomes ``***``."""
    masked = _IDENTIFIER.sub(lambda m: _masked_identifier(m.lastgroup, m.group()), text)  # type: ignore[arg-type]
    tail = _CUT_TAIL.search(masked)
    if tail and ("@" in tail.group() or sum(c.isdigit() for c in tail.group()) >= 3):
        masked = masked[: tail.start()] + "***…"
    return masked


def identifiers_pattern(
    *,
    names: Iterable[str | None] = (),
    phones: Iterable[str | None] = (),
    id_numbers: Iterable[str | None] = (),
    emails: Iterable[str | None] = (),
    others: Iterable[str | None] = (),
    any_identifier: bool = False,
) -> re.Pattern[str] | None:
    """One person's identifying values as a pattern (case-insensitive): names, e-mail addresses and `others`
    (e.g. an address) as written, phone and ID numbers however typed (separators, a +86 prefix); with
    `any_identifier`, also every phone number, resident ID number and e-mail address (`find_identifiers`)."""
    options = [_IDENTIFIER.pattern] if any_identifier else []
    for value in (*id_numbers, *phones):
        compact = _compact(value or "")
        if compact.startswith("86") and len(compact) == 13:  # a stored +86 prefix
            compact = compact[2:]
        if len(compact) >= 5:
            options.append(f"(?<![0-9]){_PHONE_PREFIX}?" + _SEP.join(re.escape(c) for c in compact) + "(?![0-9])")
    literal = {v.strip() for v in (*names, *emails, *others) if v and len(v.strip()) >= 2}
    options += [re.escape(v) for v in sorted(literal, key=len, reverse=True)]
    if not options:
        return None
    return re.compile("|".join(options), re.IGNORECASE)


def scrub_identifiers(
    text: str,
    *,
    names: Iterable[str | None] = (),
    phones: Iterable[str | None] = (),
    id_numbers: Iterable[str | None] = (),
    emails: Iterable[str | None] = (),
    others: Iterable[str | None] = (),
    any_identifier: bool = True,
    replacement: str = "***",
) -> str:
    """`text` without the person's identifying values and, with `any_identifier`, without any other phone
    number, resident ID number or e-mail address (`identifiers_pattern`): each is replaced by `replacement`,
    the rest of the text is kept as written."""
    pattern = identifiers_pattern(
        names=names, phones=phones, id_numbers=id_numbers, emails=emails, others=others, any_identifier=any_identifier
    )
    return scrub_with(text, pattern, replacement)


def scrub_with(text: str, pattern: re.Pattern[str] | None, replacement: str = "***") -> str:
    """`scrub_identifiers` with a pattern made once by `identifiers_pattern` (for many texts)."""
    return pattern.sub(replacement, text) if pattern is not None else text


_DIGIT_RUN = re.compile(r"\d(?:[\s-]?\d){2,}")


def probes_identifiers(search: str) -> bool:
    """Whether a search string could probe identifiers hidden in free text (a run of 3+ digits, however
    spaced, or an `@`): masked viewers do not get such searches over free text, only over fields they see."""
    return "@" in search or _DIGIT_RUN.search(search) is not None
