"""The survey link opened in a real headless browser (Debian's Chromium driven by Playwright): the customer
reads the questions, answers, submits, sees the thanks page, and the answer is in the API."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import shutil
from pathlib import Path

import httpx
import pytest

from services import clock
from services.notifications import NotificationSettings
from tests.conftest import make_staff, token_for, with_overrides
from tests.jobs.live import live_server
from tests.surveys.helpers import CSAT_QUESTIONS, SEND, TEMPLATE_FIELDS, link_in

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="needs Chromium (apt-get install chromium); .ci/run installs it and never skips this test",
)

CREATE = f"""mutation($input: CreateSurveyTemplateInput!) {{ createSurveyTemplate(input: $input) {{
  template {{ {TEMPLATE_FIELDS} }} errors {{ message }} }} }}"""
CUSTOMER = """mutation { createCustomer(input: {kind: INDIVIDUAL, name: "张伟", phone: "13800138000",
  email: "zhang.wei@example.com", preferredChannel: EMAIL}) { customer { id } errors { message } } }"""
RESPONSES = """query($id: ID!) { customer(id: $id) { surveyResponses(first: 5) { edges { node {
  csatScore answers { questionKey number choices text } comment followUp { title } } } } } }"""


async def _api(http: httpx.AsyncClient, token: str, query: str, variables: dict | None = None) -> dict:
    response = await http.post("/graphql", json={"query": query, "variables": variables or {}},
                               headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def _link_from_the_mail(drop: Path) -> str:
    """The token of the link in the one e-mail the worker wrote to the mail drop."""
    for _ in range(200):
        mails = list(drop.glob("*.eml"))
        if mails:
            return link_in(email.message_from_bytes(mails[0].read_bytes(), policy=email.policy.default))
        await asyncio.sleep(0.05)
    raise AssertionError(f"no e-mail with a survey link in {drop}")


async def test_a_customer_answers_in_a_browser(settings, tmp_path):
    from playwright.async_api import async_playwright

    clock.reset()
    drop = tmp_path / "outbox"
    settings = with_overrides(settings, sections={NotificationSettings: NotificationSettings(mail_drop_dir=str(drop))})
    async with live_server(settings) as (_, address), httpx.AsyncClient(base_url=f"http://{address}") as http:
        staff_token = await token_for(await make_staff(), settings)
        data = {"name": "投诉处理满意度", "kind": "CSAT", "questions": CSAT_QUESTIONS}
        template = (await _api(http, staff_token, CREATE, {"input": data}))["createSurveyTemplate"]["template"]
        customer = (await _api(http, staff_token, CUSTOMER))["createCustomer"]["customer"]
        sent = await _api(
            http, staff_token, SEND, {"input": {"templateId": template["id"], "customerId": customer["id"]}}
        )
        assert sent["sendSurvey"]["invitation"]["status"] == "PENDING"
        link = await _link_from_the_mail(drop)

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = await browser.new_page(viewport={"width": 390, "height": 844}, java_script_enabled=False)
                await page.goto(f"http://{address}/s/{link}")
                assert await page.title() == "投诉处理满意度"
                assert await page.get_by_text("您对处理结果是否满意？").is_visible()

                await page.get_by_role("button", name="提交").click()  # nothing answered yet
                assert await page.get_by_role("alert").is_visible()
                await page.screenshot(path=str(tmp_path / "survey-form.png"), full_page=True)

                await page.locator(
                    "label.scale-point", has=page.locator('input[name="q_satisfaction"][value="2"]')
                ).click()
                await page.locator("label.scale-point", has=page.locator('input[name="q_speed"][value="4"]')).click()
                await page.get_by_label("部分解决").check()
                await page.get_by_label("速度").check()
                await page.locator("#comment").fill("等了太久")
                await page.get_by_role("button", name="提交").click()

                await page.wait_for_url(f"http://{address}/s/{link}/thanks")
                assert await page.get_by_role("heading", name="感谢您的反馈！").is_visible()
                await page.screenshot(path=str(tmp_path / "survey-thanks.png"))
            finally:
                await browser.close()

        found = await _api(http, staff_token, RESPONSES, {"id": customer["id"]})
    [edge] = found["customer"]["surveyResponses"]["edges"]
    response = edge["node"]
    assert response["csatScore"] == 3.0 and response["comment"] == "等了太久"
    assert {a["questionKey"]: a["choices"] for a in response["answers"]}["topics"] == ["速度"]
    assert response["followUp"] is not None  # a rating of 2 opens a recovery call


async def _choose(page, question: str, point: int) -> None:
    """Tap a point of a scale, as a finger would: on its visible label."""
    radio = page.locator(f'input[name="q_{question}"][value="{point}"]')
    await page.locator("label.scale-point", has=radio).click()
