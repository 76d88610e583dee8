from __future__ import annotations

import random
import re
from datetime import date

from hypothesis import given, settings, strategies as st

from services.demo_data import BRANCHES, DemoCompany, DemoPerson, fake_company, fake_person
from services.identity import (
    normalize_mobile,
    parse_resident_id,
    validate_email,
    validate_unified_social_credit_code,
)

TODAY = date(2024, 6, 15)
COUNT = 500
BRANCH_BY_NAME = {b.name: b for b in BRANCHES}
HAN = re.compile(r"[\u4e00-\u9fff]+")


def people(seed: int, today: date = TODAY) -> list[DemoPerson]:
    rng = random.Random(seed)
    return [fake_person(rng, today) for _ in range(COUNT)]


def companies(seed: int) -> list[DemoCompany]:
    rng = random.Random(seed)
    return [fake_company(rng) for _ in range(COUNT)]


def age_on(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def assert_valid_person(person: DemoPerson, today: date) -> None:
    parsed = parse_resident_id(person.resident_id, today=today)
    assert parsed.number == person.resident_id
    assert parsed.birth_date == person.birth_date
    assert parsed.gender == person.gender
    assert int(person.resident_id[16]) % 2 == (1 if person.gender == "MALE" else 0)
    assert 18 <= age_on(person.birth_date, today) <= 85

    branch = BRANCH_BY_NAME[person.branch]
    assert parsed.region_code == branch.region_code
    assert person.address.startswith(branch.province + branch.city + branch.district)

    assert normalize_mobile(person.mobile) == person.mobile
    if person.email is not None:
        assert validate_email(person.email) == person.email
    assert HAN.fullmatch(person.name) and 2 <= len(person.name) <= 4
    assert HAN.fullmatch(person.occupation)


def test_branches_are_distinct_and_well_formed() -> None:
    assert len(BRANCHES) >= 12
    assert len({b.name for b in BRANCHES}) == len(BRANCHES)
    assert len({b.region_code for b in BRANCHES}) == len(BRANCHES)
    for b in BRANCHES:
        assert re.fullmatch(r"[1-8][0-9]{5}", b.region_code)
        assert b.name.endswith("支行") and b.city.endswith("市") and b.streets


def test_people_are_valid() -> None:
    generated = people(seed=2024)
    for person in generated:
        assert_valid_person(person, TODAY)
    # Sanity checks on the mix, not exact numbers.
    assert {p.gender for p in generated} == {"MALE", "FEMALE"}
    assert {p.branch for p in generated} == set(BRANCH_BY_NAME)
    assert 0 < sum(p.email is None for p in generated) < COUNT
    assert len({p.resident_id for p in generated}) == COUNT
    assert {"退休", "学生"} <= {p.occupation for p in generated}


def test_people_on_a_leap_day_are_valid() -> None:
    today = date(2024, 2, 29)
    for person in people(seed=7, today=today):
        assert_valid_person(person, today)


def test_companies_are_valid() -> None:
    generated = companies(seed=2024)
    for company in generated:
        code = company.unified_social_credit_code
        assert validate_unified_social_credit_code(code) == code
        branch = BRANCH_BY_NAME[company.branch]
        assert code.startswith("91" + branch.region_code)
        assert company.name.startswith(branch.city.removesuffix("市"))
        assert company.name.endswith("公司") and HAN.fullmatch(company.name)
    assert len({c.unified_social_credit_code for c in generated}) == COUNT


def test_generation_is_deterministic_for_a_seed() -> None:
    assert people(seed=42) == people(seed=42)
    assert companies(seed=42) == companies(seed=42)
    assert people(seed=42) != people(seed=43)
    assert companies(seed=42) != companies(seed=43)


@settings(max_examples=50)
@given(seed=st.integers(0, 2**32), today=st.dates(date(1990, 1, 1), date(2100, 12, 31)))
def test_any_seed_and_day_give_valid_data(seed: int, today: date) -> None:
    rng = random.Random(seed)
    assert_valid_person(fake_person(rng, today), today)
    code = fake_company(rng).unified_social_credit_code
    assert validate_unified_social_credit_code(code) == code
