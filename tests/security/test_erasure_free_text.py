"""Erasure scrubs the person from free text (docs/DOMAIN.md "Customer information", eraseCustomer).

The name, phone numbers, ID numbers and e-mail addresses are scrubbed from the free text of the person's notes,
interactions, complaints (and their events and notes), follow-ups and survey comments, however they were typed
(`138-1234-5678`, `138 1234 5678`, `+86 138 1234 5678`); the rest of the text stays, and so do the complaints
(regulatory retention)."""

from __future__ import annotations

from datetime import timedelta

from models.complaints import Complaint, ComplaintEvent, ComplaintEventType
from models.customers import Channel
from models.follow_ups import FollowUp
from models.interactions import Interaction
from models.notes import Note
from models.surveys import SurveyInvitation, SurveyKind, SurveyResponse, SurveyTemplate
from schema.base import from_global_id
from services import clock
from tests.complaints.helpers import file
from tests.customers.helpers import create, resident_id

ID = resident_id()  # 110105198504121234-ish: 张伟's
TEXT = (
    f"张伟来电 138-1234-5678（另 138 1234 5678，+86 13812345678），身份证 {ID[:6]} {ID[6:14]} {ID[14:]}，"
    "邮箱 ZHANG.WEI@example.com，其女儿电话 139 0000 1111、邮箱 li@example.org，要求退还年费。"
)
SCRUBBED = "***来电 ***（另 ***，***），身份证 ***，邮箱 ***，其女儿电话 ***、邮箱 ***，要求退还年费。"
SHORT = "张伟 回电 138-1234-5678"
SHORT_SCRUBBED = "*** 回电 ***"

ADD_NOTE = """mutation($input: AddNoteInput!) { addNote(input: $input) { errors { code } } }"""
LOG = """mutation($input: LogInteractionInput!) { logInteraction(input: $input) { errors { code } } }"""
FOLLOW_UP = """mutation($input: CreateFollowUpInput!) { createFollowUp(input: $input) { errors { code } } }"""
ERASE = """mutation($input: EraseCustomerInput!) { eraseCustomer(input: $input) {
  customer { name status } errors { field code } } }"""
FOLLOW_UP_TEXTS = {"title": SHORT, "description": TEXT, "department": "OPERATIONS"}


async def write_everything(gql, token: str) -> tuple[str, int, int]:
    customer = await create(gql, token)
    cid = customer["id"]
    pk = int(from_global_id(cid)[1])
    interaction = {
        "customerId": cid,
        "channel": "PHONE",
        "direction": "INBOUND",
        "kind": "OTHER",
        "subject": SHORT,
        "content": TEXT,
        "outcome": TEXT,
    }
    complaint = await file(gql, token, cid, summary=SHORT, description=TEXT)
    complaint_pk = int(from_global_id(complaint["id"])[1])
    for query, data in [
        (ADD_NOTE, {"subjectId": cid, "body": TEXT}),
        (ADD_NOTE, {"subjectId": complaint["id"], "body": TEXT}),
        (LOG, interaction),
        (FOLLOW_UP, {"customerId": cid, **FOLLOW_UP_TEXTS}),
        (FOLLOW_UP, {"complaintId": complaint["id"], **FOLLOW_UP_TEXTS}),
    ]:
        payload = next(iter((await gql(query, {"input": data}, token=token)).values()))
        assert payload["errors"] == [], payload
    await Complaint.filter(id=complaint_pk).update(resolution=TEXT)
    await ComplaintEvent.create(
        complaint_id=complaint_pk, type=ComplaintEventType.NOTE_ADDED, message=TEXT, at=clock.now()
    )
    template = await SurveyTemplate.create(name="回访", kind=SurveyKind.NPS, questions=[])
    invitation = await SurveyInvitation.create(
        template=template, customer_id=pk, channel=Channel.SMS, expires_at=clock.now() + timedelta(days=7)
    )
    await SurveyResponse.create(
        invitation=invitation, customer_id=pk, answers=[], nps_score=3, comment=TEXT, submitted_at=clock.now()
    )
    return cid, pk, complaint_pk


async def free_texts(pk: int, complaint_pk: int) -> tuple[list[str | None], list[str | None]]:
    """(long texts, short ones) of the person's rows."""
    long: list[str | None] = []
    short: list[str | None] = []
    long += await Note.filter(customer_id=pk).values_list("body", flat=True)
    long += await Note.filter(complaint_id=complaint_pk).values_list("body", flat=True)
    for row in await Interaction.filter(customer_id=pk):
        long += [row.content, row.outcome]
        short.append(row.subject)
    complaint = await Complaint.get(id=complaint_pk)
    long += [complaint.description, complaint.resolution]
    short.append(complaint.summary)
    events = await ComplaintEvent.filter(complaint_id=complaint_pk, message__contains="来电")
    long += [e.message for e in events]
    for row in await FollowUp.filter(customer_id=pk) + await FollowUp.filter(complaint_id=complaint_pk):
        long.append(row.description)
        short.append(row.title)
    return long, short


async def test_erasure_scrubs_identifiers_however_typed_and_keeps_the_rest(gql, admin):
    _, token = admin
    cid, pk, complaint_pk = await write_everything(gql, token)

    erased = (await gql(ERASE, {"input": {"id": cid, "reason": "PIPL art. 47 request"}}, token=token))["eraseCustomer"]
    assert erased["errors"] == [] and erased["customer"]["status"] == "ERASED"

    long, short = await free_texts(pk, complaint_pk)
    assert len(long) >= 10 and set(long) == {SCRUBBED}
    assert len(short) >= 4 and set(short) == {SHORT_SCRUBBED}
    # Complaints stay (regulatory retention); what the person wrote in the survey goes.
    assert await Complaint.filter(customer_id=pk).count() == 1
    assert await SurveyResponse.filter(customer_id=pk).values_list("comment", flat=True) == [None]


async def test_the_reason_may_not_repeat_a_number_typed_another_way(gql, admin):
    _, token = admin
    customer = await create(gql, token)
    for reason in ["客户 138-1234-5678 申请删除", f"ID {ID[:6]} {ID[6:]}", "电话 +86 138 1234 5678"]:
        refused = (await gql(ERASE, {"input": {"id": customer["id"], "reason": reason}}, token=token))["eraseCustomer"]
        assert refused["errors"] == [{"field": ["reason"], "code": "INVALID"}], reason
