"""Survey campaigns: launchSurveyCampaign over HTTP (the filter, suppression counted by reason, scoping, roles,
refusals, progress and result on the Job), then the SURVEY_CAMPAIGN handler itself: re-delivery after a crash,
a rolled-back checkpoint, a second delivery alongside, a launcher who left, a template retired mid-way, and
what a batch costs (bounded reads, never every customer at once)."""

from __future__ import annotations

import itertools
import re

import pytest

from core.db import atomic
from models.customers import Customer, CustomerStatus
from models.jobs import Job, JobStatus
from models.notifications import Notification, NotificationStatus
from models.staff import Role
from models.surveys import InvitationStatus, QuestionType, SurveyInvitation, SurveyKind, SurveyTemplate
from services import access, customers as customer_service, jobs as job_service, survey_campaigns, surveys
from services.access import Caller
from services.customer_erasure import erase
from tests.complaints.helpers import new_customer
from tests.conftest import StatementCounter, make_staff
from tests.jobs.helpers import wait_for_job
from tests.segments.helpers import create_segment, update_raw as update_segment
from tests.surveys.helpers import create_template, gid, pk, send

LAUNCH = """mutation($input: LaunchSurveyCampaignInput!) { launchSurveyCampaign(input: $input) {
  job { id kind status total processed } errors { field message code } } }"""
SET_CONSENTS = """mutation($input: SetConsentsInput!) { setConsents(input: $input) { errors { field code } } }"""
HERE, THERE = "北京朝阳支行", "上海浦东支行"
_numbers = itertools.count(1)


async def _noop_publish(channel: str, message: dict) -> None:
    return None


async def _launch_raw(gql, token: str, template_id: str, **fields) -> dict:
    return (await gql(LAUNCH, {"input": {"templateId": template_id, **fields}}, token=token))["launchSurveyCampaign"]


async def _launch(gql, token: str, template_id: str, **fields) -> dict:
    """The campaign launched and run to its end by the embedded worker: the Job as the API shows it."""
    payload = await _launch_raw(gql, token, template_id, **fields)
    assert payload["errors"] == [], payload["errors"]
    assert (payload["job"]["kind"], payload["job"]["status"]) == ("SURVEY_CAMPAIGN", "QUEUED")
    return await wait_for_job(gql, token, payload["job"]["id"])


def _result(customers: int, invited: int, suppressed: int = 0, skipped: int = 0, by: dict | None = None) -> dict:
    return {
        "customers": customers,
        "invited": invited,
        "suppressed": suppressed,
        "skipped": skipped,
        "suppressedBy": by or {},
    }


async def _invited(job_id: str | int) -> dict[int, SurveyInvitation]:
    """Customer id -> the campaign's invitation, checking that nobody has two."""
    rows = await SurveyInvitation.filter(campaign_id=job_id if isinstance(job_id, int) else pk(job_id))
    by_customer = {r.customer_id: r for r in rows}
    assert len(by_customer) == len(rows), "a customer was invited twice by one campaign"
    return by_customer


async def _revoke(gql, token: str, customer_id: str) -> None:
    consent = {"purpose": "SURVEY", "granted": False, "source": "客户来电"}
    result = await gql(SET_CONSENTS, {"input": {"customerId": customer_id, "consents": [consent]}}, token=token)
    assert result["setConsents"]["errors"] == []


# ---------------------------------------------------------------- over HTTP


async def test_a_campaign_invites_exactly_the_visible_customers_of_its_filter(gql, admin, outbox):
    member, token = admin
    template = await create_template(gql, token)
    wanted = [await new_customer(gql, token, branch=HERE, riskLevel="C3") for _ in range(3)]
    await new_customer(gql, token, branch=HERE, riskLevel="C5")  # another risk level
    await new_customer(gql, token, branch=THERE, riskLevel="C3")  # another branch
    job = await _launch(gql, token, template["id"], filter={"branch": HERE, "riskLevel": ["C3"]})

    assert job["status"] == "SUCCEEDED", job["errors"]
    assert (job["total"], job["processed"], job["failed"], job["progress"]) == (3, 3, 0, 1.0)
    assert job["result"] == _result(3, 3)
    assert job["createdBy"]["username"] == member.username
    invited = await _invited(job["id"])
    assert set(invited) == {pk(c["id"]) for c in wanted}
    assert {i.status for i in invited.values()} == {InvitationStatus.PENDING}
    assert {i.template_id for i in invited.values()} == {pk(template["id"])}
    assert {i.created_by_id for i in invited.values()} == {member.id}
    notifications = await Notification.filter(id__in=[i.notification_id for i in invited.values()])
    assert len(notifications) == 3 and {n.status for n in notifications} == {NotificationStatus.QUEUED}
    # The batch's notifications go to the workers together once the batch commits.
    assert outbox == [("send_notifications", sorted(n.id for n in notifications))]
    # The job stores the filter, not the customers.
    row = await Job.get(id=pk(job["id"]))
    assert row.params == {"template_id": pk(template["id"]), "filter": {"branch": HERE, "risk_level": ["C3"]},
                          "channel": None, "segment_id": None}  # fmt: skip
    assert row.checkpoint == max(invited)


async def test_suppressed_customers_are_counted_by_reason(gql, admin, outbox):
    _, token = admin
    template = await create_template(gql, token)
    other = await create_template(gql, token, name="上个月的调查")
    fine = await new_customer(gql, token)
    revoked = await new_customer(gql, token)
    await _revoke(gql, token, revoked["id"])
    closed = await new_customer(gql, token)
    await Customer.filter(id=pk(closed["id"])).update(status=CustomerStatus.CLOSED)
    erased = await new_customer(gql, token)
    await erase(access.COMMAND_LINE, pk(erased["id"]), "PIPL art. 47 request")
    unreachable = await new_customer(gql, token, phone=None, email=None)
    recent = await new_customer(gql, token)
    assert (await send(gql, token, other["id"], recent["id"]))["status"] == "PENDING"

    job = await _launch(gql, token, template["id"])  # no filter: everyone the launcher may see
    by = {"CONSENT_REVOKED": 1, "CUSTOMER_CLOSED": 2, "NO_ADDRESS": 1, "SURVEYED_RECENTLY": 1}
    assert job["result"] == _result(6, 1, suppressed=5, by=by)
    assert (job["status"], job["total"], job["processed"]) == ("SUCCEEDED", 6, 6)
    invited = await _invited(job["id"])

    def reason(customer: dict) -> str | None:
        return invited[pk(customer["id"])].suppressed_reason

    assert reason(revoked).startswith("SURVEY consent is revoked")
    assert reason(closed) == "The customer is CLOSED" and reason(erased) == "The customer is ERASED"
    assert reason(unreachable).startswith("No e-mail address or mobile number")
    assert reason(recent).startswith("Got another survey on ")
    assert invited[pk(fine["id"])].status == InvitationStatus.PENDING
    suppressed = [i for i in invited.values() if i.status == InvitationStatus.SUPPRESSED]
    assert len(suppressed) == 5 and all(i.notification_id is None and i.token_hash is None for i in suppressed)
    assert await Notification.filter(customer_id=pk(fine["id"])).count() == 1


async def test_a_requested_channel_applies_to_every_customer(gql, admin, outbox):
    _, token = admin
    template = await create_template(gql, token)
    texted = await new_customer(gql, token, preferredChannel="EMAIL")
    no_phone = await new_customer(gql, token, phone=None)
    job = await _launch(gql, token, template["id"], channel="SMS")
    assert job["result"] == _result(2, 1, suppressed=1, by={"NO_ADDRESS": 1})
    invited = await _invited(job["id"])
    assert invited[pk(texted["id"])].channel.value == "SMS"
    assert invited[pk(no_phone["id"])].suppressed_reason == "No mobile number on file for SMS"


async def test_launchers_are_bank_wide_and_their_filter_is_honoured(gql, admin, staff_factory, outbox):
    _, token = admin
    template = await create_template(gql, token)
    here = [await new_customer(gql, token, branch=HERE) for _ in range(2)]
    there = [await new_customer(gql, token, branch=THERE) for _ in range(2)]
    _, manager_token = await staff_factory(Role.MANAGER, branch=HERE)
    everyone = await _launch(gql, manager_token, template["id"])
    assert set(await _invited(everyone["id"])) == {pk(c["id"]) for c in here + there}

    _, analyst = await staff_factory(Role.ANALYST, branch=HERE)
    await SurveyInvitation.all().delete()  # the 30-day rule would suppress them all now
    theirs = await _launch(gql, analyst, template["id"], filter={"branch": THERE})
    assert set(await _invited(theirs["id"])) == {pk(c["id"]) for c in there}
    assert theirs["result"] == _result(2, 2)


async def test_a_branch_bound_launcher_would_reach_only_their_branch(gql, admin, staff_factory, outbox, monkeypatch):
    """No launcher is branch-bound today (access.BRANCH_BOUND); the campaign scopes its audience exactly like the
    customers list all the same, so that it keeps to a branch the day a launcher is bound to one."""
    _, token = admin
    template = await create_template(gql, token)
    here = await new_customer(gql, token, branch=HERE)
    await new_customer(gql, token, branch=THERE)
    monkeypatch.setattr(access, "BRANCH_BOUND", access.BRANCH_BOUND | {Role.MANAGER})
    _, manager = await staff_factory(Role.MANAGER, branch=HERE)
    job = await _launch(gql, manager, template["id"])
    assert set(await _invited(job["id"])) == {pk(here["id"])}
    # A filter naming another branch finds nobody: it narrows what the launcher sees, never widens it.
    await SurveyInvitation.all().delete()
    elsewhere = await _launch(gql, manager, template["id"], filter={"branch": THERE})
    assert (elsewhere["status"], elsewhere["total"], elsewhere["result"]) == ("SUCCEEDED", 0, _result(0, 0))


async def test_a_campaign_over_a_segment_invites_its_members(gql, admin, outbox):
    _, token = admin
    template = await create_template(gql, token)
    wanted = [await new_customer(gql, token, branch=HERE, tags=["VIP"]) for _ in range(2)]
    await new_customer(gql, token, branch=HERE)  # no tag
    await new_customer(gql, token, branch=THERE, tags=["VIP"])  # another branch
    segment = await create_segment(gql, token, name="朝阳VIP", filter={"branch": HERE, "tags": ["VIP"]})
    assert segment["size"] == 2
    job = await _launch(gql, token, template["id"], segmentId=segment["id"])
    assert (job["status"], job["total"], job["result"]) == ("SUCCEEDED", 2, _result(2, 2))
    assert set(await _invited(job["id"])) == {pk(c["id"]) for c in wanted}
    # The job holds the segment's filter as it was at launch, and which segment it came from.
    row = await Job.get(id=pk(job["id"]))
    assert row.params == {"template_id": pk(template["id"]), "filter": {"branch": HERE, "tags": ["VIP"]},
                          "channel": None, "segment_id": pk(segment["id"])}  # fmt: skip


async def test_a_segment_edited_or_deleted_after_launch_does_not_change_the_campaign(gql, admin, outbox):
    member, token = admin
    template = await create_template(gql, token)
    here = await new_customer(gql, token, branch=HERE)
    await new_customer(gql, token, branch=THERE)
    segment = await create_segment(gql, token, filter={"branch": HERE})
    async with atomic():  # launched, not yet run by a worker
        job = await survey_campaigns.start(
            Caller(member), pk(template["id"]), segment_id=pk(segment["id"]), enqueue=lambda job_id: None
        )
    edited = await update_segment(gql, token, segment["id"], filter={"branch": THERE})
    assert edited["errors"] == [] and edited["segment"]["filter"] == {"branch": THERE}
    await job_service.run(job.id, _noop_publish)
    assert set(await _invited(job.id)) == {pk(here["id"])}

    async with atomic():
        job = await survey_campaigns.start(
            Caller(member), pk(template["id"]), segment_id=pk(segment["id"]), enqueue=lambda job_id: None
        )
    await gql(
        "mutation($id: ID!) { deleteSegment(input: {id: $id}) { deletedId } }", {"id": segment["id"]}, token=token
    )
    await SurveyInvitation.all().delete()  # the 30-day rule would suppress them now
    await job_service.run(job.id, _noop_publish)
    finished = await Job.get(id=job.id)
    assert finished.status == JobStatus.SUCCEEDED and finished.params["filter"] == {"branch": THERE}
    assert set(await _invited(job.id)) == set(await Customer.filter(branch=THERE).values_list("id", flat=True))


@pytest.mark.parametrize("role", sorted(Role, key=lambda r: r.value))
async def test_who_may_launch_a_campaign(gql, admin, staff_factory, outbox, role):
    _, token = admin
    template = await create_template(gql, token)
    await new_customer(gql, token)
    _, caller = await staff_factory(role)
    payload = await _launch_raw(gql, caller, template["id"])
    if role in access.CAMPAIGN_LAUNCHERS:
        assert payload["errors"] == [] and payload["job"]["status"] == "QUEUED"
        assert (await wait_for_job(gql, caller, payload["job"]["id"]))["result"]["invited"] == 1
    else:
        assert payload["job"] is None and [e["code"] for e in payload["errors"]] == ["FORBIDDEN"]
        assert "ADMIN" in payload["errors"][0]["message"]
        assert await Job.all().count() == 0


async def test_refusals_queue_nothing(gql, admin, outbox):
    _, token = admin
    template = await create_template(gql, token)
    await new_customer(gql, token)

    def problems(payload: dict) -> list[tuple[list[str], str]]:
        assert payload["job"] is None
        return [(e["field"], e["code"]) for e in payload["errors"]]

    segment = await create_segment(gql, token, filter={"branch": HERE})
    both = await _launch_raw(gql, token, template["id"], segmentId=segment["id"], filter={"branch": HERE})
    assert problems(both) == [(["segmentId"], "INVALID")] and "not both" in both["errors"][0]["message"]
    gone = gid("Segment", pk(segment["id"]) + 99)
    assert problems(await _launch_raw(gql, token, template["id"], segmentId=gone)) == [(["segmentId"], "NOT_FOUND")]
    for not_a_segment in ("nonsense", gid("SurveyTemplate", pk(template["id"]))):
        refused = await _launch_raw(gql, token, template["id"], segmentId=not_a_segment)
        assert problems(refused) == [(["segmentId"], "NOT_FOUND")]
    assert problems(await _launch_raw(gql, token, template["id"], channel="WECHAT")) == [(["channel"], "INVALID")]
    unknown = await _launch_raw(gql, token, gid("SurveyTemplate", pk(template["id"]) + 99))
    assert problems(unknown) == [(["templateId"], "NOT_FOUND")]
    bad_manager = await _launch_raw(gql, token, template["id"], filter={"relationshipManagerId": "nonsense"})
    assert problems(bad_manager) == [(["filter", "relationshipManagerId"], "NOT_FOUND")]
    await SurveyTemplate.filter(id=pk(template["id"])).update(active=False)
    inactive = await _launch_raw(gql, token, template["id"])
    assert problems(inactive) == [(["templateId"], "INVALID")] and "inactive" in inactive["errors"][0]["message"]
    assert await Job.all().count() == 0 and await SurveyInvitation.all().count() == 0


async def test_progress_is_published_batch_by_batch(gql, admin, outbox, monkeypatch):
    member, token = admin
    monkeypatch.setattr(survey_campaigns, "BATCH_CUSTOMERS", 2)
    template = await create_template(gql, token)
    ids = sorted([pk((await new_customer(gql, token))["id"]) for _ in range(5)])
    seen: list[tuple[int, int | None, int]] = []

    async def publish(channel: str, message: dict) -> None:
        row = await Job.get(id=message["id"])
        seen.append((row.processed, row.total, row.checkpoint))

    async with atomic():
        job = await survey_campaigns.start(Caller(member), pk(template["id"]), enqueue=lambda job_id: None)
    await job_service.run(job.id, publish)
    # Read back inside each batch's transaction: processed and the checkpoint move together.
    assert sorted({s for s in seen if s[2]}) == [(2, 5, ids[1]), (4, 5, ids[3]), (5, 5, ids[4])]
    finished = await Job.get(id=job.id)
    assert finished.status == JobStatus.SUCCEEDED and job_service.progress_of(finished) == 1.0


# ---------------------------------------------------------------- the handler: crashes and re-delivery


class WorkerDied(BaseException):
    """Like a worker killed mid-job (SIGKILL, time limit): escapes the job runner, the job stays RUNNING."""


async def _customers(count: int, **fields) -> list[int]:
    """`count` reachable customers written straight to the database (ids ascending)."""
    objects = [
        Customer(
            customer_no=f"C{next(_numbers):010d}",
            kind="INDIVIDUAL",
            name="张伟",
            email=f"c{n}@example.com",
            phone="13812345678",
            branch=HERE,
            **fields,
        )
        for n in range(count)
    ]
    await Customer.bulk_create(objects)
    return sorted(await Customer.filter(customer_no__in=[c.customer_no for c in objects]).values_list("id", flat=True))


async def _start(member, template_id: int, customer_filter=None) -> Job:
    async with atomic():
        return await survey_campaigns.start(Caller(member), template_id, customer_filter, enqueue=lambda job_id: None)


async def _run(job_id: int) -> Job:
    await job_service.run(job_id, _noop_publish)
    return await Job.get(id=job_id)


@pytest.fixture
async def launcher(app):
    return await make_staff(Role.MANAGER)


@pytest.fixture
async def template(launcher) -> SurveyTemplate:
    questions = [{"key": "nps", "text": "您有多大可能向亲友推荐我行？", "type": QuestionType.NPS}]
    return await surveys.create_template(
        Caller(launcher), name="客户推荐度调查", kind=SurveyKind.NPS, questions=questions
    )


def _announced(outbox: list[tuple]) -> int:
    """How many notifications the workers were told of (a message names a batch of them)."""
    return sum(len(ids) for name, ids in outbox if name == "send_notifications")


def _dies_in_batch(monkeypatch, number: int) -> None:
    """The worker dies inside the `number`th batch, after its invitations were written, before it commits."""
    original = surveys.invite_many
    calls = {"n": 0}

    async def invite_many(*args, **kwargs):
        calls["n"] += 1
        written = await original(*args, **kwargs)
        if calls["n"] == number:
            raise WorkerDied
        return written

    monkeypatch.setattr(surveys, "invite_many", invite_many)


async def test_a_redelivered_campaign_resumes_after_its_checkpoint(launcher, template, outbox, monkeypatch):
    monkeypatch.setattr(survey_campaigns, "BATCH_CUSTOMERS", 2)
    ids = await _customers(7)
    job = await _start(launcher, template.id)
    _dies_in_batch(monkeypatch, 3)
    with pytest.raises(WorkerDied):
        await job_service.run(job.id, _noop_publish)

    crashed = await Job.get(id=job.id)
    assert (crashed.status, crashed.checkpoint, crashed.processed, crashed.total) == (JobStatus.RUNNING, ids[3], 4, 7)
    assert crashed.result == _result(4, 4)
    assert set(await _invited(job.id)) == set(ids[:4])  # the third batch was rolled back with its checkpoint
    assert _announced(outbox) == 4  # ... and nothing of it reached the workers

    monkeypatch.undo()
    monkeypatch.setattr(survey_campaigns, "BATCH_CUSTOMERS", 2)
    finished = await _run(job.id)  # the message is delivered again
    assert (finished.status, finished.attempts, finished.processed, finished.total) == (JobStatus.SUCCEEDED, 2, 7, 7)
    assert finished.result == _result(7, 7)
    assert set(await _invited(job.id)) == set(ids)
    assert await Notification.all().count() == 7 and _announced(outbox) == 7

    again = await _run(job.id)  # a finished campaign delivered once more changes nothing
    assert (again.attempts, again.result) == (2, finished.result)
    assert await SurveyInvitation.all().count() == 7


async def test_a_checkpoint_that_fell_behind_never_invites_anyone_twice(launcher, template, outbox, monkeypatch):
    """Whatever the checkpoint says, the (campaign, customer) key keeps each customer to one invitation; those
    invited already are counted as skipped."""
    monkeypatch.setattr(survey_campaigns, "BATCH_CUSTOMERS", 2)
    ids = await _customers(7)
    job = await _start(launcher, template.id)
    _dies_in_batch(monkeypatch, 3)
    with pytest.raises(WorkerDied):
        await job_service.run(job.id, _noop_publish)
    # As if the second batch's invitations had committed without its checkpoint and counts.
    await Job.filter(id=job.id).update(checkpoint=ids[1], processed=2, result=_result(2, 2))

    monkeypatch.undo()
    monkeypatch.setattr(survey_campaigns, "BATCH_CUSTOMERS", 2)
    finished = await _run(job.id)
    assert finished.status == JobStatus.SUCCEEDED
    assert finished.result == _result(7, 5, skipped=2)
    assert set(await _invited(job.id)) == set(ids)
    assert await Notification.all().count() == 7


async def test_a_customer_another_delivery_invites_meanwhile_is_skipped_alone(launcher, template, outbox, monkeypatch):
    """The batch is written with one statement per table; when the (campaign, customer) key refuses it, it is
    written again customer by customer, and only the one taken is skipped."""
    ids = await _customers(3)
    job = await _start(launcher, template.id)
    batch = await Customer.filter(id__in=ids).order_by("id")
    original = surveys.plan

    async def another_delivery_invites_the_second_meanwhile(template_, todo, *args, **kwargs):
        monkeypatch.setattr(surveys, "plan", original)  # once
        plans = await original(template_, todo, *args, **kwargs)
        await surveys.invite(template_, batch[1], campaign_id=job.id)
        return plans

    monkeypatch.setattr(surveys, "plan", another_delivery_invites_the_second_meanwhile)
    written = await surveys.invite_many(template, batch, campaign_id=job.id)

    assert sorted(i.customer_id for i in written) == [ids[0], ids[2]]
    assert sorted(i.customer_id for i in await SurveyInvitation.filter(campaign_id=job.id)) == ids
    assert await Notification.all().count() == 3 and _announced(outbox) == 3  # the refused write queued nothing


async def test_a_second_delivery_running_alongside_stops_without_touching_the_job(
    launcher, template, outbox, monkeypatch
):
    monkeypatch.setattr(survey_campaigns, "BATCH_CUSTOMERS", 2)
    await _customers(5)
    job = await _start(launcher, template.id)
    original = survey_campaigns._run_batch

    async def other_worker_commits_meanwhile(progress, *args):
        if progress.job.checkpoint == 0:
            await Job.filter(id=progress.job.id).update(checkpoint=10**6, processed=5)
        return await original(progress, *args)

    monkeypatch.setattr(survey_campaigns, "_run_batch", other_worker_commits_meanwhile)
    with pytest.raises(survey_campaigns.Superseded):
        await job_service.run(job.id, _noop_publish)
    row = await Job.get(id=job.id)
    assert (row.status, row.checkpoint, row.processed) == (JobStatus.RUNNING, 10**6, 5)
    assert await SurveyInvitation.all().count() == 0


async def test_the_campaign_acts_as_its_launcher_is_now(launcher, template, outbox):
    await _customers(2)
    demoted = await _start(launcher, template.id)
    launcher.role = Role.RELATIONSHIP_MANAGER
    await launcher.save()
    failed = await _run(demoted.id)
    assert failed.status == JobStatus.FAILED
    assert "The staff member who asked for this campaign may no longer do it" in failed.errors[-1]["message"]

    left = await _start(launcher := await make_staff(Role.ANALYST), template.id)
    launcher.active = False
    await launcher.save()
    gone = await _run(left.id)
    assert gone.status == JobStatus.FAILED
    assert "The staff member who asked for this campaign is no longer active" in gone.errors[-1]["message"]
    assert await SurveyInvitation.all().count() == 0


async def test_a_template_retired_mid_campaign_stops_it(launcher, template, outbox, monkeypatch):
    monkeypatch.setattr(survey_campaigns, "BATCH_CUSTOMERS", 2)
    ids = await _customers(5)
    job = await _start(launcher, template.id)
    original = surveys.invite_many

    async def retired_after_the_first_batch(*args, **kwargs):
        written = await original(*args, **kwargs)
        await SurveyTemplate.filter(id=template.id).update(active=False)
        return written

    monkeypatch.setattr(surveys, "invite_many", retired_after_the_first_batch)
    stopped = await _run(job.id)
    assert stopped.status == JobStatus.FAILED and "inactive" in stopped.errors[-1]["message"]
    assert (stopped.processed, stopped.result) == (2, _result(2, 2))  # what was sent stays sent
    assert set(await _invited(job.id)) == set(ids[:2])


# ---------------------------------------------------------------- the handler: what a batch costs


async def test_customers_are_read_in_bounded_batches(launcher, template, outbox, monkeypatch):
    monkeypatch.setattr(survey_campaigns, "BATCH_CUSTOMERS", 4)
    await _customers(10)
    sizes: list[int] = []
    original = surveys.invite_many

    async def invite_many(template_, batch, **kwargs):
        sizes.append(len(batch))
        return await original(template_, batch, **kwargs)

    monkeypatch.setattr(surveys, "invite_many", invite_many)
    job = await _start(launcher, template.id)
    with StatementCounter() as counter:
        finished = await _run(job.id)
    assert finished.result == _result(10, 10)
    assert sizes == [4, 4, 2]
    reads = [s for s in counter.reads() if re.search(r'FROM "customer"', s) and "COUNT(" not in s.upper()]
    assert len(reads) == 3  # one per batch (the last one, short, ends it)
    assert all(re.search(r"LIMIT (4|\?|\$\d+)", s) for s in reads), reads
    assert all('"id">' in s.replace(" ", "") for s in reads), reads  # keyset: after the checkpoint


async def test_a_batch_costs_a_constant_number_of_reads_whatever_its_size(launcher, template, outbox, monkeypatch):
    """Consents, the 30-day rule and who was invited already are read once per batch, not once per customer;
    what grows with the batch is the writing: the invitation and its notification (services.surveys)."""

    async def statements(customers: int) -> tuple[int, int]:
        await SurveyInvitation.all().delete()
        await Notification.all().delete()
        await Customer.all().delete()
        await _customers(customers)
        monkeypatch.setattr(survey_campaigns, "BATCH_CUSTOMERS", customers)  # one full batch, one empty
        job = await _start(launcher, template.id)
        with StatementCounter() as counter:
            finished = await _run(job.id)
        assert finished.result == _result(customers, customers)
        return len(counter.reads()), len(counter.sent) - len(counter.reads())

    few_reads, few_writes = await statements(3)
    many_reads, many_writes = await statements(12)
    assert few_reads == many_reads, (few_reads, many_reads)
    assert many_reads <= 20, many_reads
    # The writes per customer are a small constant (an invitation, its notification, the link between them).
    per_customer = (many_writes - few_writes) / (12 - 3)
    assert per_customer <= 5, per_customer


async def test_the_stored_filter_is_the_one_given(launcher, template, outbox):
    ids = await _customers(3)
    await Customer.filter(id=ids[0]).update(status=CustomerStatus.DORMANT)
    chosen = customer_service.CustomerFilter(status=[CustomerStatus.ACTIVE])
    job = await _run((await _start(launcher, template.id, chosen)).id)
    assert job.params["filter"] == {"status": ["ACTIVE"]}
    assert set(await _invited(job.id)) == set(ids[1:])
