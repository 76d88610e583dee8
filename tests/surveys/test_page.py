"""The customer's survey page, GET/POST /s/{token}: plain HTML forms, every state said plainly."""

from __future__ import annotations

from datetime import timedelta

from models.surveys import SurveyResponse
from services import clock
from tests.surveys.helpers import CSAT_QUESTIONS, create_template, send, token_of
from tests.surveys.test_responses import new_customer

PRIVATE_HEADERS = {"referrer-policy": "no-referrer", "cache-control": "no-store"}


async def _link(gql, token, **template) -> str:
    created = await create_template(gql, token, **template)
    customer = await new_customer(gql, token)
    invitation = await send(gql, token, created["id"], customer["id"])
    return await token_of(invitation["id"])


def _private(response) -> None:
    for name, value in PRIVATE_HEADERS.items():
        assert response.headers[name] == value, name


async def test_the_form_shows_every_question_without_scripts(client, gql, admin, outbox):
    link = await _link(gql, admin[1], name="投诉处理满意度", kind="CSAT", questions=CSAT_QUESTIONS)
    page = await client.get(f"/s/{link}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    _private(page)
    html = page.text
    assert '<html lang="zh-CN">' in html and "<script" not in html
    assert "投诉处理满意度" in html and 'action="/s/' in html
    for question in CSAT_QUESTIONS:
        assert question["text"] in html
    assert html.count('name="q_satisfaction"') == 5  # a 1-5 scale
    assert 'type="checkbox" name="q_topics"' in html
    style = await client.get("/s/static/survey.css")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")


async def test_a_good_answer_thanks_the_customer_and_is_stored(client, gql, admin, outbox):
    link = await _link(gql, admin[1])
    posted = await client.post(f"/s/{link}", data={"q_nps": "9", "q_reason": "服务周到", "comment": "谢谢"})
    assert posted.status_code == 303 and posted.headers["location"] == f"/s/{link}/thanks"
    _private(posted)
    thanks = await client.get(f"/s/{link}/thanks")
    assert thanks.status_code == 200 and "感谢您的反馈" in thanks.text
    [response] = await SurveyResponse.all()
    assert response.nps_score == 9 and response.comment == "谢谢"
    again = await client.get(f"/s/{link}")
    assert "您已提交过本问卷" in again.text and "<form" not in again.text


async def test_a_wrong_answer_shows_the_form_again_with_the_problem_and_what_was_typed(client, gql, admin, outbox):
    link = await _link(gql, admin[1])
    posted = await client.post(f"/s/{link}", data={"q_reason": "还行", "comment": "我的意见"})
    assert posted.status_code == 422
    html = posted.text
    assert 'role="alert"' in html and 'aria-describedby="err-nps"' in html
    assert "还行" in html and "我的意见" in html
    assert await SurveyResponse.all().count() == 0
    out_of_range = await client.post(f"/s/{link}", data={"q_nps": "11"})
    assert out_of_range.status_code == 422 and 'id="err-nps"' in out_of_range.text


async def test_a_second_answer_is_refused_plainly(client, gql, admin, outbox):
    link = await _link(gql, admin[1])
    await client.post(f"/s/{link}", data={"q_nps": "10"})
    second = await client.post(f"/s/{link}", data={"q_nps": "0"})
    assert second.status_code == 200 and "您已提交过本问卷" in second.text
    assert [r.nps_score for r in await SurveyResponse.all()] == [10]


async def test_an_expired_link_says_so(client, gql, admin, outbox):
    link = await _link(gql, admin[1])
    clock.travel(timedelta(days=15))
    page = await client.get(f"/s/{link}")
    assert page.status_code == 200 and "问卷已过期" in page.text and "<form" not in page.text
    posted = await client.post(f"/s/{link}", data={"q_nps": "9"})
    assert "问卷已过期" in posted.text
    assert await SurveyResponse.all().count() == 0


async def test_an_unknown_link_is_a_page_not_an_error(client, app):
    page = await client.get("/s/" + "x" * 43)
    assert page.status_code == 404 and "链接无效" in page.text
    _private(page)
    assert (await client.get("/s/%3Cscript%3E")).status_code == 404


async def test_too_many_requests_get_a_page_that_says_wait(client, gql, admin, outbox):
    link = await _link(gql, admin[1])
    statuses = [(await client.get(f"/s/{link}")).status_code for _ in range(40)]
    assert statuses[0] == 200 and statuses[-1] == 429
    assert "请稍后再试" in (await client.get(f"/s/{link}")).text
