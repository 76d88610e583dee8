"""Search cannot probe masked digits (docs/DOMAIN.md "Roles and what they may do").

A masked viewer's search matches phone, e-mail and ID numbers only on the whole value (a customer on the phone
gives their number); substring matching on those fields is for viewers who see them unmasked. Name and customer
number matching stay for everyone. The rule holds wherever the customers filter is evaluated: the customers
query, a segment's size and members (as the reader sees them), a survey campaign's audience. LIKE wildcards in a
search match literally."""

from __future__ import annotations

import pytest

from models.staff import Role
from services import customers as customer_service
from services.access import Caller
from services.customers import CustomerFilter
from tests.customers.helpers import create, resident_id
from tests.segments.helpers import create_segment

UNMASKED = [Role.ADMIN, Role.MANAGER, Role.RELATIONSHIP_MANAGER, Role.COMPLAINT_HANDLER]
MASKED = [Role.SERVICE_AGENT, Role.ANALYST, Role.AUDITOR]

SEARCH = """query($search: String) { customers(filter: {search: $search}) { totalCount edges { node { name } } } }"""
SEGMENT = """query($id: ID!) { node(id: $id) { ... on Segment { size members { totalCount } } } }"""

# Parts of the hidden values: 138****5678, 110105********1234 (born 1985-04-12), Z***@example.com.
PROBES = ["1234", "381234", "13812345", "12345678", "0412", "19850412", "1985041", "hang.wei", "Zhang", "Wei@exam"]
WHOLE = [
    "13812345678",
    "+86 138 1234 5678",
    "138-1234-5678",
    resident_id(),
    resident_id()[:6] + " " + resident_id()[6:14] + " " + resident_id()[14:],
    "Zhang.Wei@example.com",
    "zhang.wei@EXAMPLE.com",
]


@pytest.fixture
async def customer(gql, admin):
    _, token = admin
    created = await create(gql, token)  # 张伟, phone 13812345678, Zhang.Wei@example.com, ID 110105198504121234
    await create(gql, token, name="王芳", idNumber=resident_id("19900307"), phone="13900001111", email="w@example.com")
    return created


async def names(gql, token: str, search: str) -> list[str]:
    data = (await gql(SEARCH, {"search": search}, token=token))["customers"]
    return [e["node"]["name"] for e in data["edges"]]


@pytest.mark.parametrize("role", MASKED)
async def test_masked_viewers_find_a_customer_only_by_a_whole_number(gql, staff_factory, customer, role):
    _, token = await staff_factory(role)
    for probe in PROBES:
        assert await names(gql, token, probe) == [], probe
    for whole in WHOLE:
        assert await names(gql, token, whole) == ["张伟"], whole
    # Name and customer number matching stay.
    assert await names(gql, token, "伟") == ["张伟"]
    assert await names(gql, token, customer["customerNo"][:6]) == ["张伟"]


@pytest.mark.parametrize("role", UNMASKED)
async def test_viewers_of_personal_data_match_any_part(gql, staff_factory, customer, role):
    _, token = await staff_factory(role)
    for probe in ["1234", "13812345", "5678", "hang.wei", "Wei@exam", "19850412"]:
        assert await names(gql, token, probe) == ["张伟"], probe
    for whole in WHOLE:
        assert await names(gql, token, whole) == ["张伟"], whole


async def test_a_segment_is_evaluated_as_its_reader_sees_the_customers(gql, staff_factory, customer):
    _, analyst = await staff_factory(Role.ANALYST)
    _, manager = await staff_factory(Role.MANAGER)
    probe = await create_segment(gql, analyst, name="尾号1234", filter={"search": "1234"})
    whole = await create_segment(gql, analyst, name="来电客户", filter={"search": "138 1234 5678"})

    assert (await gql(SEGMENT, {"id": probe["id"]}, token=analyst))["node"] == {"size": 0, "members": {"totalCount": 0}}
    assert (await gql(SEGMENT, {"id": whole["id"]}, token=analyst))["node"] == {"size": 1, "members": {"totalCount": 1}}
    # The same stored filter read by a manager, who sees phone numbers: any part matches.
    assert (await gql(SEGMENT, {"id": probe["id"]}, token=manager))["node"] == {"size": 1, "members": {"totalCount": 1}}


async def test_a_campaign_audience_follows_the_launcher(app, staff_factory, customer):
    # A survey campaign's audience is customers.matching(launcher, filter) (services/survey_campaigns.py).
    analyst, _ = await staff_factory(Role.ANALYST)
    manager, _ = await staff_factory(Role.MANAGER)
    assert await customer_service.matching(Caller(analyst), CustomerFilter(search="5678")).count() == 0
    assert await customer_service.matching(Caller(analyst), CustomerFilter(search="13812345678")).count() == 1
    assert await customer_service.matching(Caller(manager), CustomerFilter(search="5678")).count() == 1


@pytest.mark.parametrize("role", [Role.ADMIN, Role.ANALYST])
@pytest.mark.parametrize("pattern", ["%", "_", "%%%%", "_%_", "%@%", "1%", "\\", "%\\%"])
async def test_like_wildcards_match_literally(gql, staff_factory, customer, role, pattern):
    _, token = await staff_factory(role)
    assert await names(gql, token, pattern) == []


async def test_a_wildcard_in_a_name_is_found_literally(gql, admin, staff_factory, customer):
    _, token = admin
    await create(gql, token, name="100%_满意", idNumber=resident_id("19700101"), phone="13700000000", email=None)
    _, analyst = await staff_factory(Role.ANALYST)
    for viewer in (token, analyst):
        assert await names(gql, viewer, "%_") == ["100%_满意"]
        assert await names(gql, viewer, "0%") == ["100%_满意"]
