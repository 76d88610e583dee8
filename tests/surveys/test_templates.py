"""Survey templates: creation with every validation rule, updates that never touch the questions, the list,
the roles, and the ready-made templates that `crm migrate` ships."""

from __future__ import annotations

from pathlib import Path

import pytest
from tortoise import Tortoise
from tortoise.context import TortoiseContext

from core import db
from models.staff import Role
from models.surveys import SurveyTemplate, SurveyTrigger
from services import surveys
from tests.surveys.helpers import (
    CREATE_TEMPLATE,
    CSAT_QUESTIONS,
    TEMPLATES,
    UPDATE_TEMPLATE,
    create_template,
)


async def _create(gql, token, **data) -> dict:
    payload = {"name": "调查", "kind": "CUSTOM", "questions": [{"key": "q", "text": "问题", "type": "TEXT"}], **data}
    return (await gql(CREATE_TEMPLATE, {"input": payload}, token=token))["createSurveyTemplate"]


def _q(key="q", type_="TEXT", **extra) -> dict:
    return {"key": key, "text": "问题", "type": type_, **extra}


async def test_a_template_is_created_with_its_defaults(gql, admin):
    _, token = admin
    template = await create_template(gql, token)
    assert template["name"] == "客户推荐度调查"
    assert (template["kind"], template["trigger"], template["active"], template["validDays"]) == (
        "NPS",
        "MANUAL",
        True,
        14,
    )
    assert template["questions"] == [
        {"key": "nps", "text": "您有多大可能向亲友推荐我行？", "type": "NPS", "required": True, "options": []},
        {"key": "reason", "text": "主要原因是什么？", "type": "TEXT", "required": False, "options": []},
    ]
    csat = await create_template(
        gql, token, name="  满意度  ", kind="CSAT", trigger="COMPLAINT_CLOSED", questions=CSAT_QUESTIONS, validDays=30
    )
    assert (csat["name"], csat["trigger"], csat["validDays"]) == ("满意度", "COMPLAINT_CLOSED", 30)
    assert csat["questions"][2]["options"] == ["已解决", "部分解决", "未解决"]
    listed = (await gql(TEMPLATES, token=token))["surveyTemplates"]
    assert listed["totalCount"] == 2
    assert [e["node"]["id"] for e in listed["edges"]] == [csat["id"], template["id"]]  # newest first


@pytest.mark.parametrize(
    ("data", "field", "code"),
    [
        ({"name": "  "}, ["name"], "REQUIRED"),
        ({"name": "名" * 201}, ["name"], "INVALID"),
        ({"validDays": 0}, ["validDays"], "INVALID"),
        ({"validDays": 366}, ["validDays"], "INVALID"),
        ({"questions": []}, ["questions"], "REQUIRED"),
        ({"questions": [_q(f"q{i}") for i in range(31)]}, ["questions"], "INVALID"),
        ({"questions": [_q("a"), _q("A")]}, ["questions", "1", "key"], "DUPLICATE"),
        ({"questions": [_q(" ")]}, ["questions", "0", "key"], "REQUIRED"),
        ({"questions": [_q("1st")]}, ["questions", "0", "key"], "INVALID"),
        ({"questions": [_q("has space")]}, ["questions", "0", "key"], "INVALID"),
        ({"questions": [_q("k" * 41)]}, ["questions", "0", "key"], "INVALID"),
        ({"questions": [{"key": "q", "text": " ", "type": "TEXT"}]}, ["questions", "0", "text"], "REQUIRED"),
        ({"questions": [{"key": "q", "text": "长" * 501, "type": "TEXT"}]}, ["questions", "0", "text"], "INVALID"),
        ({"questions": [_q(type_="SINGLE_CHOICE")]}, ["questions", "0", "options"], "REQUIRED"),
        ({"questions": [_q(type_="MULTI_CHOICE", options=["只有一个"])]}, ["questions", "0", "options"], "REQUIRED"),
        ({"questions": [_q(type_="SINGLE_CHOICE", options=["是", "是"])]}, ["questions", "0", "options"], "DUPLICATE"),
        ({"questions": [_q(type_="SINGLE_CHOICE", options=["是", " "])]}, ["questions", "0", "options"], "INVALID"),
        (
            {"questions": [_q(type_="MULTI_CHOICE", options=[str(i) for i in range(21)])]},
            ["questions", "0", "options"],
            "INVALID",
        ),
        (
            {"questions": [_q(type_="SINGLE_CHOICE", options=["是", "否" * 101])]},
            ["questions", "0", "options"],
            "INVALID",
        ),
        ({"questions": [_q(type_="NPS", options=["0", "10"])]}, ["questions", "0", "options"], "INVALID"),
        ({"questions": [_q(type_="RATING", options=["1", "5"])]}, ["questions", "0", "options"], "INVALID"),
        ({"questions": [_q(type_="TEXT", options=["a", "b"])]}, ["questions", "0", "options"], "INVALID"),
        ({"questions": [_q("a", "NPS"), _q("b", "NPS")]}, ["questions"], "INVALID"),
        ({"kind": "NPS", "questions": [_q("r", "RATING")]}, ["questions"], "INVALID"),
        ({"kind": "CSAT", "questions": [_q("n", "NPS")]}, ["questions"], "INVALID"),
    ],
)
async def test_each_rule_of_a_template_is_checked(gql, admin, data, field, code):
    _, token = admin
    result = await _create(gql, token, **data)
    assert result["template"] is None
    assert {"field": field, "code": code} in [{"field": e["field"], "code": e["code"]} for e in result["errors"]]
    assert await SurveyTemplate.all().count() == 0


async def test_every_problem_is_reported_at_once(gql, admin):
    _, token = admin
    result = await _create(gql, token, name="", validDays=0, questions=[_q("a"), _q("a", "SINGLE_CHOICE")])
    assert sorted((tuple(e["field"]), e["code"]) for e in result["errors"]) == [
        (("name",), "REQUIRED"),
        (("questions", "1", "key"), "DUPLICATE"),
        (("questions", "1", "options"), "REQUIRED"),
        (("validDays",), "INVALID"),
    ]


async def test_an_update_changes_name_activity_and_validity_but_never_the_questions(gql, admin):
    _, token = admin
    template = await create_template(gql, token)
    result = (
        await gql(
            UPDATE_TEMPLATE,
            {"input": {"id": template["id"], "name": "新名字", "active": False, "validDays": 7}},
            token=token,
        )
    )["updateSurveyTemplate"]
    assert result["errors"] == []
    updated = result["template"]
    assert (updated["name"], updated["active"], updated["validDays"]) == ("新名字", False, 7)
    assert updated["questions"] == template["questions"]
    partial = (await gql(UPDATE_TEMPLATE, {"input": {"id": template["id"], "active": True}}, token=token))[
        "updateSurveyTemplate"
    ]["template"]
    assert (partial["name"], partial["active"], partial["validDays"]) == ("新名字", True, 7)
    bad = (await gql(UPDATE_TEMPLATE, {"input": {"id": template["id"], "validDays": 400, "name": " "}}, token=token))[
        "updateSurveyTemplate"
    ]
    assert sorted((e["field"][0], e["code"]) for e in bad["errors"]) == [("name", "REQUIRED"), ("validDays", "INVALID")]
    # The input has no questions at all: the API refuses them before anything runs.
    errors = await gql.errors(UPDATE_TEMPLATE, {"input": {"id": template["id"], "questions": [_q()]}}, token=token)
    assert "questions" in errors[0]["message"]
    missing = (await gql(UPDATE_TEMPLATE, {"input": {"id": "U3VydmV5VGVtcGxhdGU6OTk5", "name": "x"}}, token=token))[
        "updateSurveyTemplate"
    ]
    assert [e["code"] for e in missing["errors"]] == ["NOT_FOUND"]


@pytest.mark.parametrize("role", sorted(Role, key=lambda r: r.value))
async def test_who_may_create_and_read_templates(gql, staff_factory, role):
    _, token = await staff_factory(role)
    result = await _create(gql, token)
    if role in (Role.ADMIN, Role.MANAGER, Role.ANALYST):
        assert result["errors"] == [] and result["template"]["name"] == "调查"
    else:
        assert [e["code"] for e in result["errors"]] == ["FORBIDDEN"]
        assert "ADMIN, MANAGER, ANALYST" in result["errors"][0]["message"]
    body = (await gql.raw(TEMPLATES, token=token)).json()
    if role == Role.COMPLAINT_HANDLER:
        assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    else:
        assert body["data"]["surveyTemplates"]["totalCount"] == (1 if result["template"] else 0)


async def test_ready_made_templates_are_created_once_and_keep_their_changes(app):
    created = await surveys.ready_made()
    assert sorted(t.ready_made for t in created) == ["complaint_csat", "nps"]
    nps = await SurveyTemplate.get(ready_made="nps")
    csat = await SurveyTemplate.get(ready_made="complaint_csat")
    assert (nps.kind.value, nps.trigger, nps.active, nps.valid_days) == ("NPS", SurveyTrigger.MANUAL, True, 14)
    assert nps.questions[0] == {
        "key": "nps",
        "text": "您有多大可能向亲友推荐我行？",
        "type": "NPS",
        "required": True,
        "options": [],
    }
    assert csat.trigger == SurveyTrigger.COMPLAINT_CLOSED and csat.kind.value == "CSAT"
    types = {q["key"]: (q["type"], q["options"]) for q in csat.questions}
    assert types["satisfaction"] == ("RATING", []) and types["speed"] == ("RATING", [])
    assert types["resolved"] == ("SINGLE_CHOICE", ["已解决", "部分解决", "未解决"])
    assert any("问题是否已解决" in q["text"] for q in csat.questions)

    await SurveyTemplate.filter(id=nps.id).update(name="推荐度（改名）")
    await SurveyTemplate.filter(id=csat.id).update(active=False)
    assert await surveys.ready_made() == []
    assert await SurveyTemplate.all().count() == 2
    assert (await SurveyTemplate.get(id=nps.id)).name == "推荐度（改名）"
    assert (await SurveyTemplate.get(id=csat.id)).active is False


async def test_crm_migrate_ships_the_ready_made_templates(tmp_path: Path):
    url = f"sqlite://{tmp_path}/fresh.sqlite3"
    await db.migrate(url)
    await db.migrate(url)  # again: nothing more
    async with TortoiseContext():
        await Tortoise.init(config=db.tortoise_config(url))
        try:
            keys = sorted(await SurveyTemplate.all().values_list("ready_made", flat=True))
        finally:
            await Tortoise.close_connections()
    assert keys == ["complaint_csat", "nps"]
