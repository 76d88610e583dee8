"""docs/GUIDE.md runs: every step of the guide, in order, against a fresh app over HTTP, as the role the step
names, with the ids earlier steps returned. A step fails on any GraphQL error or any payload error."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from core import domains
from models.staff import Department, Role
from services.complaint_stats import TOTAL_LABEL
from services.notifications import NotificationSettings
from tests.conftest import PASSWORD, make_staff
from tests.docs.guide import (
    GUIDE,
    ROOT,
    Step,
    fenced_blocks,
    fill,
    parse_curl,
    payload_errors,
    placeholders,
    read_guide,
    resolve,
)
from tests.surveys.helpers import TOKEN_IN_LINK

BANK_TIME = timezone(timedelta(hours=8))
UNTIL_TIMEOUT = 60.0
ROLES = {r.value for r in Role}
# The people of the guide: where each works (the rest in the default department, bank-wide).
PEOPLE = {
    Role.SERVICE_AGENT: {"department": Department.CALL_CENTER},
    Role.RELATIONSHIP_MANAGER: {"department": Department.BRANCH, "branch": "北京朝阳支行"},
    Role.COMPLAINT_HANDLER: {"department": Department.COMPLAINTS},
    Role.ANALYST: {"department": Department.MARKETING},
}


def _times() -> dict[str, str]:
    now = datetime.now(BANK_TIME).replace(microsecond=0)
    return {
        "in two days": (now + timedelta(days=2)).isoformat(),
        "tomorrow": (now + timedelta(days=1)).isoformat(),
        "start of this month": now.replace(day=1, hour=0, minute=0, second=0).isoformat(),
    }


class Day:
    """The state of the day: a token per role, the values saved so far, each step's last answer."""

    def __init__(self, client, staff_factory, settings) -> None:
        self.client = client
        self.staff_factory = staff_factory
        self.drop = Path(settings.of(NotificationSettings).mail_drop_dir)
        self.tokens: dict[str, str] = {}
        self.known: dict[str, object] = {"password": PASSWORD, **_times()}
        self.answers: dict[str, dict] = {}
        self.guide = read_guide()

    async def token_of(self, role: str | None) -> str | None:
        if role is None:
            return None
        assert role in ROLES, f"no such role: {role}"
        if role not in self.tokens:
            self.tokens[role] = (await self.staff_factory(Role(role), **PEOPLE.get(Role(role), {})))[1]
        return self.tokens[role]

    async def run(self, step: Step) -> None:
        if "surveyToken" in placeholders(step) and "surveyToken" not in self.known:
            self.known["surveyToken"] = await self.survey_token()
        deadline = time.monotonic() + UNTIL_TIMEOUT
        while True:
            answer = await (self.graphql(step) if step.lang == "graphql" else self.curl(step))
            if step.until is None or self.reached(answer, *step.until):
                break
            assert time.monotonic() < deadline, f"step {step.name}: {step.until} not reached: {answer}"
            await asyncio.sleep(0.1)
        self.answers[step.name] = answer
        for name, path in step.saves:
            value = resolve(answer, path)
            assert value is not None, f"step {step.name}: nothing at {path} in {answer}"
            self.known[name] = value

    @staticmethod
    def reached(answer: dict, path: str, wanted: str | None) -> bool:
        value = resolve(answer, path)
        if path.endswith(".status"):  # a job that ended otherwise will never get there
            assert value not in ("FAILED", "CANCELLED") or value == wanted, f"{path} is {value}: {answer}"
        return bool(value) if wanted is None else str(value) == wanted

    async def graphql(self, step: Step) -> dict:
        variables = fill(json.loads(step.variables), self.known)
        headers = {}
        if step.signs_in:
            # The member who signs in exists, with the password the test knows.
            role = Role(step.signs_in)
            await make_staff(role, username=variables["input"]["username"], **PEOPLE.get(role, {}))
        else:
            token = await self.token_of(step.role)
            headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.client.post(
            "/graphql", json={"query": step.text, "variables": variables}, headers=headers
        )
        return self.checked(step, response)

    def checked(self, step: Step, response) -> dict:
        assert response.status_code == 200, f"step {step.name}: {response.status_code} {response.text}"
        body = response.json()
        assert not body.get("errors"), f"step {step.name}: {body['errors']}"
        assert payload_errors(body["data"]) == {}, f"step {step.name}: {payload_errors(body['data'])}"
        if step.signs_in:
            self.tokens[step.signs_in] = body["data"]["login"]["token"]
        return body["data"]

    async def curl(self, step: Step) -> dict:
        token = await self.token_of(step.role)
        curl = parse_curl(fill(step.text, {**self.known, "token": token}))
        url = urlsplit(curl.url)
        assert (url.scheme, url.netloc) == ("http", "127.0.0.1:8000"), curl.url
        if curl.form or curl.uploads:
            files = {
                name: (filename, self.guide.files[filename].encode(), "application/octet-stream")  # as curl sends it
                for name, filename in curl.uploads.items()
            }
            response = await self.client.post(url.path, headers=curl.headers, data=curl.form, files=files)
            return self.checked(step, response)
        response = await self.client.get(url.path, headers=curl.headers)
        assert response.status_code == 200, f"step {step.name}: {response.status_code} {response.text}"
        assert response.headers["content-disposition"].startswith("attachment"), response.headers
        return {"status": response.status_code, "text": response.text}

    async def survey_token(self) -> str:
        """The token of the link in the survey e-mail the guide's customer got (the mail drop of the test)."""
        template = resolve(
            self.answers["survey-templates"], f"surveyTemplates.edges[node.id={self.known['templateId']}]"
        )
        deadline = time.monotonic() + UNTIL_TIMEOUT
        while True:
            for path in sorted(self.drop.glob("notification-*.eml")):
                mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                body = mail.get_body(("plain",)).get_content()
                if template["node"]["name"] in body and (found := TOKEN_IN_LINK.search(body)):
                    return found.group(1)
            assert time.monotonic() < deadline, f"no survey e-mail in {self.drop}"
            await asyncio.sleep(0.1)


@pytest.fixture
async def fresh_server(app):
    # The app fixture empties the database; a fresh server also has what `crm migrate` ships (survey templates).
    for module in domains.modules("services"):
        if hasattr(module, "ready_made"):
            await module.ready_made()
    return app


async def test_every_step_of_the_guide_runs_in_order(fresh_server, client, staff_factory, settings):
    day = Day(client, staff_factory, settings)
    for step in day.guide.steps:
        missing = placeholders(step) - set(day.known) - {"token", "surveyToken"}
        assert not missing, f"step {step.name} needs {missing}, which no earlier step saves"
        await day.run(step)
    # The day did what it says.
    assert day.answers["import-job"]["job"]["result"]["created"] == 3
    assert day.answers["answer-survey"]["submitSurveyResponse"]["accepted"] is True
    assert day.answers["erase-customer"]["eraseCustomer"]["customer"]["status"] == "ERASED"
    assert day.answers["close-complaint"]["closeComplaint"]["complaint"]["status"] == "CLOSED"
    assert day.answers["extend-deadline-again"]["extendComplaintDeadline"]["complaint"]["extensionCount"] == 2
    assert TOTAL_LABEL in day.answers["download-report"]["text"]


def test_every_query_of_the_guide_is_a_step_the_test_runs():
    text = GUIDE.read_text(encoding="utf-8")
    guide = read_guide(text)
    graphql_steps = [s for s in guide.steps if s.lang == "graphql"]
    assert len(fenced_blocks(text, "graphql")) == len(graphql_steps)
    assert len(fenced_blocks(text, "json")) == len(graphql_steps)
    curl_blocks = [b for b in fenced_blocks(text, "sh") if b.startswith("curl")]
    assert len(curl_blocks) == len([s for s in guide.steps if s.lang == "sh"])
    names = [s.name for s in guide.steps]
    assert len(names) == len(set(names)), "step names are unique"
    for step in guide.steps:
        assert step.role is None or step.role in ROLES, f"step {step.name}: unknown role {step.role}"


@pytest.mark.parametrize(("path", "lang", "first_line"), [
    ("docs/clients/apollo_example.mjs", "js", "// docs/clients/apollo_example.mjs"),
    ("docs/clients/gql_example.py", "python", "# docs/clients/gql_example.py"),
])  # fmt: skip
def test_the_guide_shows_the_client_examples_verbatim(path, lang, first_line):
    shown = [b for b in fenced_blocks(GUIDE.read_text(encoding="utf-8"), lang) if b.startswith(first_line + "\n")]
    assert len(shown) == 1, f"the guide shows {path} once"
    assert shown[0] + "\n" == first_line + "\n" + (ROOT / path).read_text(encoding="utf-8")
