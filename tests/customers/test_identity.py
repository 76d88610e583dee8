from __future__ import annotations

from datetime import date

import pytest
from hypothesis import assume, given, strategies as st

from services.identity import (
    USCC_ALPHABET,
    IdentityError,
    ResidentId,
    mask_account,
    mask_email,
    mask_id_number,
    mask_phone,
    normalize_mobile,
    parse_resident_id,
    resident_id_check_char,
    unified_social_credit_check_char,
    validate_email,
    validate_unified_social_credit_code,
)

TODAY = date(2024, 6, 15)
VALID_ID = "11010519491231002X"
VALID_USCC = "91350100M000100Y43"
DIGITS = "0123456789"


def with_check(first17: str) -> str:
    return first17 + resident_id_check_char(first17)


def real_date(digits8: str) -> date | None:
    try:
        return date(int(digits8[:4]), int(digits8[4:6]), int(digits8[6:]))
    except ValueError:
        return None


# --- resident ID: examples -----------------------------------------------------


def test_known_valid_resident_id() -> None:
    assert parse_resident_id(VALID_ID) == ResidentId(
        number=VALID_ID, region_code="110105", birth_date=date(1949, 12, 31), gender="FEMALE"
    )


def test_resident_id_lower_case_x_and_whitespace_are_normalised() -> None:
    assert parse_resident_id(" 11010519491231002x\n").number == VALID_ID


def test_resident_id_gender_from_17th_digit() -> None:
    male = with_check("44030519900101123")
    female = with_check("44030519900101124")
    assert parse_resident_id(male, today=TODAY).gender == "MALE"
    assert parse_resident_id(female, today=TODAY).gender == "FEMALE"


def test_check_char_examples() -> None:
    assert resident_id_check_char("11010519491231002") == "X"
    assert VALID_ID[:17] + resident_id_check_char(VALID_ID[:17]) == VALID_ID


@pytest.mark.parametrize("body", ["1101051949123100", "1101051949123100X", "１１０１０５１９４９１２３１００２"])
def test_check_char_rejects_bad_body(body: str) -> None:
    with pytest.raises(IdentityError):
        resident_id_check_char(body)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("11010519491231002", "18 characters"),  # 17 chars
        ("11010519491231002X1", "18 characters"),
        ("", "18 characters"),
        ("1101051949123100AX", "digit or X"),  # letters
        ("X1010519491231002X", "digit or X"),
        ("11010519491231002Y", "digit or X"),
        ("１１０１０５１９４９１２３１００２X", "digit or X"),  # full-width digits
        ("110105194912310021", "check character"),  # wrong check digit
        (with_check("11010519900230123"), "impossible birth date"),  # 30 February
        (with_check("11010519901301123"), "impossible birth date"),  # month 13
        (with_check("11010519900100123"), "impossible birth date"),  # day 0
        (with_check("11010520230229123"), "impossible birth date"),  # 2023 not leap
        (with_check("11010518991231123"), "before 1900"),
        (with_check("11010520240616123"), "future"),  # TODAY + 1 day
    ],
)
def test_invalid_resident_ids(value: str, message: str) -> None:
    with pytest.raises(IdentityError, match=message):
        parse_resident_id(value, today=TODAY)


def test_resident_id_boundary_dates_are_accepted() -> None:
    assert parse_resident_id(with_check("11010520240229123"), today=TODAY).birth_date == date(2024, 2, 29)
    assert parse_resident_id(with_check("11010520240615123"), today=TODAY).birth_date == TODAY
    assert parse_resident_id(with_check("11010519000101123"), today=TODAY).birth_date == date(1900, 1, 1)


def test_identity_error_is_value_error_and_does_not_echo_the_value() -> None:
    with pytest.raises(ValueError) as info:
        parse_resident_id("110105194912310021")
    assert "110105194912310021" not in str(info.value)


# --- resident ID: properties ---------------------------------------------------


@given(
    region=st.text(DIGITS, min_size=6, max_size=6),
    birth=st.dates(date(1900, 1, 1), TODAY),
    seq=st.text(DIGITS, min_size=3, max_size=3),
    lower=st.booleans(),
)
def test_any_real_birth_date_with_computed_check_char_parses(region: str, birth: date, seq: str, lower: bool) -> None:
    number = with_check(f"{region}{birth:%Y%m%d}{seq}")
    parsed = parse_resident_id(number.lower() if lower else number, today=TODAY)
    assert parsed.number == number
    assert parsed.region_code == region
    assert parsed.birth_date == birth
    assert parsed.gender == ("MALE" if int(seq[2]) % 2 else "FEMALE")


@given(st.text(DIGITS, min_size=17, max_size=17))
def test_random_17_digits_parse_iff_birth_date_is_acceptable(first17: str) -> None:
    birth = real_date(first17[6:14])
    number = with_check(first17)
    if birth is not None and date(1900, 1, 1) <= birth <= TODAY:
        assert parse_resident_id(number, today=TODAY).birth_date == birth
    else:
        with pytest.raises(IdentityError):
            parse_resident_id(number, today=TODAY)


valid_ids = st.builds(
    lambda region, birth, seq: with_check(f"{region}{birth:%Y%m%d}{seq}"),
    st.text(DIGITS, min_size=6, max_size=6),
    st.dates(date(1900, 1, 1), TODAY),
    st.text(DIGITS, min_size=3, max_size=3),
)


@given(valid_ids, st.integers(0, 17), st.sampled_from("0123456789X"))
def test_any_single_character_change_is_rejected(number: str, position: int, new: str) -> None:
    assume(number[position] != new)
    assume(position == 17 or new != "X")  # X elsewhere is a format error, tested above
    changed = number[:position] + new + number[position + 1 :]
    with pytest.raises(IdentityError):
        parse_resident_id(changed, today=TODAY)


@given(valid_ids, st.integers(0, 15))
def test_adjacent_transposition_is_rejected(number: str, position: int) -> None:
    assume(number[position] != number[position + 1])
    swapped = number[:position] + number[position + 1] + number[position] + number[position + 2 :]
    with pytest.raises(IdentityError):
        parse_resident_id(swapped, today=TODAY)


# --- unified social credit code --------------------------------------------------


def test_known_valid_uscc() -> None:
    assert unified_social_credit_check_char(VALID_USCC[:17]) == "3"
    assert validate_unified_social_credit_code(VALID_USCC) == VALID_USCC
    assert validate_unified_social_credit_code(" 91350100m000100y43 ") == VALID_USCC


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("91350100M000100Y44", "check character"),
        ("91350100M000100Y4", "18 characters"),
        ("91350100M000100Y433", "18 characters"),
        ("91350100I000100Y43", "except I, O, S, V"),
        ("91350100O000100Y43", "except I, O, S, V"),
        ("91350100S000100Y43", "except I, O, S, V"),
        ("91350100V000100Y43", "except I, O, S, V"),
        ("91350100Z000100Y43", "except I, O, S, V"),
        ("91350100M000100Y4-", "except I, O, S, V"),
    ],
)
def test_invalid_uscc(value: str, message: str) -> None:
    with pytest.raises(IdentityError, match=message):
        validate_unified_social_credit_code(value)


@pytest.mark.parametrize("body", ["91350100M000100Y", "91350100M000100YZ", "91350100M000100Y43"])
def test_uscc_check_char_rejects_bad_body(body: str) -> None:
    with pytest.raises(IdentityError):
        unified_social_credit_check_char(body)


uscc_bodies = st.text(USCC_ALPHABET, min_size=17, max_size=17)


@given(uscc_bodies)
def test_uscc_round_trip(body: str) -> None:
    code = body + unified_social_credit_check_char(body)
    assert code[17] in USCC_ALPHABET
    assert validate_unified_social_credit_code(code) == code
    assert validate_unified_social_credit_code(code.lower()) == code


@given(uscc_bodies, st.integers(0, 17), st.sampled_from(USCC_ALPHABET))
def test_uscc_any_single_character_change_is_rejected(body: str, position: int, new: str) -> None:
    code = body + unified_social_credit_check_char(body)
    assume(code[position] != new)
    with pytest.raises(IdentityError):
        validate_unified_social_credit_code(code[:position] + new + code[position + 1 :])


# --- mobile ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "13812345678",
        "+8613812345678",
        "8613812345678",
        "+86 138 1234 5678",
        "138-1234-5678",
        " +86-138-1234-5678 ",
    ],
)
def test_valid_mobiles(value: str) -> None:
    assert normalize_mobile(value) == "13812345678"


@pytest.mark.parametrize(
    "value",
    [
        "138123456789",  # 12 digits
        "1381234567",  # 10 digits
        "12812345678",  # leading 12
        "10812345678",
        "23812345678",
        "+85213812345678",  # Hong Kong prefix
        "+86+8613812345678",
        "１３８１２３４５６７８",  # full-width digits
        "138 1234 567a",
        "",
    ],
)
def test_invalid_mobiles(value: str) -> None:
    with pytest.raises(IdentityError):
        normalize_mobile(value)


mobiles = st.builds(
    lambda second, rest: "1" + second + rest,
    st.sampled_from("3456789"),
    st.text(DIGITS, min_size=9, max_size=9),
)


@given(
    mobiles,
    st.sampled_from(["", "+86", "86", "+86 ", "86-"]),
    st.lists(st.sampled_from([" ", "-"]), min_size=11, max_size=11),
)
def test_formatted_mobile_normalises_to_bare_digits(number: str, prefix: str, seps: list[str]) -> None:
    formatted = prefix + "".join(d + s for d, s in zip(number, seps, strict=False))
    assert normalize_mobile(formatted) == number
    assert normalize_mobile(normalize_mobile(formatted)) == number


@given(st.text(alphabet="+86 -0123456789", max_size=20))
def test_mobile_normalisation_is_idempotent(value: str) -> None:
    try:
        once = normalize_mobile(value)
    except IdentityError:
        return
    assert len(once) == 11
    assert normalize_mobile(once) == once


# --- email -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("zhang.san@example.com", "zhang.san@example.com"),
        ("Zhang.San@Example.COM", "Zhang.San@example.com"),
        ("user+tag@mail.bank-of-china.cn", "user+tag@mail.bank-of-china.cn"),
        ("12345678@qq.com", "12345678@qq.com"),
        (" a_b@163.com ", "a_b@163.com"),
        ("x@sub.domain.co.uk", "x@sub.domain.co.uk"),
        ("info@example.xn--fiqs8s", "info@example.xn--fiqs8s"),
        ("a" * 64 + "@example.com", "a" * 64 + "@example.com"),
    ],
)
def test_valid_emails(value: str, expected: str) -> None:
    assert validate_email(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "plainaddress",
        "@example.com",
        "a@@example.com",
        "a@b@example.com",
        "a@example",  # no dot
        "a@example.c",  # TLD too short
        "a@example.c0m",  # TLD not letters
        "a@example.123",
        "a@-example.com",
        "a@example-.com",
        "a@exa_mple.com",
        "a@example..com",
        "a@.example.com",
        "a@example.com.",
        ".a@example.com",
        "a.@example.com",
        "a..b@example.com",
        "a b@example.com",
        "张三@example.com",
        "a@例子.com",
        '"a"@example.com',
        "a@[127.0.0.1]",
        "a" * 65 + "@example.com",
        "a@" + "b" * 64 + ".com",  # label longer than 63
        "a@" + ".".join(["b" * 60] * 5) + ".com",  # longer than 254
        "",
    ],
)
def test_invalid_emails(value: str) -> None:
    with pytest.raises(IdentityError):
        validate_email(value)


# --- masking ---------------------------------------------------------------------


def test_masking_examples() -> None:
    assert mask_id_number("110105194912311234") == "110105********1234"
    assert mask_id_number("11010519491231002X") == "110105********002X"
    assert mask_id_number("12345678") == "12****78"
    assert mask_id_number("123456") == "1****6"
    assert mask_id_number("123") == "***"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138-1234-5678") == "138****5678"
    assert mask_phone("010-12345678") == "01********78"
    assert mask_email("zhangsan@example.com") == "z***@example.com"
    assert mask_email("z@example.com") == "***@example.com"
    assert mask_email("not-an-email") == "no********il"
    assert mask_account("6222021234567890") == "****7890"
    assert mask_account("6222 0212 3456 7890") == "****7890"
    assert mask_account("123456") == "****456"
    assert mask_account("") == "****"


def test_masks_pass_none_through() -> None:
    assert mask_id_number(None) is None
    assert mask_phone(None) is None
    assert mask_email(None) is None
    assert mask_account(None) is None


def visible(original: str, masked: str) -> int:
    """Characters of a same-length mask that reveal the original."""
    assert len(masked) == len(original)
    assert all(m in ("*", o) for o, m in zip(original, masked, strict=True))
    return sum(1 for o, m in zip(original, masked, strict=True) if m != "*")


@given(st.text(max_size=40))
def test_mask_id_number_reveals_at_most_allowed(value: str) -> None:
    shown = visible(value, mask_id_number(value))
    assert shown <= (10 if len(value) >= 18 else min(4, len(value) // 2))


@given(st.text(max_size=30))
def test_mask_phone_reveals_at_most_seven_and_never_more_than_half(value: str) -> None:
    masked = mask_phone(value)
    shown = sum(1 for c in masked if c != "*")
    assert shown <= 7
    assert shown <= len(masked) // 2 + 2  # 7 of 11 for a real mobile number


@given(mobiles)
def test_mask_phone_for_real_numbers(number: str) -> None:
    assert mask_phone(number) == number[:3] + "****" + number[7:]


@given(st.text(max_size=30), st.text(max_size=20))
def test_mask_email_reveals_at_most_one_local_character(local: str, domain: str) -> None:
    value = f"{local}@{domain.replace('@', '')}"
    masked = mask_email(value)
    masked_local, masked_domain = masked.rsplit("@", 1)
    assert masked_domain == domain.replace("@", "")
    assert masked_local in ("***", local[:1] + "***")
    if len(local) < 2:
        assert masked_local == "***"


@given(st.text(max_size=30))
def test_mask_account_reveals_at_most_four(value: str) -> None:
    masked = mask_account(value)
    assert masked.startswith("****")
    tail = masked[4:]
    compact = value.replace(" ", "").replace("-", "")
    assert len(tail) <= min(4, len(compact) // 2)
    assert compact.endswith(tail)
