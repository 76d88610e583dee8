"""The consent rule (services.consents): a channel-specific answer wins over the general one, which wins over the
default (SURVEY granted, the other purposes not), for one customer and for many at once."""

from __future__ import annotations

from models.customers import Channel, Consent, ConsentPurpose, Customer, CustomerKind
from services.consents import consent_granted, granted_for
from tests.conftest import QueryCounter


async def customers(count: int) -> list[int]:
    start = await Customer.all().count()
    await Customer.bulk_create(
        [
            Customer(customer_no=f"C{start + i:010d}", kind=CustomerKind.INDIVIDUAL, name=f"客户{start + i}")
            for i in range(count)
        ]
    )
    return list(await Customer.all().order_by("id").values_list("id", flat=True))[start:]


async def answer(customer_id: int, purpose: ConsentPurpose, granted: bool, channel: Channel | None = None) -> None:
    await Consent.create(customer_id=customer_id, purpose=purpose, channel=channel, granted=granted, source="test")


async def both(customer_id: int, purpose: ConsentPurpose, channel: Channel | None = None) -> bool:
    """The answer of granted_for, checked against consent_granted's."""
    granted = customer_id in await granted_for([customer_id], purpose, channel)
    assert await consent_granted(customer_id, purpose, channel) is granted
    return granted


async def test_the_defaults_grant_survey_and_nothing_else(app):
    (pk,) = await customers(1)
    assert await both(pk, ConsentPurpose.SURVEY) is True
    assert await both(pk, ConsentPurpose.SURVEY, Channel.SMS) is True
    for purpose in (ConsentPurpose.MARKETING, ConsentPurpose.PROFILING, ConsentPurpose.THIRD_PARTY_SHARING):
        assert await both(pk, purpose) is False
        assert await both(pk, purpose, Channel.EMAIL) is False


async def test_a_general_revoke_wins_over_the_default_on_every_channel(app):
    (pk,) = await customers(1)
    await answer(pk, ConsentPurpose.SURVEY, False)
    assert await both(pk, ConsentPurpose.SURVEY) is False
    assert await both(pk, ConsentPurpose.SURVEY, Channel.PHONE) is False
    # Other purposes keep their own defaults.
    await answer(pk, ConsentPurpose.MARKETING, True)
    assert await both(pk, ConsentPurpose.MARKETING) is True
    assert await both(pk, ConsentPurpose.PROFILING) is False


async def test_a_channel_grant_wins_over_a_general_revoke(app):
    (pk,) = await customers(1)
    await answer(pk, ConsentPurpose.MARKETING, False)
    await answer(pk, ConsentPurpose.MARKETING, True, Channel.SMS)
    assert await both(pk, ConsentPurpose.MARKETING, Channel.SMS) is True
    assert await both(pk, ConsentPurpose.MARKETING, Channel.EMAIL) is False
    assert await both(pk, ConsentPurpose.MARKETING) is False  # no channel asked: the general answer


async def test_a_channel_revoke_wins_over_a_general_grant(app):
    (pk,) = await customers(1)
    await answer(pk, ConsentPurpose.MARKETING, True)
    await answer(pk, ConsentPurpose.MARKETING, False, Channel.EMAIL)
    assert await both(pk, ConsentPurpose.MARKETING, Channel.EMAIL) is False
    assert await both(pk, ConsentPurpose.MARKETING, Channel.SMS) is True
    assert await both(pk, ConsentPurpose.MARKETING) is True


async def test_a_channel_without_its_own_answer_follows_the_general_one_or_the_default(app):
    general, channel_only, nothing = await customers(3)
    await answer(general, ConsentPurpose.MARKETING, True)
    await answer(channel_only, ConsentPurpose.MARKETING, True, Channel.SMS)
    await answer(channel_only, ConsentPurpose.SURVEY, False, Channel.PHONE)
    ids = [general, channel_only, nothing]
    assert await granted_for(ids, ConsentPurpose.MARKETING, Channel.WECHAT) == {general}
    assert await granted_for(ids, ConsentPurpose.MARKETING, Channel.SMS) == {general, channel_only}
    assert await granted_for(ids, ConsentPurpose.SURVEY, Channel.WECHAT) == set(ids)
    assert await granted_for(ids, ConsentPurpose.SURVEY, Channel.PHONE) == {general, nothing}
    assert await granted_for(ids, ConsentPurpose.SURVEY) == set(ids)


async def test_no_ids_no_query(app):
    with QueryCounter() as counter:
        assert await granted_for([], ConsentPurpose.SURVEY) == set()
    assert counter.count == 0


async def test_many_customers_cost_one_query(app):
    ids = await customers(200)
    for i, pk in enumerate(ids):
        if i % 3 == 0:
            await answer(pk, ConsentPurpose.MARKETING, True)
        if i % 5 == 0:
            await answer(pk, ConsentPurpose.MARKETING, i % 2 == 0, Channel.SMS)
        if i % 7 == 0:
            await answer(pk, ConsentPurpose.SURVEY, False)
    asked = [
        (ConsentPurpose.MARKETING, None),
        (ConsentPurpose.MARKETING, Channel.SMS),
        (ConsentPurpose.MARKETING, Channel.EMAIL),
        (ConsentPurpose.SURVEY, Channel.SMS),
    ]
    for purpose, channel in asked:
        with QueryCounter() as few:
            await granted_for(ids[:2], purpose, channel)
        with QueryCounter() as many:
            granted = await granted_for(ids, purpose, channel)
        assert few.count == many.count == 1, many.statements
        assert granted == {pk for pk in ids if await consent_granted(pk, purpose, channel)}
    # SMS answered (every 5th, granted when even) wins; else the general grant (every 3rd); else not granted.
    expected = {pk for i, pk in enumerate(ids) if (i % 10 == 0) or (i % 3 == 0 and i % 5 != 0)}
    assert await granted_for(ids, ConsentPurpose.MARKETING, Channel.SMS) == expected
