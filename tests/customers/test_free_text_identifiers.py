"""Identifiers inside free text (services.identity): masked for masked viewers, scrubbed on erasure."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from services.identity import (
    find_identifiers,
    mask_email,
    mask_free_text,
    mask_id_number,
    mask_phone,
    resident_id_check_char,
    scrub_identifiers,
)

ID17 = "11010519900307123"
RESIDENT_ID = ID17 + resident_id_check_char(ID17)  # 110105199003071234 -> check char
PHONE = "15887717721"


@pytest.mark.parametrize(
    "typed",
    [
        "15887717721",
        "158-8771-7721",
        "158 8771 7721",
        "158.8771.7721",
        "+86 15887717721",
        "+86 158 8771 7721",
        "+86-158-8771-7721",
        "(+86) 158 8771 7721",
        "0086 158 8771 7721",
        "8615887717721",
        "158\u30008771\u30007721",
    ],
)
def test_phone_numbers_are_masked_however_typed(typed: str) -> None:
    assert mask_free_text(f"客户来电，电话{typed}，要求回电。") == "客户来电，电话158****7721，要求回电。"
    assert mask_free_text(f"call {typed}.") == "call 158****7721."


@pytest.mark.parametrize(
    "typed", [RESIDENT_ID, f"{RESIDENT_ID[:6]} {RESIDENT_ID[6:14]} {RESIDENT_ID[14:]}", "-".join(RESIDENT_ID)]
)
def test_resident_ids_are_masked_however_typed(typed: str) -> None:
    assert mask_free_text(f"身份证{typed}已核验") == f"身份证{mask_id_number(RESIDENT_ID)}已核验"


def test_an_x_check_character_is_masked_too() -> None:
    assert mask_free_text("ID 11010519900307123x.") == "ID 110105********123X."


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("mail Zhang.San@Example.com.", "mail Z***@Example.com."),
        ("邮箱z@example.com，", "邮箱***@example.com，"),
        ("13812345678@163.com", "1***@163.com"),  # the phone in the local part goes with it
    ],
)
def test_email_addresses_are_masked(text: str, masked: str) -> None:
    assert mask_free_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "投诉编号 CMP-20261128-000123，金额 1380000 元",
        "2026-11-28 13:45 来电",
        "金额13.8万元，卡号后四位1234",
        "客户对年费有异议",
        "138****5678 and 110105********1234 and z***@example.com",  # masked forms stay as they are
    ],
)
def test_text_without_identifiers_is_unchanged(text: str) -> None:
    assert mask_free_text(text) == text
    assert scrub_identifiers(text) == text


def test_several_identifiers_in_one_text() -> None:
    text = f"张三 {PHONE}，身份证 {RESIDENT_ID}，邮箱 zhang.san@example.com；备用 139-0000-1111"
    assert find_identifiers(text) == [
        ("PHONE", 3, 14),
        ("RESIDENT_ID", 19, 37),
        ("EMAIL", 41, 62),
        ("PHONE", 66, 79),
    ]
    assert mask_free_text(text) == (
        f"张三 158****7721，身份证 {mask_id_number(RESIDENT_ID)}，邮箱 z***@example.com；备用 139****1111"
    )


def test_scrubbing_removes_the_person_and_any_identifier_and_keeps_the_rest() -> None:
    text = "张三（Zhang San）来电 158-8771-7721，身份证 110105 19900307 1234，邮箱 ZS@Example.com，其女儿 139 0000 1111"
    scrubbed = scrub_identifiers(
        text, names=["张三", "Zhang San"], phones=[PHONE], id_numbers=["110105199003071234"], emails=["zs@example.com"]
    )
    assert scrubbed == "***（***）来电 ***，身份证 ***，邮箱 ***，其女儿 ***"


def test_scrubbing_finds_the_persons_own_numbers_in_other_shapes_only_with_its_values() -> None:
    # A landline or a foreign ID is no generic shape: only the person's own value finds it, however typed.
    text = "座机 010-6512 3456，护照 E1234 5678"
    assert scrub_identifiers(text) == text
    assert scrub_identifiers(text, phones=["01065123456"], id_numbers=["E12345678"]) == "座机 ***，护照 ***"


def test_scrubbing_only_the_person() -> None:
    text = "张三 15887717721 other 13900001111"
    assert scrub_identifiers(text, names=["张三"], phones=[PHONE], any_identifier=False) == "*** *** other 13900001111"


digits = st.text(alphabet="0123456789", min_size=9, max_size=9)
separators = st.sampled_from(["", " ", "-", "."])
prose = st.text(alphabet=st.sampled_from("客户来电要求回访，。 abcXYZ:;()"), max_size=12)


@given(second=st.sampled_from("3456789"), rest=digits, sep=separators, before=prose, after=prose)
def test_any_typed_mobile_is_masked_like_the_field(second: str, rest: str, sep: str, before: str, after: str) -> None:
    number = "1" + second + rest
    typed = sep.join([number[:3], number[3:7], number[7:]])
    masked = mask_free_text(f"{before} {typed} {after}")
    assert masked == f"{before} {mask_phone(number)} {after}"


@given(local=st.from_regex(r"[a-z][a-z0-9.]{0,10}[a-z0-9]", fullmatch=True), before=prose, after=prose)
def test_any_email_is_masked_like_the_field(local: str, before: str, after: str) -> None:
    email = f"{local}@example.com"
    assert mask_free_text(f"{before} {email} {after}") == f"{before} {mask_email(email)} {after}"


@given(st.text(max_size=60))
def test_masking_is_idempotent_and_never_fails(text: str) -> None:
    once = mask_free_text(text)
    assert mask_free_text(once) == once


@given(body=digits, sep=separators, before=prose, after=prose)
def test_scrubbed_text_keeps_no_digit_of_a_resident_id(body: str, sep: str, before: str, after: str) -> None:
    first17 = "11010" + body + "123"
    number = first17 + resident_id_check_char(first17)
    typed = sep.join([number[:6], number[6:14], number[14:]])
    assert scrub_identifiers(f"{before} {typed} {after}") == f"{before} *** {after}"


@pytest.mark.parametrize(
    ("cut", "masked"),
    [
        ("客户来电 158 8771…", "客户来电 ***…"),
        ("call +86 158-87…", "call ***…"),
        ("mail zhang.wei@exa…", "mail ***…"),
        ("身份证 110105 1990…", "身份证 ***…"),
        ("回电 15887717721…", "回电 158*******…"),
        ("金额 12…", "金额 12…"),
        ("平常的文字…", "平常的文字…"),
    ],
)
def test_a_number_cut_short_at_the_end_is_masked(cut: str, masked: str) -> None:
    # services.timeline.short cuts a detail line with "…": the last word may be part of a number.
    assert mask_free_text(cut) == masked
