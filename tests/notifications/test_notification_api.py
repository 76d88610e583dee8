"""The outbox through HTTP: the `notifications` list (masked recipients, filters, paging, branch scoping),
`retryNotification`, the complaint extension's notification, and the /metrics gauge."""

from __future__ import annotations

import pytest

from models.audit import AuditEntry
from models.customers import Channel
from models.notifications import Notification, NotificationStatus
from models.staff import Role
from schema.base import to_global_id
from tests.complaints.helpers import do, file, new_customer as new_complaint_customer
from tests.notifications.helpers import EMAIL, OTHER_BRANCH, PHONE, new_customer, queue_message

LIST = """query($customerId: ID, $status: [NotificationStatus!], $first: Int, $after: String) {
  notifications(customerId: $customerId, status: $status, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id channel recipient subject body status attempts lastError createdAt sentAt
      customer { id } } } } }"""
RETRY = """mutation($input: RetryNotificationInput!) { retryNotification(input: $input) {
  notification { id status attempts lastError sentAt } errors { field message code } } }"""
NODE = """query($id: ID!) { node(id: $id) { __typename ... on Notification { recipient status } } }"""


def gid(notification: Notification) -> str:
    return to_global_id("Notification", notification.id)


def customer_gid(customer) -> str:
    return to_global_id("Customer", customer.id)


async def listed(gql, token: str, **variables) -> dict:
    return (await gql(LIST, variables, token=token))["notifications"]


async def test_the_list_shows_every_notification_newest_first_with_the_recipient_masked(gql, admin, settle):
    _, token = admin
    customer = await new_customer()
    email = await queue_message(customer, subject="账户变动提醒")
    sms = await queue_message(customer, Channel.SMS)
    await settle()

    response = await gql.raw(LIST, {}, token=token)
    assert EMAIL not in response.text and PHONE not in response.text  # not even an ADMIN sees the address
    page = response.json()["data"]["notifications"]
    assert page["totalCount"] == 2
    newest, oldest = (edge["node"] for edge in page["edges"])
    assert (newest["id"], newest["channel"], newest["recipient"]) == (gid(sms), "SMS", "138****5678")
    assert (oldest["id"], oldest["channel"], oldest["recipient"]) == (gid(email), "EMAIL", "z***@example.com")
    assert (oldest["subject"], oldest["status"], oldest["attempts"], oldest["lastError"]) == (
        "账户变动提醒",
        "SENT",
        1,
        None,
    )
    assert oldest["sentAt"] is not None and oldest["customer"] == {"id": customer_gid(customer)}
    assert (await gql(NODE, {"id": gid(email)}, token=token))["node"] == {
        "__typename": "Notification",
        "recipient": "z***@example.com",
        "status": "SENT",
    }


async def test_the_list_filters_by_customer_and_status_and_pages(gql, admin, smtp, settle):
    _, token = admin
    first, second = await new_customer(), await new_customer(phone="13900001111", email="li.na@example.com")
    sent = [await queue_message(first), await queue_message(first)]
    await settle()
    smtp.replies = ["550 5.7.1 Rejected"]
    failed = await queue_message(second)
    await settle()
    assert (await Notification.get(id=failed.id)).status == NotificationStatus.FAILED

    only_failed = await listed(gql, token, status=["FAILED"])
    assert [e["node"]["id"] for e in only_failed["edges"]] == [gid(failed)]
    assert only_failed["edges"][0]["node"]["lastError"].startswith("SMTP refused the recipient: 550 5.7.1")
    of_first = await listed(gql, token, customerId=customer_gid(first), first=1)
    assert of_first["totalCount"] == 2 and of_first["pageInfo"]["hasNextPage"]
    rest = await listed(gql, token, customerId=customer_gid(first), first=1, after=of_first["pageInfo"]["endCursor"])
    assert [e["node"]["id"] for e in of_first["edges"] + rest["edges"]] == [gid(sent[1]), gid(sent[0])]
    assert not rest["pageInfo"]["hasNextPage"]
    assert (await listed(gql, token, customerId=customer_gid(second), status=["SENT", "QUEUED"]))["totalCount"] == 0


async def test_branch_staff_see_only_the_notifications_of_their_branchs_customers(gql, staff_factory, settle):
    here, there = await new_customer(), await new_customer(OTHER_BRANCH, phone="13900001111", email="li@example.com")
    mine, theirs = await queue_message(here), await queue_message(there)
    await settle()
    _, token = await staff_factory(Role.RELATIONSHIP_MANAGER, branch=here.branch)

    assert [e["node"]["id"] for e in (await listed(gql, token))["edges"]] == [gid(mine)]
    hidden = await listed(gql, token, customerId=customer_gid(there))
    assert hidden["totalCount"] == 0 and hidden["edges"] == []
    assert (await gql(NODE, {"id": gid(theirs)}, token=token))["node"] is None
    errors = await gql.errors(LIST, {"customerId": to_global_id("Staff", 1)}, token=token)
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("role", list(Role))
async def test_every_role_may_read_the_list(gql, staff_factory, role):
    _, token = await staff_factory(role)
    assert (await listed(gql, token))["totalCount"] == 0


async def test_a_failed_notification_is_sent_once_when_retried(gql, staff_factory, smtp, settle, outcomes):
    customer = await new_customer()
    smtp.replies = ["554 5.7.1 Relay access denied"]  # the channel is broken...
    queued = await queue_message(customer)
    await settle()
    assert smtp.messages == [] and (await Notification.get(id=queued.id)).status == NotificationStatus.FAILED

    member, token = await staff_factory(Role.MANAGER)  # ... and fixed: a manager sends it again
    retried = (await gql(RETRY, {"input": {"id": gid(queued)}}, token=token))["retryNotification"]
    assert retried["errors"] == []
    assert (retried["notification"]["status"], retried["notification"]["attempts"]) == ("QUEUED", 0)
    await settle()

    assert len(smtp.messages) == 1
    sent = await Notification.get(id=queued.id)
    assert (sent.status, sent.attempts) == (NotificationStatus.SENT, 1)
    assert [status for _, status, _, _ in outcomes] == ["FAILED", "SENT"]
    [entry] = await AuditEntry.filter(action="notification.retry")
    assert (entry.actor_id, entry.subject_type, entry.subject_id) == (member.id, "Notification", str(queued.id))

    again = (await gql(RETRY, {"input": {"id": gid(queued)}}, token=token))["retryNotification"]
    assert again["notification"] is None
    assert [(e["code"], e["field"]) for e in again["errors"]] == [("INVALID_TRANSITION", ["id"])]
    assert "this one is SENT" in again["errors"][0]["message"]
    await settle()
    assert len(smtp.messages) == 1


@pytest.mark.parametrize("role", sorted(set(Role) - {Role.ADMIN, Role.MANAGER}))
async def test_only_managers_and_admins_retry(gql, staff_factory, smtp, settle, role):
    smtp.replies = ["550 5.1.1 No such user"]
    queued = await queue_message(await new_customer())
    await settle()
    _, token = await staff_factory(role)
    refused = (await gql(RETRY, {"input": {"id": gid(queued)}}, token=token))["retryNotification"]
    assert [e["code"] for e in refused["errors"]] == ["FORBIDDEN"]
    assert "ADMIN" in refused["errors"][0]["message"] and "MANAGER" in refused["errors"][0]["message"]
    assert (await Notification.get(id=queued.id)).status == NotificationStatus.FAILED


async def test_retrying_an_unknown_notification_is_not_found(gql, admin, settle):
    queued = await queue_message(await new_customer())
    await settle()
    for wrong in (to_global_id("Notification", queued.id + 1), to_global_id("Customer", queued.customer_id)):
        result = (await gql(RETRY, {"input": {"id": wrong}}, token=admin[1]))["retryNotification"]
        assert [(e["code"], e["field"]) for e in result["errors"]] == [("NOT_FOUND", ["id"])]


async def test_the_complaint_extension_notification_is_delivered(gql, admin, staff_factory, smtp, settle):
    _, admin_token = admin
    _, handler_token = await staff_factory(Role.COMPLAINT_HANDLER, department="COMPLAINTS")
    customer = await new_complaint_customer(gql, admin_token, preferredChannel="EMAIL")
    complaint = await file(gql, admin_token, customer["id"])
    extended = await do(gql, handler_token, "extend", id=complaint["id"], reason="需调取监控录像")
    assert extended["errors"] == []
    await settle()

    [email] = smtp.messages
    assert email["To"].lower() == EMAIL and email["Subject"] == "投诉处理时限延长 / Complaint deadline extended"
    assert complaint["referenceNo"] in email.get_content()
    [node] = [e["node"] for e in (await listed(gql, admin_token, customerId=customer["id"]))["edges"]]
    assert (node["status"], node["channel"], node["recipient"]) == ("SENT", "EMAIL", "Z***@example.com")


async def test_metrics_count_notifications_by_channel_and_status(client, smtp, gateway, settle):
    customer = await new_customer()
    smtp.replies = ["550 5.1.1 No such user"]
    await queue_message(customer)
    await settle()
    for _ in range(2):
        await queue_message(customer, Channel.SMS)
    await queue_message(customer)
    await settle()

    text = (await client.get("/metrics")).text
    assert 'crm_notifications{channel="EMAIL",status="SENT"} 1.0' in text
    assert 'crm_notifications{channel="EMAIL",status="FAILED"} 1.0' in text
    assert 'crm_notifications{channel="EMAIL",status="QUEUED"} 0.0' in text
    assert 'crm_notifications{channel="SMS",status="SENT"} 2.0' in text
    assert 'crm_notifications{channel="SMS",status="FAILED"} 0.0' in text
    assert 'channel="LETTER"' not in text

    await Notification.filter(channel=Channel.SMS).delete()
    text = (await client.get("/metrics")).text
    assert 'channel="SMS"' not in text and 'crm_notifications{channel="EMAIL",status="SENT"} 1.0' in text
