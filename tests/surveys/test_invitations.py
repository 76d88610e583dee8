"""Invitations: sendSurvey, the link's token (only its hash is kept), delivery outcomes, expiry, every
suppression rule with the 30-day rule and its complaint exception, the post-complaint survey (once per
complaint, ever), the channel choice, branch scoping, roles, and the cost of a list."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from tortoise import Tortoise

from core.settings import Settings, SettingsError, use as use_settings
from models.complaints import Complaint
from models.customers import Channel, Customer, CustomerStatus
from models.notifications import Notification, NotificationStatus
from models.staff import Role
from models.surveys import SurveyInvitation, SurveyTemplate
from services import clock, surveys
from services.access import COMMAND_LINE
from services.customer_erasure import erase
from tests.complaints.helpers import new_customer
from tests.conftest import QueryCounter
from tests.customers.helpers import create
from tests.surveys.helpers import (
    CSAT_QUESTIONS,
    INVITATION_FIELDS,
    INVITATIONS,
    close_complaint,
    create_template,
    gid,
    pk,
    reopen_and_close,
    send,
    send_raw,
    submit,
    token_of,
)

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
SET_CONSENTS = """mutation($input: SetConsentsInput!) { setConsents(input: $input) { errors { field code } } }"""
COMPLAINT_SURVEY = f"""query($id: ID!) {{ complaint(id: $id) {{ id surveyInvitation {{ {INVITATION_FIELDS} }} }} }}"""


async def _revoke(gql, token, customer_id, channel=None):
    consent = {"purpose": "SURVEY", "granted": False, "channel": channel, "source": "客户来电"}
    result = await gql(SET_CONSENTS, {"input": {"customerId": customer_id, "consents": [consent]}}, token=token)
    assert result["setConsents"]["errors"] == []


async def _csat(gql, token, **overrides) -> dict:
    data = {"name": "投诉满意度", "kind": "CSAT", "trigger": "COMPLAINT_CLOSED", "questions": CSAT_QUESTIONS}
    return await create_template(gql, token, **{**data, **overrides})


async def _every_value_in_the_database() -> str:
    found = []
    for model in Tortoise.apps.get_models_iterable():
        for row in await model.all().values():
            found.append(repr(row))
    return "\n".join(found)


async def test_an_invitation_carries_a_link_whose_token_is_only_stored_hashed(gql, admin, outbox, deliver):
    _, token = admin
    with clock.freeze(NOW):
        template = await create_template(gql, token, validDays=10)
        customer = await create(gql, token, name="王小明", gender="MALE", idType=None, idNumber=None)
        invitation = await send(gql, token, template["id"], customer["id"])
        assert (invitation["status"], invitation["channel"], invitation["suppressedReason"]) == (
            "PENDING",
            "EMAIL",
            None,
        )
        assert invitation["expiresAt"] == (NOW + timedelta(days=10)).isoformat()
        assert (invitation["template"]["id"], invitation["customer"]["id"]) == (template["id"], customer["id"])
        assert (invitation["attempts"], invitation["sentAt"], invitation["response"]) == (0, None, None)

        row = await SurveyInvitation.get(id=pk(invitation["id"]))
        notification = await Notification.get(id=row.notification_id)
        link_token = await token_of(invitation["id"])
        assert len(link_token) >= 43  # 32 random bytes: 256 bits
        assert row.token_hash == hashlib.sha256(link_token.encode()).hexdigest()
        assert notification.recipient == "Zhang.Wei@example.com" and notification.channel == Channel.EMAIL
        assert f"http://127.0.0.1:8000/s/{link_token}" in notification.body
        assert notification.body.startswith("王先生您好") and "王小明" not in notification.body
        assert outbox == [("send_notifications", [notification.id])]
        # Nothing of the survey's own keeps the token; only the outbox row, which the sender needs ...
        survey_rows = [repr(r) for m in (SurveyInvitation, SurveyTemplate) for r in await m.all().values()]
        assert link_token not in "".join(survey_rows)

        await deliver(notification.id)
        # ... until it is sent: then no column anywhere holds it.
        assert link_token not in await _every_value_in_the_database()
        sent = (await gql(INVITATIONS, token=token))["surveyInvitations"]["edges"][0]["node"]
        assert (sent["status"], sent["attempts"], sent["lastError"]) == ("SENT", 1, None)
        assert sent["sentAt"] == NOW.isoformat()
        # The link still works: the hash is what is looked up.
        assert (await submit(gql, link_token, [{"questionKey": "nps", "number": 10}]))["accepted"] is True


async def test_a_failed_delivery_shows_on_the_invitation(gql, admin, outbox, deliver):
    _, token = admin
    template = await create_template(gql, token)
    customer = await new_customer(gql, token)
    invitation = await send(gql, token, template["id"], customer["id"])
    link_token = await token_of(invitation["id"])
    await deliver((await SurveyInvitation.get(id=pk(invitation["id"]))).notification_id, failing=True)
    failed = (await gql(INVITATIONS, token=token))["surveyInvitations"]["edges"][0]["node"]
    assert (failed["status"], failed["attempts"], failed["sentAt"]) == ("DELIVERY_FAILED", 1, None)
    assert failed["lastError"]
    # Unsent, the body keeps its link for retryNotification.
    assert link_token in (await Notification.get(customer_id=pk(customer["id"]))).body


async def test_an_invitation_expires_after_its_valid_days(gql, admin, outbox):
    _, token = admin
    with clock.freeze(NOW):
        template = await create_template(gql, token, validDays=3)
        customer = await new_customer(gql, token)
        invitation = await send(gql, token, template["id"], customer["id"])
        link_token = await token_of(invitation["id"])
        clock.travel(timedelta(days=3) - timedelta(seconds=1))
        assert (await gql(INVITATIONS, {"status": ["EXPIRED"]}, token=token))["surveyInvitations"]["totalCount"] == 0
        pending = await gql(INVITATIONS, {"status": ["PENDING"]}, token=token)
        assert pending["surveyInvitations"]["edges"][0]["node"]["status"] == "PENDING"
        clock.travel(timedelta(seconds=1))
        expired = (await gql(INVITATIONS, {"status": ["EXPIRED"]}, token=token))["surveyInvitations"]
        assert expired["totalCount"] == 1 and expired["edges"][0]["node"]["status"] == "EXPIRED"
        assert (await gql(INVITATIONS, {"status": ["PENDING", "SENT"]}, token=token))["surveyInvitations"][
            "totalCount"
        ] == 0
        refused = await submit(gql, link_token, [{"questionKey": "nps", "number": 9}])
        assert refused["accepted"] is False
        assert [(e["field"], e["code"]) for e in refused["errors"]] == [(["token"], "INVALID")]
        assert "过期" in refused["errors"][0]["message"] and "expired" in refused["errors"][0]["message"]


@pytest.mark.parametrize(
    ("case", "channel", "expected_channel", "reason"),
    [
        ("consent revoked", None, "EMAIL", "SURVEY consent is revoked"),
        ("consent revoked for the channel", "EMAIL", "EMAIL", "SURVEY consent is revoked for EMAIL"),
        ("closed", None, "EMAIL", "The customer is CLOSED"),
        ("erased", None, "EMAIL", "The customer is ERASED"),
        ("no address at all", None, "EMAIL", "No e-mail address or mobile number"),
        ("no phone for SMS", "SMS", "SMS", "No mobile number on file for SMS"),
        ("no email for EMAIL", "EMAIL", "EMAIL", "No e-mail address on file for EMAIL"),
    ],
)
async def test_each_suppression_rule(gql, admin, outbox, case, channel, expected_channel, reason):
    _, token = admin
    template = await create_template(gql, token)
    fields = {}
    if case == "no address at all":
        fields = {"phone": None, "email": None}
    elif case == "no phone for SMS":
        fields = {"phone": None}
    elif case == "no email for EMAIL":
        fields = {"email": None}
    customer = await new_customer(gql, token, **fields)
    if case == "consent revoked":
        await _revoke(gql, token, customer["id"])
    elif case == "consent revoked for the channel":
        await _revoke(gql, token, customer["id"], "EMAIL")
    elif case == "closed":
        await Customer.filter(id=pk(customer["id"])).update(status=CustomerStatus.CLOSED)
    elif case == "erased":
        await erase(COMMAND_LINE, pk(customer["id"]), "PIPL art. 47 request")
    invitation = await send(gql, token, template["id"], customer["id"], **({"channel": channel} if channel else {}))
    assert invitation["status"] == "SUPPRESSED"
    assert invitation["channel"] == expected_channel
    assert invitation["suppressedReason"].startswith(reason), invitation["suppressedReason"]
    row = await SurveyInvitation.get(id=pk(invitation["id"]))
    assert row.token_hash is None and row.notification_id is None
    assert await Notification.all().count() == 0 and outbox == []


async def test_a_revoked_channel_falls_back_to_one_with_consent(gql, admin, outbox):
    _, token = admin
    template = await create_template(gql, token)
    customer = await new_customer(gql, token)
    await _revoke(gql, token, customer["id"], "EMAIL")
    invitation = await send(gql, token, template["id"], customer["id"])
    assert (invitation["status"], invitation["channel"]) == ("PENDING", "SMS")


@pytest.mark.parametrize(
    ("fields", "requested", "expected"),
    [
        ({"preferredChannel": "SMS"}, None, "SMS"),
        ({"preferredChannel": "EMAIL"}, None, "EMAIL"),
        ({"preferredChannel": "WECHAT"}, None, "EMAIL"),  # a channel without links: e-mail first
        ({"preferredChannel": "BRANCH", "email": None}, None, "SMS"),
        ({"preferredChannel": "SMS", "phone": None}, None, "EMAIL"),  # preferred, but no number
        ({}, None, "EMAIL"),
        ({"preferredChannel": "EMAIL"}, "SMS", "SMS"),  # the request wins
    ],
)
async def test_the_channel_is_chosen(gql, admin, outbox, fields, requested, expected):
    _, token = admin
    template = await create_template(gql, token)
    customer = await new_customer(gql, token, **fields)
    invitation = await send(gql, token, template["id"], customer["id"], **({"channel": requested} if requested else {}))
    assert (invitation["status"], invitation["channel"]) == ("PENDING", expected)
    notification = await Notification.get()
    assert notification.channel.value == expected
    assert notification.recipient == ("Zhang.Wei@example.com" if expected == "EMAIL" else "13812345678")


async def test_a_channel_without_links_and_an_inactive_template_send_nothing(gql, admin, outbox):
    _, token = admin
    template = await create_template(gql, token)
    customer = await new_customer(gql, token)
    wechat = await send_raw(gql, token, template["id"], customer["id"], channel="WECHAT")
    assert [(e["field"], e["code"]) for e in wechat["errors"]] == [(["channel"], "INVALID")]
    await SurveyTemplate.filter(id=pk(template["id"])).update(active=False)
    inactive = await send_raw(gql, token, template["id"], customer["id"])
    assert [(e["field"], e["code"]) for e in inactive["errors"]] == [(["templateId"], "INVALID")]
    assert await SurveyInvitation.all().count() == 0 and await Notification.all().count() == 0


async def test_one_survey_per_30_days_and_suppressed_ones_do_not_count(gql, admin, outbox):
    _, token = admin
    with clock.freeze(NOW):
        template = await create_template(gql, token)
        customer = await new_customer(gql, token)
        await _revoke(gql, token, customer["id"])
        assert (await send(gql, token, template["id"], customer["id"]))["status"] == "SUPPRESSED"
        await gql(
            SET_CONSENTS,
            {"input": {"customerId": customer["id"], "consents": [{"purpose": "SURVEY", "granted": True}]}},
            token=token,
        )
        first = await send(gql, token, template["id"], customer["id"])
        assert first["status"] == "PENDING"  # the suppressed one did not count
        clock.travel(timedelta(days=30) - timedelta(seconds=1))
        again = await send(gql, token, template["id"], customer["id"])
        assert again["status"] == "SUPPRESSED"
        assert again["suppressedReason"] == "Got another survey on 2026-03-02 (one per 30 days)"
        clock.travel(timedelta(seconds=1))
        assert (await send(gql, token, template["id"], customer["id"]))["status"] == "PENDING"
    assert await Notification.all().count() == 2


async def test_complaint_surveys_are_exempt_from_the_30_day_rule_both_ways(gql, admin, outbox):
    _, token = admin
    nps = await create_template(gql, token)
    await _csat(gql, token)
    customer = await new_customer(gql, token)
    assert (await send(gql, token, nps["id"], customer["id"]))["status"] == "PENDING"
    closed = await close_complaint(gql, token, customer["id"])
    survey = (await gql(COMPLAINT_SURVEY, {"id": closed["id"]}, token=token))["complaint"]["surveyInvitation"]
    assert survey["status"] == "PENDING" and survey["template"]["name"] == "投诉满意度"  # not suppressed by the NPS

    other = await new_customer(gql, token)
    await close_complaint(gql, token, other["id"])
    assert await SurveyInvitation.filter(customer_id=pk(other["id"])).count() == 1
    # ... and a complaint survey does not count against the next survey.
    assert (await send(gql, token, nps["id"], other["id"]))["status"] == "PENDING"


async def test_a_complaint_gets_its_survey_once_ever(gql, admin, outbox):
    _, token = admin
    await _csat(gql, token)
    customer = await new_customer(gql, token)
    closed = await close_complaint(gql, token, customer["id"])
    survey = (await gql(COMPLAINT_SURVEY, {"id": closed["id"]}, token=token))["complaint"]["surveyInvitation"]
    assert survey["complaint"]["id"] == closed["id"] and survey["status"] == "PENDING"
    notification = await Notification.get(complaint_id=pk(closed["id"]))
    assert closed["referenceNo"] in notification.body
    assert (await Complaint.get(id=pk(closed["id"]))).survey_sent is True

    await reopen_and_close(gql, token, closed["id"])
    assert await SurveyInvitation.all().count() == 1
    assert await Notification.all().count() == 1
    by_hand = await send_raw(gql, token, survey["template"]["id"], customer["id"], complaintId=closed["id"])
    assert [(e["field"], e["code"]) for e in by_hand["errors"]] == [(["complaintId"], "DUPLICATE")]


async def test_closing_without_an_active_complaint_template_sends_nothing(gql, admin, outbox):
    _, token = admin
    customer = await new_customer(gql, token)
    await close_complaint(gql, token, customer["id"])  # no template at all
    retired = await _csat(gql, token)
    await SurveyTemplate.filter(id=pk(retired["id"])).update(active=False)
    closed = await close_complaint(gql, token, customer["id"])  # only an inactive one
    assert await SurveyInvitation.all().count() == 0
    assert (await Complaint.get(id=pk(closed["id"]))).survey_sent is False
    await create_template(gql, token, name="另一个", kind="NPS")  # MANUAL: not sent on closing either
    await close_complaint(gql, token, customer["id"])
    assert await SurveyInvitation.all().count() == 0


async def test_a_complaint_survey_by_hand_counts_as_the_complaints_survey(gql, admin, outbox):
    _, token = admin
    csat = await _csat(gql, token, trigger="MANUAL")
    customer = await new_customer(gql, token)
    other = await new_customer(gql, token)
    closed = await close_complaint(gql, token, customer["id"])
    wrong = await send_raw(gql, token, csat["id"], other["id"], complaintId=closed["id"])
    assert [(e["field"], e["code"]) for e in wrong["errors"]] == [(["complaintId"], "INVALID")]
    invitation = await send(gql, token, csat["id"], customer["id"], complaintId=closed["id"])
    assert invitation["complaint"]["id"] == closed["id"]
    await SurveyTemplate.filter(id=pk(csat["id"])).update(trigger="COMPLAINT_CLOSED")
    await reopen_and_close(gql, token, closed["id"])
    assert await SurveyInvitation.all().count() == 1


async def test_the_customer_must_be_visible_to_the_sender(gql, admin, staff_factory, outbox):
    _, token = admin
    template = await create_template(gql, token)
    here = await new_customer(gql, token, branch="北京朝阳支行")
    there = await new_customer(gql, token, branch="上海浦东支行")
    _, rm = await staff_factory(Role.RELATIONSHIP_MANAGER, branch="北京朝阳支行")
    hidden = await send_raw(gql, rm, template["id"], there["id"])
    assert [(e["field"], e["code"]) for e in hidden["errors"]] == [(["customerId"], "NOT_FOUND")]
    assert (await send(gql, rm, template["id"], here["id"]))["status"] == "PENDING"


@pytest.mark.parametrize("role", sorted(Role, key=lambda r: r.value))
async def test_who_may_send_and_list_invitations(gql, admin, staff_factory, outbox, role):
    _, token = admin
    template = await create_template(gql, token)
    customer = await new_customer(gql, token)
    _, caller = await staff_factory(role)
    result = await send_raw(gql, caller, template["id"], customer["id"])
    if role in (Role.COMPLAINT_HANDLER, Role.AUDITOR):
        assert [e["code"] for e in result["errors"]] == ["FORBIDDEN"]
    else:
        assert result["errors"] == [] and result["invitation"]["status"] == "PENDING"
    body = (await gql.raw(INVITATIONS, token=caller)).json()
    if role == Role.COMPLAINT_HANDLER:
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    else:
        assert body["data"]["surveyInvitations"]["totalCount"] == (0 if result["errors"] else 1)


async def test_invitations_are_scoped_to_the_callers_branch_and_filtered(gql, admin, staff_factory, outbox):
    _, token = admin
    nps = await create_template(gql, token)
    other_template = await create_template(gql, token, name="另一个调查")
    here = await new_customer(gql, token, branch="北京朝阳支行")
    there = await new_customer(gql, token, branch="上海浦东支行")
    mine = await send(gql, token, nps["id"], here["id"])
    theirs = await send(gql, token, other_template["id"], there["id"])
    _, rm = await staff_factory(Role.SERVICE_AGENT, branch="北京朝阳支行")
    seen = (await gql(INVITATIONS, token=rm))["surveyInvitations"]
    assert seen["totalCount"] == 1 and [e["node"]["id"] for e in seen["edges"]] == [mine["id"]]
    node = await gql("query($id: ID!) { node(id: $id) { id } }", {"id": theirs["id"]}, token=rm)
    assert node["node"] is None  # hidden, not forbidden
    by_template = (await gql(INVITATIONS, {"templateId": other_template["id"]}, token=token))["surveyInvitations"]
    assert [e["node"]["id"] for e in by_template["edges"]] == [theirs["id"]]
    assert (await gql(INVITATIONS, {"status": ["SUPPRESSED"]}, token=token))["surveyInvitations"]["totalCount"] == 0


async def test_a_list_of_invitations_costs_a_constant_number_of_queries(gql, admin, outbox):
    _, token = admin
    nps = await create_template(gql, token)
    await _csat(gql, token)

    async def answered(invitation_id: int, answers: list[dict]) -> None:
        await surveys.submit(await token_of(invitation_id), answers, ip=None)  # no per-address limit

    for i in range(13):
        customer = await new_customer(gql, token, branch=f"支行{i % 3}")
        invitation = await send(gql, token, nps["id"], customer["id"])
        if i % 2:
            await answered(pk(invitation["id"]), [{"questionKey": "nps", "number": i % 11}])
        if i % 3 == 0:  # the last round leaves a complaint's survey among the newest invitations
            closed = await close_complaint(gql, token, customer["id"])
            survey = await SurveyInvitation.get(complaint_id=pk(closed["id"]))
            csat = [{"questionKey": "satisfaction", "number": 2}, {"questionKey": "speed", "number": 5},
                    {"questionKey": "resolved", "choices": ["未解决"]}]  # fmt: skip
            await answered(survey.id, csat)

    async def statements(n: int) -> int:
        with QueryCounter() as counter:
            result = await gql(INVITATIONS, {"first": n}, token=token)
        assert len(result["surveyInvitations"]["edges"]) == n
        return counter.count

    small, large = await statements(2), await statements(18)
    assert small == large, (small, large)
    # authentication + page + count + one batched load each of template, customer, complaint and response
    assert large <= 8, large


async def test_the_set_based_plan_costs_a_constant_number_of_queries(gql, admin, outbox):
    _, token = admin
    template = await SurveyTemplate.get(id=pk((await create_template(gql, token))["id"]))
    ids = [pk((await new_customer(gql, token))["id"]) for _ in range(6)]
    await _revoke(gql, token, gid("Customer", ids[0]))
    await surveys.invite(template, await Customer.get(id=ids[1]))
    await Customer.filter(id=ids[2]).update(status=CustomerStatus.CLOSED)
    await Customer.filter(id=ids[3]).update(email=None, phone=None)

    async def reasons(count: int) -> tuple[dict, int]:
        chosen = await Customer.filter(id__in=ids[:count])
        with QueryCounter() as counter:
            found = await surveys.suppression_reasons(template, chosen)
        return found, counter.count

    _few, few_statements = await reasons(2)
    many, many_statements = await reasons(6)
    assert few_statements == many_statements <= 3
    assert many[ids[0]].startswith("SURVEY consent is revoked")
    assert many[ids[1]].startswith("Got another survey")
    assert many[ids[2]] == "The customer is CLOSED"
    assert many[ids[3]].startswith("No e-mail address or mobile number")
    assert many[ids[4]] is None and many[ids[5]] is None


async def test_a_campaign_batch_delivered_twice_invites_nobody_twice(gql, admin, outbox):
    from models.jobs import Job

    member, token = admin
    template = await SurveyTemplate.get(id=pk((await create_template(gql, token))["id"]))
    customers = [await Customer.get(id=pk((await new_customer(gql, token))["id"])) for _ in range(3)]
    job = await Job.create(kind="SURVEY_CAMPAIGN", params={}, created_by=member)
    first = await surveys.invite_many(template, customers[:2], campaign_id=job.id)
    again = await surveys.invite_many(template, customers, campaign_id=job.id)
    assert [i.customer_id for i in first] == [c.id for c in customers[:2]]
    assert [i.customer_id for i in again] == [customers[2].id]
    assert await SurveyInvitation.filter(campaign_id=job.id).count() == 3
    assert await Notification.filter(status=NotificationStatus.QUEUED).count() == 3


async def test_merging_two_records_one_campaign_invited_keeps_both_invitations(gql, admin, outbox):
    from models.jobs import Job
    from services import customer_merge

    member, token = admin
    template = await SurveyTemplate.get(id=pk((await create_template(gql, token))["id"]))
    survivor, duplicate = [await Customer.get(id=pk((await new_customer(gql, token))["id"])) for _ in range(2)]
    job = await Job.create(kind="SURVEY_CAMPAIGN", params={}, created_by=member)
    await surveys.invite_many(template, [survivor, duplicate], campaign_id=job.id)
    _, dry = await customer_merge.merge(COMMAND_LINE, survivor.id, duplicate.id, dry_run=True)
    _, moved = await customer_merge.merge(COMMAND_LINE, survivor.id, duplicate.id, dry_run=False)
    assert dry["surveyInvitations"] == moved["surveyInvitations"] == 1
    rows = await SurveyInvitation.filter(customer_id=survivor.id).order_by("id")
    assert [r.campaign_id for r in rows] == [job.id, None]  # the campaign still invited the person once


async def test_the_link_base_comes_from_crm_public_survey_url(gql, admin, outbox, settings):
    _, token = admin
    template = await create_template(gql, token)
    use_settings(Settings.from_env({"CRM_PUBLIC_SURVEY_URL": "https://crm.bank.example/survey"}))
    try:
        invitation = await send(gql, token, template["id"], (await new_customer(gql, token))["id"])
    finally:
        use_settings(settings)  # as the app's lifespan left them
    body = (await Notification.get(id=(await SurveyInvitation.get(id=pk(invitation["id"]))).notification_id)).body
    assert f"https://crm.bank.example/survey/{await token_of(invitation['id'])}" in body
    assert (
        Settings.from_env({"CRM_PUBLIC_SURVEY_URL": "https://x.example/s/"}).of(surveys.SurveySettings).link("abc")
        == "https://x.example/s/abc"
    )
    with pytest.raises(SettingsError, match="CRM_PUBLIC_SURVEY_URL"):
        Settings.from_env({"CRM_PUBLIC_SURVEY_URL": "javascript:alert(1)"})
