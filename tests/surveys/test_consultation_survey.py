"""The post-consultation survey: a consultation (INQUIRY) resolved, or logged resolved, sends the newest active
INTERACTION_RESOLVED template to its customer, under the rules of every survey."""

from __future__ import annotations

from models.notifications import Notification
from models.surveys import InvitationStatus, SurveyInvitation, SurveyTemplate
from services import surveys
from services.errors import DomainError, ErrorCode
from tests.complaints.helpers import new_customer
from tests.surveys.helpers import create_template, pk

LOG = """mutation($input: LogInteractionInput!) { logInteraction(input: $input) {
  interaction { id status } errors { field code } } }"""
RESOLVE = """mutation($input: ResolveInteractionInput!) { resolveInteraction(input: $input) {
  interaction { id status } errors { field code } } }"""


async def _log(gql, token, customer_id: str, **fields) -> dict:
    entry = {"customerId": customer_id, "channel": "PHONE", "direction": "INBOUND", "kind": "INQUIRY"}
    result = (await gql(LOG, {"input": {**entry, "subject": "理财产品咨询", **fields}}, token=token))["logInteraction"]
    assert result["errors"] == [], result["errors"]
    return result["interaction"]


async def _resolve(gql, token, interaction_id: str) -> dict:
    data = {"input": {"id": interaction_id, "outcome": "已解答"}}
    result = (await gql(RESOLVE, data, token=token))["resolveInteraction"]
    assert result["errors"] == [], result["errors"]
    return result["interaction"]


async def _consultation_template(gql, token, **overrides) -> dict:
    return await create_template(gql, token, name="咨询满意度", trigger="INTERACTION_RESOLVED", **overrides)


async def test_resolving_a_consultation_invites_its_customer(gql, admin, outbox):
    _, token = admin
    template = await _consultation_template(gql, token)
    customer = await new_customer(gql, token)
    consultation = await _log(gql, token, customer["id"])
    assert await SurveyInvitation.all().count() == 0  # open: nothing yet

    await _resolve(gql, token, consultation["id"])

    [invitation] = await SurveyInvitation.all()
    assert (invitation.customer_id, invitation.template_id) == (pk(customer["id"]), pk(template["id"]))
    assert invitation.status == InvitationStatus.PENDING and invitation.complaint_id is None
    assert await Notification.filter(id=invitation.notification_id).exists()


async def test_a_consultation_logged_resolved_invites_too_and_other_kinds_do_not(gql, admin, outbox):
    _, token = admin
    await _consultation_template(gql, token)
    customer, other = await new_customer(gql, token), await new_customer(gql, token)
    await _log(gql, token, customer["id"], outcome="已当场解答")
    await _log(gql, token, other["id"], kind="ADVICE", outcome="已告知")

    assert [i.customer_id for i in await SurveyInvitation.all()] == [pk(customer["id"])]


async def test_the_thirty_day_rule_keeps_a_frequent_caller_to_one_survey(gql, admin, outbox):
    _, token = admin
    await _consultation_template(gql, token)
    customer = await new_customer(gql, token)
    for _ in range(2):
        await _resolve(gql, token, (await _log(gql, token, customer["id"]))["id"])

    statuses = [i.status for i in await SurveyInvitation.all().order_by("id")]
    assert statuses == [InvitationStatus.PENDING, InvitationStatus.SUPPRESSED]


async def test_without_an_active_consultation_template_nothing_is_sent(gql, admin, outbox):
    _, token = admin
    retired = await _consultation_template(gql, token)
    await SurveyTemplate.filter(id=pk(retired["id"])).update(active=False)
    await create_template(gql, token, name="手动调查")  # MANUAL: never sent by an event
    customer = await new_customer(gql, token)

    await _resolve(gql, token, (await _log(gql, token, customer["id"]))["id"])

    assert await SurveyInvitation.all().count() == 0 and outbox == []


async def test_a_survey_that_cannot_go_out_never_stops_the_resolving(gql, admin, outbox, monkeypatch):
    _, token = admin
    await _consultation_template(gql, token)
    customer = await new_customer(gql, token)
    consultation = await _log(gql, token, customer["id"])

    async def refuses(*args, **kwargs):
        raise DomainError(ErrorCode.INVALID, "the template was retired meanwhile", "templateId")

    monkeypatch.setattr(surveys, "invite", refuses)
    resolved = await _resolve(gql, token, consultation["id"])

    assert resolved["status"] == "RESOLVED" and await SurveyInvitation.all().count() == 0
