"""Survey campaigns (docs/DOMAIN.md "Surveys and notifications"): `launchSurveyCampaign` sends a template to every
customer of a CustomerFilter or of a saved segment (services/segments.py) as one SURVEY_CAMPAIGN job.

`start` checks the request and creates the job; `run` is the job handler a worker runs.

Starting (`start`, roles: access.CAMPAIGN_LAUNCHERS)
- The template must exist (NOT_FOUND ["templateId"]) and be active (INVALID ["templateId"]); the channel is
  EMAIL, SMS or none (each customer's own choice, as services.surveys decides it), anything else INVALID
  ["channel"].
- The audience is a segment (`segment_id`; NOT_FOUND ["segmentId"] when there is none) or a filter, not both
  (INVALID ["segmentId"]). No segment and no filter (or an empty one) means every customer the launcher may see.
- A segment's filter is copied into the job when the campaign is launched: editing or deleting the segment
  afterwards does not change whom a queued or running campaign goes to (a resumed job goes on with the filter it
  started with). The segment's members themselves are still read batch by batch as the campaign runs.
- The job's params: {"template_id", "filter": CustomerFilter.to_params(), "channel", "segment_id"} (segment_id
  None for a filter: it only records where the filter came from). The filter is stored, not the customers: the
  worker evaluates it with the same code as the customers list.

Running (`run`)
- Acts as the launcher as they are now (`jobs.requester`): one no longer active, or no longer a launcher, fails
  the job with that message. The audience is `customers.matching(launcher, filter)`, so branch scoping applies
  exactly as in the customers list (and as in a segment's members).
- The customers are read by keyset on id in batches of BATCH_CUSTOMERS (never all at once). Each batch is ONE
  transaction: `surveys.invite_many` (every customer passes the suppression rules: consent checked set-based,
  the 30-day rule in one query; suppressed customers get a SUPPRESSED invitation saying why), the running
  counts in `job.result`, and the checkpoint (the id of the batch's last customer). The invitations'
  notifications go to the workers once the batch commits.
- Re-delivery: a message delivered again after a crash resumes after the checkpoint, with the counts committed
  with it. The (campaign, customer) unique key of the invitation backs it up: whatever happens, a campaign
  invites a customer once (`invite_many` skips those it invited already: "skipped"). A second delivery running
  alongside the first sees the checkpoint move under its lock and stops (`Superseded`), leaving the job to the
  first.
- A template retired while the campaign runs stops it: the next batch fails the job (an inactive template
  sends nothing); what was sent stays sent.
- Progress: total = the audience's count when the job starts; processed = customers done. Result:
  {"customers", "invited", "suppressed", "skipped", "suppressedBy": {rule: count}} where customers = invited +
  suppressed + skipped and the rules are SUPPRESSION_RULES.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tortoise.queryset import QuerySet

from core.db import atomic
from models.customers import Channel, Customer
from models.jobs import Job
from models.surveys import InvitationStatus, SurveyTemplate
from services import access, customers, jobs, segments, surveys
from services.access import Caller, require_role
from services.errors import invalid, not_found

CAMPAIGN_JOB = "SURVEY_CAMPAIGN"  # the job kind
BATCH_CUSTOMERS = 500

# The suppression rules of services.surveys, as the result counts them (`suppressedBy`), in the order they
# are checked; each with the start of the reason `surveys.plan` gives for it.
SUPPRESSION_RULES = {
    "CUSTOMER_CLOSED": "The customer is ",  # CLOSED or ERASED
    "CONSENT_REVOKED": "SURVEY consent is revoked",
    "NO_ADDRESS": "No ",
    "SURVEYED_RECENTLY": "Got another survey",
}
OTHER_RULE = "OTHER"  # a reason none of the above starts (a rule added to services.surveys since)


class Superseded(BaseException):
    """Another delivery of the same campaign committed a batch while this one was running: this one stops at
    once and leaves the job to the other (a BaseException, so that services.jobs.run does not mark the job
    FAILED over the other's progress)."""


# ---------------------------------------------------------------- starting


async def start(
    caller: Caller,
    template_id: int,
    customer_filter: customers.CustomerFilter | None = None,
    *,
    segment_id: int | None = None,
    channel: Channel | None = None,
    enqueue: jobs.Enqueue,
) -> Job:
    """`launchSurveyCampaign`: the SURVEY_CAMPAIGN job (QUEUED; its message is sent once the surrounding
    transaction commits). See the module docstring for the checks."""
    require_role(caller, access.CAMPAIGN_LAUNCHERS)
    if segment_id is not None and customer_filter is not None:
        raise invalid("segmentId", "Give a segmentId or a filter, not both: a campaign goes to one audience")
    if channel is not None and channel not in surveys.LINK_CHANNELS:
        raise invalid("channel", f"A survey goes by EMAIL or SMS (they carry its link), not {channel.value}")
    template = await surveys.get_template(caller, template_id, "templateId")
    if not template.active:
        raise invalid("templateId", f"The survey template {template.name} is inactive: it sends nothing")
    if segment_id is not None:  # its filter as it is now: later edits of the segment do not reach this campaign
        segment = await segments.get(caller, segment_id, "segmentId")
        customer_filter = segments.stored_filter(segment, ("segmentId",))
    params = {
        "template_id": template.id,
        "filter": (customer_filter or customers.CustomerFilter()).to_params(),
        "channel": channel.value if channel is not None else None,
        "segment_id": segment_id,
    }
    return await jobs.create(caller, CAMPAIGN_JOB, params, enqueue)


# ---------------------------------------------------------------- the job handler


def suppression_rule(reason: str) -> str:
    """The SUPPRESSION_RULES key of a suppressed invitation's reason."""
    return next((rule for rule, start in SUPPRESSION_RULES.items() if reason.startswith(start)), OTHER_RULE)


@dataclass
class _Counts:
    customers: int = 0
    invited: int = 0
    suppressed: int = 0
    skipped: int = 0
    suppressed_by: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, result: dict | None) -> _Counts:
        """The counts a previous delivery committed with its checkpoint (none: zeros)."""
        result = result or {}
        return cls(
            customers=result.get("customers", 0),
            invited=result.get("invited", 0),
            suppressed=result.get("suppressed", 0),
            skipped=result.get("skipped", 0),
            suppressed_by=dict(result.get("suppressedBy", {})),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "customers": self.customers,
            "invited": self.invited,
            "suppressed": self.suppressed,
            "skipped": self.skipped,
            "suppressedBy": dict(sorted(self.suppressed_by.items())),
        }


async def _custom_plans() -> None:
    """PostgreSQL: plan this transaction's statements for their actual parameters (as the customer import
    does): the batch queries repeat with the same text (`customer_id IN ($1..$500)`), and a generic plan made
    for the first batches must not stick while the tables grow."""
    connection = Job._meta.db
    if connection.capabilities.dialect == "postgres":
        await connection.execute_script("SET LOCAL plan_cache_mode = force_custom_plan")


async def run(params: dict, progress: jobs.Progress) -> dict:
    """Job handler (SURVEY_CAMPAIGN); see the module docstring. Returns the result counts."""
    job = progress.job
    caller = await jobs.requester(job, access.CAMPAIGN_LAUNCHERS, "this campaign")
    customer_filter = customers.CustomerFilter.from_params(params.get("filter") or {})

    def audience() -> QuerySet[Customer]:
        # Made anew inside each batch: a Tortoise queryset takes its connection when it is made, so one made
        # outside the batch's transaction would run outside it (on SQLite: wait for that transaction forever).
        return customers.matching(caller, customer_filter)

    channel = Channel(params["channel"]) if params.get("channel") else None
    template_id = params["template_id"]
    if job.total is None:  # a fresh start (a resumed job keeps the total it started with)
        await progress.set_total(await audience().count())
    counts = _Counts.of(job.result if job.checkpoint else None)
    while True:
        batch = await _run_batch(progress, audience, template_id, channel, caller, counts)
        if batch < BATCH_CUSTOMERS:
            return counts.as_dict()


async def _run_batch(
    progress: jobs.Progress,
    audience: Callable[[], QuerySet[Customer]],
    template_id: int,
    channel: Channel | None,
    caller: Caller,
    counts: _Counts,
) -> int:
    """The customers after the checkpoint, up to BATCH_CUSTOMERS of them, invited in one transaction with the
    counts and the new checkpoint. Returns how many customers the batch had (fewer than a batch: the end)."""
    job = progress.job
    snapshot = (job.processed, job.checkpoint, job.result, _Counts.of(counts.as_dict()))
    try:
        async with atomic():
            await _custom_plans()
            # One writer per campaign: a second delivery running alongside sees the checkpoint move.
            current = await jobs.locked(job.id)
            if current is not None and current.checkpoint != job.checkpoint:
                raise Superseded(f"job {job.id}: another worker moved the checkpoint to {current.checkpoint}")
            batch = await audience().filter(id__gt=job.checkpoint).order_by("id").limit(BATCH_CUSTOMERS)
            if not batch:
                return 0
            # Read again for each batch: retiring the template stops the campaign.
            template = await SurveyTemplate.get_or_none(id=template_id)
            if template is None:
                raise not_found("Survey template", "templateId")
            written = await surveys.invite_many(
                template, batch, campaign_id=job.id, channel=channel, sender=caller.staff
            )
            counts.customers += len(batch)
            counts.skipped += len(batch) - len(written)
            for invitation in written:
                if invitation.status == InvitationStatus.SUPPRESSED:
                    counts.suppressed += 1
                    rule = suppression_rule(invitation.suppressed_reason or "")
                    counts.suppressed_by[rule] = counts.suppressed_by.get(rule, 0) + 1
                else:
                    counts.invited += 1
            job.processed += len(batch)
            job.result = counts.as_dict()
            await job.save(update_fields=["result"])
            await progress.checkpoint(batch[-1].id)
            return len(batch)
    except BaseException:
        job.processed, job.checkpoint, job.result, restored = snapshot
        counts.__dict__.update(restored.__dict__)
        raise
