"""The customer's side: surveyByToken and submitSurveyResponse (public, rate-limited), every answer rule, one
answer per link (also when two arrive at once), the scores, the recovery follow-up, the timeline,
Customer.surveyResponses and erasure."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from core.settings import active as active_settings
from models.customers import Customer, CustomerKind, CustomerStatus, Gender
from models.follow_ups import FollowUp
from models.staff import Department, Role
from models.surveys import InvitationStatus, SurveyInvitation, SurveyResponse
from services import clock, limits, surveys
from services.access import COMMAND_LINE
from services.customer_erasure import erase
from tests.complaints.helpers import new_customer
from tests.customers.helpers import create
from tests.surveys.helpers import (
    CSAT_QUESTIONS,
    RESPONSE_FIELDS,
    close_complaint,
    create_template,
    gid,
    pk,
    public,
    send,
    submit,
    token_of,
)

NOW = datetime(2026, 3, 2, 1, 1, tzinfo=UTC)  # a minute into a rate-limit window
RESPONSES = f"""query($id: ID!) {{ customer(id: $id) {{ surveyResponses(first: 10) {{ totalCount
  edges {{ node {{ {RESPONSE_FIELDS} }} }} }} }} }}"""
TIMELINE = """query($id: ID!) { customer(id: $id) { timeline(first: 20) {
  edges { node { kind title detail subject { __typename id } } } } } }"""
CSAT_OK = [
    {"questionKey": "satisfaction", "number": 4},
    {"questionKey": "speed", "number": 5},
    {"questionKey": "resolved", "choices": ["已解决"]},
]


async def _invited(gql, token, *, csat: bool = False, **customer_fields) -> tuple[dict, dict, str]:
    """(customer, invitation, link token) for a fresh customer."""
    if csat:
        template = await create_template(gql, token, name="投诉满意度", kind="CSAT", questions=CSAT_QUESTIONS)
    else:
        template = await create_template(gql, token)
    if "gender" in customer_fields:  # without an ID number, whose digits would say the gender
        customer = await create(gql, token, idType=None, idNumber=None, **customer_fields)
    else:
        customer = await new_customer(gql, token, **customer_fields)
    invitation = await send(gql, token, template["id"], customer["id"])
    return customer, invitation, await token_of(invitation["id"])


async def _responses(gql, token, customer_id) -> dict:
    return (await gql(RESPONSES, {"id": customer_id}, token=token))["customer"]["surveyResponses"]


async def test_the_link_shows_the_survey_without_signing_in(gql, admin, outbox):
    _, token = admin
    with clock.freeze(NOW):
        _customer, _invitation, link = await _invited(gql, token, name="欧阳娜娜", gender="FEMALE")
        shown = await public(gql, link)
        assert shown == {
            "title": "客户推荐度调查",
            "customerDisplayName": "欧阳女士",
            "expiresAt": (NOW + timedelta(days=14)).isoformat(),
            "alreadyAnswered": False,
            "questions": [
                {"key": "nps", "text": "您有多大可能向亲友推荐我行？", "type": "NPS", "required": True, "options": []},
                {"key": "reason", "text": "主要原因是什么？", "type": "TEXT", "required": False, "options": []},
            ],
        }
        assert await public(gql, secrets.token_urlsafe(32)) is None
        assert await public(gql, "not a token") is None
        assert (await submit(gql, link, [{"questionKey": "nps", "number": 9}]))["accepted"] is True
        assert (await public(gql, link))["alreadyAnswered"] is True


async def test_an_expired_link_still_shows_what_it_was(gql, admin, outbox):
    _, token = admin
    with clock.freeze(NOW):
        _, _, link = await _invited(gql, token)
        clock.travel(timedelta(days=15))
        shown = await public(gql, link)
        view = await surveys.public_survey(link, ip=None)
    assert (shown["title"], shown["alreadyAnswered"]) == ("客户推荐度调查", False)
    assert shown["expiresAt"] == (NOW + timedelta(days=14)).isoformat()
    assert (view.expired, view.already_answered) == (True, False)


@pytest.mark.parametrize(
    ("name", "gender", "kind", "expected"),
    [
        ("王小明", Gender.MALE, CustomerKind.INDIVIDUAL, "王先生"),
        ("李娜", Gender.FEMALE, CustomerKind.INDIVIDUAL, "李女士"),
        ("王小明", None, CustomerKind.INDIVIDUAL, "王**"),
        ("诸葛亮", Gender.MALE, CustomerKind.INDIVIDUAL, "诸葛先生"),
        ("Sarah Lee", Gender.FEMALE, CustomerKind.INDIVIDUAL, "S***"),
        ("北京星辰科技有限公司", None, CustomerKind.CORPORATE, "北京****"),
        ("", None, CustomerKind.INDIVIDUAL, "尊敬的客户"),
    ],
)
def test_the_display_name_is_polite_and_never_the_whole_name(name, gender, kind, expected):
    customer = Customer(name=name, gender=gender, kind=kind, status=CustomerStatus.ACTIVE)
    assert surveys.display_name(customer) == expected
    assert name == "" or surveys.display_name(customer) != name


async def test_an_answer_is_stored_scored_and_shown_everywhere(gql, admin, outbox):
    _, token = admin
    with clock.freeze(NOW):
        customer, invitation, link = await _invited(gql, token)
        await Customer.filter(id=pk(customer["id"])).update(portrait_stale_since=None)
        clock.travel(timedelta(hours=1))
        answers = [{"questionKey": "nps", "number": 7}, {"questionKey": "reason", "text": "  网点排队时间长  "}]
        result = await submit(gql, link, answers, comment=" 总体还行 ")
        assert result == {"accepted": True, "errors": []}
    listed = await _responses(gql, token, customer["id"])
    assert listed["totalCount"] == 1
    response = listed["edges"][0]["node"]
    assert (response["npsScore"], response["npsCategory"], response["csatScore"]) == (7, "PASSIVE", None)
    assert response["comment"] == "总体还行" and response["followUp"] is None
    assert response["answers"] == [
        {"questionKey": "nps", "number": 7.0, "text": None, "choices": None},
        {"questionKey": "reason", "number": None, "text": "网点排队时间长", "choices": None},
    ]
    assert response["submittedAt"] == (NOW + timedelta(hours=1)).isoformat()
    assert response["invitation"] == {"id": invitation["id"], "status": "RESPONDED"}
    row = await SurveyInvitation.get(id=pk(invitation["id"]))
    assert row.status == InvitationStatus.RESPONDED and row.responded_at == NOW + timedelta(hours=1)
    assert (await Customer.get(id=pk(customer["id"]))).portrait_stale_since is not None
    items = (await gql(TIMELINE, {"id": customer["id"]}, token=token))["customer"]["timeline"]["edges"]
    kinds = {i["node"]["kind"]: i["node"] for i in items}
    assert kinds["SURVEY_RESPONSE"]["subject"] == {"__typename": "SurveyResponse", "id": response["id"]}
    assert kinds["SURVEY_RESPONSE"]["title"] == "Survey answered: NPS 7 (PASSIVE)"
    assert kinds["SURVEY_RESPONSE"]["detail"] == "总体还行"
    assert kinds["SURVEY_INVITATION"]["subject"] == {"__typename": "SurveyInvitation", "id": invitation["id"]}
    assert kinds["SURVEY_INVITATION"]["detail"] == "RESPONDED"


@pytest.mark.parametrize(
    ("score", "category"),
    [(0, "DETRACTOR"), (6, "DETRACTOR"), (7, "PASSIVE"), (8, "PASSIVE"), (9, "PROMOTER"), (10, "PROMOTER")],
)
async def test_nps_categories(gql, admin, outbox, score, category):
    _, token = admin
    customer, _, link = await _invited(gql, token)
    assert (await submit(gql, link, [{"questionKey": "nps", "number": score}]))["accepted"] is True
    response = (await _responses(gql, token, customer["id"]))["edges"][0]["node"]
    assert (response["npsScore"], response["npsCategory"]) == (score, category)
    assert (response["followUp"] is not None) == (score <= 6)


async def test_csat_is_the_mean_of_the_ratings(gql, admin, outbox):
    _, token = admin
    customer, _, link = await _invited(gql, token, csat=True)
    answers = [*CSAT_OK, {"questionKey": "topics", "choices": ["速度", "态度"]}]
    assert (await submit(gql, link, answers))["accepted"] is True
    response = (await _responses(gql, token, customer["id"]))["edges"][0]["node"]
    assert (response["csatScore"], response["npsScore"], response["npsCategory"]) == (4.5, None, None)
    assert response["followUp"] is None
    assert response["answers"][3] == {
        "questionKey": "topics",
        "number": None,
        "text": None,
        "choices": ["速度", "态度"],
    }


async def test_a_detractor_gets_a_recovery_call_from_their_relationship_manager(gql, admin, staff_factory, outbox):
    _, token = admin
    manager, _ = await staff_factory(Role.RELATIONSHIP_MANAGER, department=Department.BRANCH, branch="北京朝阳支行")
    with clock.freeze(NOW):
        customer, _invitation, link = await _invited(gql, token, relationshipManagerId=gid("Staff", manager.id))
        assert (await submit(gql, link, [{"questionKey": "nps", "number": 3}]))["accepted"] is True
    follow_up = (await _responses(gql, token, customer["id"]))["edges"][0]["node"]["followUp"]
    assert follow_up["assignee"] == {"username": manager.username}
    assert (follow_up["department"], follow_up["priority"]) == ("BRANCH", "HIGH")
    assert follow_up["dueAt"] == (NOW + timedelta(days=2)).isoformat()
    assert follow_up["complaint"] is None
    row = await FollowUp.get(id=pk(follow_up["id"]))
    assert row.customer_id == pk(customer["id"]) and "NPS 3" in row.description


async def test_a_low_rating_without_a_manager_goes_to_the_call_centre(gql, admin, outbox):
    _, token = admin
    with clock.freeze(NOW):
        customer, _, link = await _invited(gql, token, csat=True)
        answers = [{**CSAT_OK[0], "number": 2}, *CSAT_OK[1:]]
        assert (await submit(gql, link, answers))["accepted"] is True
    response = (await _responses(gql, token, customer["id"]))["edges"][0]["node"]
    assert response["csatScore"] == 3.5
    follow_up = response["followUp"]
    assert (follow_up["assignee"], follow_up["department"]) == (None, "CALL_CENTER")
    assert follow_up["dueAt"] == (NOW + timedelta(days=2)).isoformat()
    assert await FollowUp.all().count() == 1


async def test_a_complaint_surveys_recovery_call_is_linked_to_the_complaint(gql, admin, outbox):
    _, token = admin
    await create_template(
        gql, token, name="投诉满意度", kind="CSAT", trigger="COMPLAINT_CLOSED", questions=CSAT_QUESTIONS
    )
    customer = await new_customer(gql, token)
    closed = await close_complaint(gql, token, customer["id"])
    link = await token_of((await SurveyInvitation.get(complaint_id=pk(closed["id"]))).id)
    answers = [{**CSAT_OK[0], "number": 1}, *CSAT_OK[1:]]
    assert (await submit(gql, link, answers))["accepted"] is True
    follow_up = (await _responses(gql, token, customer["id"]))["edges"][0]["node"]["followUp"]
    assert follow_up["complaint"] == {"id": closed["id"]}


async def test_a_link_answers_once(gql, admin, outbox):
    _, token = admin
    _customer, _, link = await _invited(gql, token)
    assert (await submit(gql, link, [{"questionKey": "nps", "number": 9}]))["accepted"] is True
    again = await submit(gql, link, [{"questionKey": "nps", "number": 2}])
    assert again["accepted"] is False
    assert [(e["field"], e["code"]) for e in again["errors"]] == [(["token"], "DUPLICATE")]
    assert "已提交" in again["errors"][0]["message"] and "answered already" in again["errors"][0]["message"]
    assert await SurveyResponse.all().count() == 1
    assert (await SurveyResponse.get()).nps_score == 9


async def test_two_submissions_at_once_make_one_response(gql, admin, outbox):
    _, token = admin
    _, _, link = await _invited(gql, token)
    results = await asyncio.gather(
        submit(gql, link, [{"questionKey": "nps", "number": 10}]),
        submit(gql, link, [{"questionKey": "nps", "number": 1}]),
    )
    assert sorted(r["accepted"] for r in results) == [False, True]
    refused = next(r for r in results if not r["accepted"])
    assert [e["code"] for e in refused["errors"]] == ["DUPLICATE"]
    assert await SurveyResponse.all().count() == 1
    assert await FollowUp.all().count() == (1 if (await SurveyResponse.get()).nps_score == 1 else 0)


async def test_two_submissions_at_once_through_the_service_make_one_response(gql, admin, outbox):
    _, token = admin
    _, _, link = await _invited(gql, token)
    results = await asyncio.gather(
        *[surveys.submit(link, [{"question_key": "nps", "number": n}], ip=None) for n in (4, 8, 10)],
        return_exceptions=True,
    )
    accepted = [r for r in results if isinstance(r, SurveyResponse)]
    refused = [r for r in results if not isinstance(r, SurveyResponse)]
    assert len(accepted) == 1 and len(refused) == 2
    assert all(getattr(r, "code", None) is not None and r.code.value == "DUPLICATE" for r in refused)
    assert await SurveyResponse.all().count() == 1


LEFT_EMPTY = [*CSAT_OK[:2], {"questionKey": "resolved", "choices": []}]
AS_TEXT = [{"questionKey": "satisfaction", "text": "5"}, *CSAT_OK[1:]]
CSAT_RULES = [
    ("a required question left out", CSAT_OK[1:], "satisfaction", "REQUIRED"),
    ("a required choice left empty", LEFT_EMPTY, "resolved", "REQUIRED"),
    ("an unknown question", [*CSAT_OK, {"questionKey": "mood", "text": "好"}], "mood", "INVALID"),
    ("a question answered twice", [*CSAT_OK, CSAT_OK[0]], "satisfaction", "DUPLICATE"),
    ("a rating of 0", [{**CSAT_OK[0], "number": 0}, *CSAT_OK[1:]], "satisfaction", "INVALID"),
    ("a rating of 6", [{**CSAT_OK[0], "number": 6}, *CSAT_OK[1:]], "satisfaction", "INVALID"),
    ("a rating of 4.5", [{**CSAT_OK[0], "number": 4.5}, *CSAT_OK[1:]], "satisfaction", "INVALID"),
    ("a rating given as text", AS_TEXT, "satisfaction", "REQUIRED"),
    ("a choice not offered", [*CSAT_OK[:2], {"questionKey": "resolved", "choices": ["也许"]}], "resolved", "INVALID"),
    ("two single choices", [*CSAT_OK[:2], {"questionKey": "resolved", "choices": ["已解决", "未解决"]}], "resolved",
     "INVALID"),
    ("a multiple choice not offered", [*CSAT_OK, {"questionKey": "topics", "choices": ["速度", "价格"]}], "topics",
     "INVALID"),
    ("a multiple choice twice", [*CSAT_OK, {"questionKey": "topics", "choices": ["速度", "速度"]}], "topics",
     "INVALID"),
    ("a text too long", [*CSAT_OK, {"questionKey": "suggestion", "text": "长" * 2001}], "suggestion", "INVALID"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "answers", "key", "code"), CSAT_RULES, ids=[r[0] for r in CSAT_RULES])
async def test_each_answer_rule(gql, admin, outbox, case, answers, key, code):
    _, token = admin
    _customer, invitation, link = await _invited(gql, token, csat=True)
    refused = await submit(gql, link, answers)
    assert refused["accepted"] is False
    assert [(e["field"], e["code"]) for e in refused["errors"]] == [(["answers", key], code)]
    assert await SurveyResponse.all().count() == 0
    assert (await SurveyInvitation.get(id=pk(invitation["id"]))).status == InvitationStatus.PENDING
    # A refused answer does not use the link up.
    assert (await submit(gql, link, CSAT_OK))["accepted"] is True


@pytest.mark.parametrize(
    ("number", "ok"), [(0, True), (10, True), (-1, False), (11, False), (9.5, False), (None, False)]
)
async def test_nps_answers_are_whole_numbers_from_0_to_10(gql, admin, outbox, number, ok):
    _, token = admin
    _, _, link = await _invited(gql, token)
    result = await submit(gql, link, [{"questionKey": "nps", "number": number}])
    assert result["accepted"] is ok
    if not ok:
        assert [e["field"] for e in result["errors"]] == [["answers", "nps"]]
        assert ("0" in result["errors"][0]["message"] and "10" in result["errors"][0]["message"]) or number is None


async def test_the_comment_and_every_problem_at_once(gql, admin, outbox):
    _, token = admin
    _, _, link = await _invited(gql, token, csat=True)
    result = await submit(gql, link, [{"questionKey": "speed", "number": 9}], comment="好" * 2001)
    assert sorted((tuple(e["field"]), e["code"]) for e in result["errors"]) == [
        (("answers", "resolved"), "REQUIRED"),
        (("answers", "satisfaction"), "REQUIRED"),
        (("answers", "speed"), "INVALID"),
        (("comment",), "INVALID"),
    ]
    assert all(" / " in e["message"] for e in result["errors"])  # Chinese for the page, English for the API


async def test_an_unknown_link_is_not_found(gql, app):
    result = await submit(gql, secrets.token_urlsafe(32), [{"questionKey": "nps", "number": 9}])
    assert [(e["field"], e["code"]) for e in result["errors"]] == [(["token"], "NOT_FOUND")]
    assert [e["code"] for e in (await submit(gql, "x", []))["errors"]] == ["NOT_FOUND"]


def _burst(rule: limits.Rule) -> int:
    return rule.sizes(active_settings())[0]


async def test_reading_links_is_rate_limited_per_address(gql, app):
    with clock.freeze(NOW):
        for _ in range(_burst(limits.SURVEY_READ_IP)):
            assert await public(gql, secrets.token_urlsafe(32)) is None
        errors = await gql.errors(
            "query($t: String!) { surveyByToken(token: $t) { title } }", {"t": secrets.token_urlsafe(32)}
        )
        assert errors[0]["extensions"]["code"] == "LIMIT_EXCEEDED"
        clock.travel(timedelta(hours=1))  # a bucket refills within the hour
        assert await public(gql, secrets.token_urlsafe(32)) is None


async def test_submissions_are_rate_limited_per_link(gql, admin, outbox):
    _, token = admin
    with clock.freeze(NOW):
        _, _, link = await _invited(gql, token)
        for _ in range(_burst(limits.SURVEY_SUBMIT_TOKEN)):
            assert [e["code"] for e in (await submit(gql, link, []))["errors"]] == ["REQUIRED"]
        limited = await submit(gql, link, [{"questionKey": "nps", "number": 9}])
        assert [(e["code"]) for e in limited["errors"]] == ["LIMIT_EXCEEDED"]
        assert await SurveyResponse.all().count() == 0
        clock.travel(timedelta(hours=1))
        assert (await submit(gql, link, [{"questionKey": "nps", "number": 9}]))["accepted"] is True


async def test_submissions_are_rate_limited_per_address(gql, admin, outbox):
    _, token = admin
    with clock.freeze(NOW):
        _, _, link = await _invited(gql, token)
        for _ in range(_burst(limits.SURVEY_SUBMIT_IP)):
            result = await submit(gql, secrets.token_urlsafe(32), [{"questionKey": "nps", "number": 9}])
            assert [e["code"] for e in result["errors"]] == ["NOT_FOUND"]
        limited = await submit(gql, link, [{"questionKey": "nps", "number": 9}])
        assert [e["code"] for e in limited["errors"]] == ["LIMIT_EXCEEDED"]
        # Another address is counted apart (the service takes the address from its caller).
        response = await surveys.submit(link, [{"question_key": "nps", "number": 9}], ip="198.51.100.1")
        assert response.nps_score == 9


async def test_survey_responses_are_for_survey_readers(gql, admin, staff_factory, outbox):
    _, token = admin
    customer, _, link = await _invited(gql, token)
    await submit(gql, link, [{"questionKey": "nps", "number": 9}])
    response_id = gid("SurveyResponse", (await SurveyResponse.get()).id)
    _, auditor = await staff_factory(Role.AUDITOR)
    assert (await _responses(gql, auditor, customer["id"]))["totalCount"] == 1
    _, handler = await staff_factory(Role.COMPLAINT_HANDLER)
    body = (await gql.raw(RESPONSES, {"id": customer["id"]}, token=handler)).json()
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    node = await gql("query($id: ID!) { node(id: $id) { id } }", {"id": response_id}, token=handler)
    assert node["node"] is None
    _, other_branch = await staff_factory(Role.RELATIONSHIP_MANAGER, branch="上海浦东支行")
    node = await gql("query($id: ID!) { node(id: $id) { id } }", {"id": response_id}, token=other_branch)
    assert node["node"] is None


async def test_erasure_removes_what_the_customer_wrote_and_the_link(gql, admin, outbox):
    _, token = admin
    customer, _, link = await _invited(gql, token)
    answers = [{"questionKey": "nps", "number": 4}, {"questionKey": "reason", "text": "柜员态度差"}]
    assert (await submit(gql, link, answers, comment="请联系我 13900001111"))["accepted"] is True
    await erase(COMMAND_LINE, pk(customer["id"]), "PIPL art. 47 request")
    response = await SurveyResponse.get()
    assert response.comment is None
    assert [a["text"] for a in response.answers] == [None, None]
    assert (response.nps_score, response.answers[0]["number"]) == (4, 4)  # the statistics stay
    assert await public(gql, link) is None
    assert (await SurveyInvitation.get()).token_hash is None
