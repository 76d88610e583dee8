"""Shared pieces of the survey tests (templates, invitations, answers)."""

from __future__ import annotations

import re

from models.notifications import Notification
from models.surveys import SurveyInvitation
from schema.base import from_global_id, to_global_id
from tests.complaints.helpers import do, file

TEMPLATE_FIELDS = "id name kind trigger active validDays createdAt questions { key text type required options }"
CREATE_TEMPLATE = f"""mutation($input: CreateSurveyTemplateInput!) {{ createSurveyTemplate(input: $input) {{
  template {{ {TEMPLATE_FIELDS} }} errors {{ field message code }} }} }}"""
UPDATE_TEMPLATE = f"""mutation($input: UpdateSurveyTemplateInput!) {{ updateSurveyTemplate(input: $input) {{
  template {{ {TEMPLATE_FIELDS} }} errors {{ field message code }} }} }}"""
TEMPLATES = f"""query {{ surveyTemplates(first: 50) {{ totalCount edges {{ node {{ {TEMPLATE_FIELDS} }} }} }} }}"""

INVITATION_FIELDS = """id channel status suppressedReason attempts lastError sentAt expiresAt respondedAt createdAt
  template { id name } customer { id } complaint { id referenceNo }
  response { id npsScore npsCategory csatScore comment }"""
SEND = f"""mutation($input: SendSurveyInput!) {{ sendSurvey(input: $input) {{
  invitation {{ {INVITATION_FIELDS} }} errors {{ field message code }} }} }}"""
INVITATIONS = f"""query($templateId: ID, $status: [InvitationStatus!], $first: Int) {{
  surveyInvitations(templateId: $templateId, status: $status, first: $first) {{
    totalCount edges {{ node {{ {INVITATION_FIELDS} }} }} }} }}"""

PUBLIC = """query($token: String!) { surveyByToken(token: $token) {
  title customerDisplayName expiresAt alreadyAnswered questions { key text type required options } } }"""
SUBMIT = """mutation($input: SubmitSurveyResponseInput!) { submitSurveyResponse(input: $input) {
  accepted errors { field message code } } }"""

RESPONSE_FIELDS = """id npsScore npsCategory csatScore comment submittedAt
  answers { questionKey number text choices }
  invitation { id status } customer { id }
  followUp { id title priority dueAt department assignee { username } complaint { id } }"""

NPS_QUESTIONS = [
    {"key": "nps", "text": "您有多大可能向亲友推荐我行？", "type": "NPS"},
    {"key": "reason", "text": "主要原因是什么？", "type": "TEXT", "required": False},
]
CSAT_QUESTIONS = [
    {"key": "satisfaction", "text": "您对处理结果是否满意？", "type": "RATING"},
    {"key": "speed", "text": "您对处理速度是否满意？", "type": "RATING"},
    {"key": "resolved", "text": "问题是否已解决？", "type": "SINGLE_CHOICE",
     "options": ["已解决", "部分解决", "未解决"]},
    {"key": "topics", "text": "哪些方面需要改进？", "type": "MULTI_CHOICE", "options": ["态度", "速度", "结果"],
     "required": False},
    {"key": "suggestion", "text": "您的建议", "type": "TEXT", "required": False},
]  # fmt: skip

TOKEN_IN_LINK = re.compile(r"https?://\S*/([A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])")


def link_in(mail) -> str:
    """The token of the survey link in an e-mail (an email.message.EmailMessage)."""
    found = TOKEN_IN_LINK.search(mail.get_body(("plain",)).get_content())
    assert found, mail
    return found.group(1)


def pk(global_id: str) -> int:
    return int(from_global_id(global_id)[1])


def gid(type_name: str, key: int) -> str:
    return to_global_id(type_name, key)


async def create_template(gql, token: str, **overrides) -> dict:
    data = {"name": "客户推荐度调查", "kind": "NPS", "questions": NPS_QUESTIONS, **overrides}
    result = (await gql(CREATE_TEMPLATE, {"input": data}, token=token))["createSurveyTemplate"]
    assert result["errors"] == [], result["errors"]
    return result["template"]


async def send_raw(gql, token: str, template_id: str, customer_id: str, **fields) -> dict:
    data = {"templateId": template_id, "customerId": customer_id, **fields}
    return (await gql(SEND, {"input": data}, token=token))["sendSurvey"]


async def send(gql, token: str, template_id: str, customer_id: str, **fields) -> dict:
    result = await send_raw(gql, token, template_id, customer_id, **fields)
    assert result["errors"] == [], result["errors"]
    return result["invitation"]


async def token_of(invitation_id: str | int) -> str:
    """The token of an invitation, read back from the link in its (not yet sent) notification."""
    key = invitation_id if isinstance(invitation_id, int) else pk(invitation_id)
    invitation = await SurveyInvitation.get(id=key)
    notification = await Notification.get(id=invitation.notification_id)
    found = TOKEN_IN_LINK.search(notification.body)
    assert found, notification.body
    return found.group(1)


async def submit(gql, token: str, answers: list[dict], comment: str | None = None) -> dict:
    data = {"token": token, "answers": answers, "comment": comment}
    return (await gql(SUBMIT, {"input": data}))["submitSurveyResponse"]


async def public(gql, token: str) -> dict | None:
    return (await gql(PUBLIC, {"token": token}))["surveyByToken"]


async def close_complaint(gql, token: str, customer_id: str) -> dict:
    """A complaint filed and taken through its workflow to CLOSED."""
    complaint = await file(gql, token, customer_id)
    await do(gql, token, "acknowledge", id=complaint["id"])
    started = (await do(gql, token, "start", id=complaint["id"]))["complaint"]
    await do(gql, token, "resolve", id=complaint["id"], version=started["version"], resolution="退还年费")
    closed = await do(gql, token, "close", id=complaint["id"], customerAccepted=True)
    assert closed["errors"] == [], closed["errors"]
    return closed["complaint"]


async def reopen_and_close(gql, token: str, complaint_id: str) -> dict:
    await do(gql, token, "reopen", id=complaint_id, reason="客户对结果有异议")
    started = (await do(gql, token, "start", id=complaint_id))["complaint"]
    await do(gql, token, "resolve", id=complaint_id, version=started["version"], resolution="重新处理")
    closed = await do(gql, token, "close", id=complaint_id, customerAccepted=True)
    assert closed["errors"] == [], closed["errors"]
    return closed["complaint"]
