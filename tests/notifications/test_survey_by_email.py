"""A survey's whole way through real SMTP: sent by the worker, the e-mail arrives with its link, the customer
opens it, a wrong answer is refused, the answer is taken once, and an expired link is refused."""

from __future__ import annotations

from datetime import timedelta

from services import clock
from tests.complaints.helpers import new_customer
from tests.surveys.helpers import INVITATIONS, create_template, link_in, public, send, submit


async def test_a_survey_by_email_from_sending_to_answering(gql, admin, smtp, settle):
    _, token = admin
    template = await create_template(gql, token)
    customer = await new_customer(gql, token, email="li.na@example.com", preferredChannel="EMAIL")
    invitation = await send(gql, token, template["id"], customer["id"])
    assert invitation["channel"] == "EMAIL" and invitation["status"] == "PENDING"

    await settle()
    [mail] = smtp.messages
    assert mail["To"] == "li.na@example.com" and "客户推荐度调查" in mail["Subject"]
    link = link_in(mail)
    listed = await gql(INVITATIONS, {"first": 5}, token=token)
    assert listed["surveyInvitations"]["edges"][0]["node"]["status"] == "SENT"

    opened = await public(gql, link)
    assert opened["title"] == "客户推荐度调查" and opened["alreadyAnswered"] is False
    assert [q["key"] for q in opened["questions"]] == ["nps", "reason"]

    out_of_range = await submit(gql, link, [{"questionKey": "nps", "number": 11}])
    assert out_of_range["accepted"] is False
    assert [(e["field"], e["code"]) for e in out_of_range["errors"]] == [(["answers", "nps"], "INVALID")]

    taken = await submit(gql, link, [{"questionKey": "nps", "number": 9}, {"questionKey": "reason", "text": "快"}])
    assert taken == {"accepted": True, "errors": []}
    again = await submit(gql, link, [{"questionKey": "nps", "number": 3}])
    assert again["accepted"] is False and again["errors"][0]["code"] == "DUPLICATE"
    assert (await public(gql, link))["alreadyAnswered"] is True


async def test_an_expired_link_from_an_email_is_refused(gql, admin, smtp, settle):
    _, token = admin
    template = await create_template(gql, token, validDays=3)
    customer = await new_customer(gql, token, email="wang.fang@example.com", preferredChannel="EMAIL")
    await send(gql, token, template["id"], customer["id"])
    await settle()
    link = link_in(smtp.messages[0])

    clock.travel(timedelta(days=3, minutes=1))
    refused = await submit(gql, link, [{"questionKey": "nps", "number": 10}])
    assert refused["accepted"] is False
    assert [(e["field"], e["code"]) for e in refused["errors"]] == [(["token"], "INVALID")]
    assert "过期" in refused["errors"][0]["message"]
