"""Identifiers typed into free text are masked for masked viewers (docs/DOMAIN.md "Roles and what they may do").

Phone numbers, resident ID numbers and e-mail addresses inside notes, interaction records, complaint texts,
follow-ups, survey comments (and the timeline lines made of them) reach a masked viewer in the masked forms of
the fields (`158****7721`, `110105********1234`, `z***@example.com`), however they were typed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from models.complaints import Complaint, ComplaintEvent, ComplaintEventType
from models.customers import Channel
from models.staff import Role
from models.surveys import SurveyInvitation, SurveyKind, SurveyResponse, SurveyTemplate
from schema.base import from_global_id
from services import access, clock, complaints as complaint_service
from tests.complaints.helpers import file
from tests.customers.helpers import create, resident_id

UNMASKED = [Role.ADMIN, Role.MANAGER, Role.RELATIONSHIP_MANAGER, Role.COMPLAINT_HANDLER]
MASKED = [Role.SERVICE_AGENT, Role.ANALYST, Role.AUDITOR]

OTHER_ID = resident_id("19900307")  # 110105199003071234-ish, someone named in the text
# The same phone number, typed three ways, an ID number with spaces and an e-mail address.
TEXT = (
    "客户来电 158-8771-7721（另 158 8771 7721，+86 15887717721），"
    f"身份证 {OTHER_ID[:6]} {OTHER_ID[6:]}，邮箱 li.na@example.com"
)
SHOWN = (
    "客户来电 158****7721（另 158****7721，158****7721），身份证 "
    f"{OTHER_ID[:6]}********{OTHER_ID[-4:]}，邮箱 l***@example.com"
)
SHORT = "回电 158-8771-7721"
SHORT_SHOWN = "回电 158****7721"

FOLLOW_UP_TEXTS = {"title": SHORT, "description": TEXT, "department": "OPERATIONS"}
ADD_NOTE = """mutation($input: AddNoteInput!) { addNote(input: $input) { note { id } errors { code } } }"""
LOG = """mutation($input: LogInteractionInput!) { logInteraction(input: $input) {
  interaction { id } errors { code } } }"""
FOLLOW_UP = """mutation($input: CreateFollowUpInput!) { createFollowUp(input: $input) {
  followUp { id } errors { code } } }"""
READ = """query($id: ID!) { customer(id: $id) {
  notes { body }
  interactions { edges { node { subject content outcome } } }
  complaints { edges { node { summary description resolution events { type message } notes { body }
    followUps { title description } } } }
  followUps { edges { node { title description } } }
  SURVEYS
  timeline(first: 50) { edges { node { kind title detail } } }
} }"""
NODES = """query($ids: [ID!]!) { nodes(ids: $ids) {
  ... on Note { body } ... on Interaction { content }
  ... on FollowUp { f: description } ... on Complaint { c: description }
} }"""


@pytest.fixture
async def written(gql, admin):
    _, token = admin
    customer = await create(gql, token)
    cid = customer["id"]
    note = (await gql(ADD_NOTE, {"input": {"subjectId": cid, "body": TEXT}}, token=token))["addNote"]
    interaction = (
        await gql(
            LOG,
            {
                "input": {
                    "customerId": cid,
                    "channel": "PHONE",
                    "direction": "INBOUND",
                    "kind": "OTHER",
                    "subject": SHORT,
                    "content": TEXT,
                    "outcome": TEXT,
                }
            },
            token=token,
        )
    )["logInteraction"]
    follow_up = (
        await gql(
            FOLLOW_UP,
            {"input": {"customerId": cid, **FOLLOW_UP_TEXTS}},
            token=token,
        )
    )["createFollowUp"]
    complaint = await file(gql, token, cid, summary=SHORT, description=TEXT)
    assert note["errors"] == interaction["errors"] == follow_up["errors"] == []
    complaint_pk = int(from_global_id(complaint["id"])[1])
    await gql(ADD_NOTE, {"input": {"subjectId": complaint["id"], "body": TEXT}}, token=token)
    await gql(
        FOLLOW_UP,
        {"input": {"complaintId": complaint["id"], **FOLLOW_UP_TEXTS}},
        token=token,
    )
    # The workflow's own texts (tests/complaints covers the moves that write them).
    await Complaint.filter(id=complaint_pk).update(resolution=TEXT)
    await ComplaintEvent.create(
        complaint_id=complaint_pk, type=ComplaintEventType.NOTE_ADDED, message=TEXT, at=clock.now()
    )
    customer_pk = int(from_global_id(cid)[1])
    template = await SurveyTemplate.create(name="回访", kind=SurveyKind.NPS, questions=[])
    invitation = await SurveyInvitation.create(
        template=template, customer_id=customer_pk, channel=Channel.SMS, expires_at=clock.now() + timedelta(days=7)
    )
    await SurveyResponse.create(
        invitation=invitation,
        customer_id=customer_pk,
        answers=[{"questionKey": "why", "text": TEXT}],
        nps_score=3,
        comment=TEXT,
        submitted_at=clock.now(),
    )
    ids = [note["note"]["id"], interaction["interaction"]["id"], follow_up["followUp"]["id"], complaint["id"]]
    return cid, ids


def read(role: Role) -> str:
    surveys = "surveyResponses { edges { node { comment answers { text } } } }" if role in access.SURVEY_READERS else ""
    return READ.replace("SURVEYS", surveys)


def texts(data: dict) -> list[str | None]:
    c = data["customer"]
    found = [n["body"] for n in c["notes"]]
    for e in c["interactions"]["edges"]:
        found += [e["node"]["content"], e["node"]["outcome"]]
    for e in c["complaints"]["edges"]:
        n = e["node"]
        found += [
            n["description"],
            n["resolution"],
            *(x["message"] for x in n["events"] if "客户来电" in (x["message"] or "")),
        ]
        found += [x["body"] for x in n["notes"]] + [x["description"] for x in n["followUps"]]
    found += [e["node"]["description"] for e in c["followUps"]["edges"]]
    for e in c.get("surveyResponses", {"edges": []})["edges"]:
        found += [e["node"]["comment"], *(a["text"] for a in e["node"]["answers"])]
    return found


def titles(data: dict) -> list[str]:
    c = data["customer"]
    found = [e["node"]["subject"] for e in c["interactions"]["edges"]]
    found += [e["node"]["title"] for e in c["followUps"]["edges"]]
    for e in c["complaints"]["edges"]:
        found += [e["node"]["summary"], *(x["title"] for x in e["node"]["followUps"])]
    return found


@pytest.mark.parametrize("role", MASKED)
async def test_masked_viewers_see_identifiers_in_free_text_masked(gql, staff_factory, written, role):
    cid, ids = written
    _, token = await staff_factory(role)
    data = await gql(read(role), {"id": cid}, token=token)
    found = texts(data)
    assert len(found) >= 12 and set(found) == {SHOWN}
    assert set(titles(data)) == {SHORT_SHOWN}
    timeline = " ".join(f"{e['node']['title']} {e['node']['detail']}" for e in data["customer"]["timeline"]["edges"])
    for hidden in ("8771", "li.na", OTHER_ID[6:14]):
        assert hidden not in timeline and hidden not in str(data)
    shown = (await gql(NODES, {"ids": ids}, token=token))["nodes"]
    assert [next(iter(n.values())) for n in shown] == [SHOWN] * 4


@pytest.mark.parametrize("role", UNMASKED)
async def test_viewers_of_personal_data_see_free_text_as_written(gql, staff_factory, written, role):
    cid, ids = written
    _, token = await staff_factory(role)
    data = await gql(read(role), {"id": cid}, token=token)
    assert set(texts(data)) == {TEXT} and set(titles(data)) == {SHORT}
    shown = (await gql(NODES, {"ids": ids}, token=token))["nodes"]
    assert [next(iter(n.values())) for n in shown] == [TEXT] * 4


SUBSCRIBE = """subscription($id: ID!) { complaintUpdated(id: $id) {
  summary description notes { body } customer { birthDate idNumber } } }"""


async def test_a_live_subscription_masks_like_a_query(settings):
    from tests.complaints.test_subscription import Subscription, api, people, wait_listening
    from tests.conftest import make_staff, token_for
    from tests.jobs.live import live_server

    async with live_server(settings) as (application, address):
        tokens = await people(settings)
        agent = await token_for(await make_staff(Role.SERVICE_AGENT), settings)
        async with api(address, tokens["admin"]) as admin, api(address, tokens["handler"]) as handler:
            customer = await admin.customer(301)
            complaint = await admin.file(customer["id"], summary=SHORT)
            pk = int(from_global_id(complaint["id"])[1])
            await Complaint.filter(id=pk).update(description=TEXT)
            async with Subscription(address, agent, SUBSCRIBE, {"id": complaint["id"]}) as sub:
                await wait_listening(application.runtime.pubsub, complaint_service.channel_for(pk))
                await handler(ADD_NOTE, {"input": {"subjectId": complaint["id"], "body": TEXT}})
                shown = (await sub.next())["data"]["complaintUpdated"]
    assert (shown["summary"], shown["description"], shown["notes"][0]["body"]) == (SHORT_SHOWN, SHOWN, SHOWN)
    assert shown["customer"]["birthDate"] is None and "********" in shown["customer"]["idNumber"]


SEARCH = """query($s: String!) { complaints(filter: {search: $s}) { totalCount }
  interactions(filter: {search: $s}) { totalCount } }"""


@pytest.mark.parametrize("typed", ["1588771", "158-8771", "li.na@", "@example"])
async def test_masked_viewers_cannot_probe_identifiers_in_free_text_by_search(
    gql, admin, staff_factory, written, typed
):
    found = await gql(SEARCH, {"s": typed}, token=admin[1])
    assert (found["complaints"]["totalCount"], found["interactions"]["totalCount"]) == (1, 1)
    for role in (Role.SERVICE_AGENT, Role.ANALYST, Role.AUDITOR):
        _, token = await staff_factory(role)
        probed = await gql(SEARCH, {"s": typed}, token=token)
        assert (probed["complaints"]["totalCount"], probed["interactions"]["totalCount"]) == (0, 0), role


async def test_masked_viewers_still_search_words_and_reference_numbers(gql, admin, staff_factory, written):
    reference = await Complaint.first().values_list("reference_no", flat=True)
    _, token = await staff_factory(Role.SERVICE_AGENT)
    assert (await gql(SEARCH, {"s": "客户来电"}, token=token))["complaints"]["totalCount"] == 1
    assert (await gql(SEARCH, {"s": reference}, token=token))["complaints"]["totalCount"] == 1


async def test_notification_texts_are_masked_for_masked_viewers(gql, admin, staff_factory, written):
    from models.notifications import Notification, NotificationStatus
    from schema.base import to_global_id

    cid, _ = written
    notification = await Notification.create(
        customer_id=int(from_global_id(cid)[1]),
        channel=Channel.SMS,
        recipient="15887717721",
        subject=SHORT,
        body=TEXT,
        status=NotificationStatus.SENT,
    )
    query = "query($id: ID!) { node(id: $id) { ... on Notification { subject body } } }"
    gid = to_global_id("Notification", notification.id)
    assert (await gql(query, {"id": gid}, token=admin[1]))["node"] == {"subject": SHORT, "body": TEXT}
    _, token = await staff_factory(Role.AUDITOR)
    assert (await gql(query, {"id": gid}, token=token))["node"] == {"subject": SHORT_SHOWN, "body": SHOWN}
