from __future__ import annotations

import strawberry
from strawberry.types import Info

from models.surveys import (
    InvitationStatus as InvitationStatusEnum,
    QuestionType as QuestionTypeEnum,
    SurveyKind as SurveyKindEnum,
    SurveyTrigger as SurveyTriggerEnum,
)
from resolvers import survey_stats as survey_stats_resolvers
from resolvers.common import caller_of
from resolvers.customers import CUSTOMER_FILTER
from schema.base import Connection, int_pk, require_pk
from schema.conventions import mutation
from schema.jobs import Job, JobPayload
from schema.permissions import allow
from schema.survey_stats import SurveyStatBucket
from schema.surveys import (
    CreateSurveyTemplateInput,
    InvitationStatus,
    LaunchSurveyCampaignInput,
    PublicSurvey,
    SendSurveyInput,
    SubmitSurveyResponseInput,
    SubmitSurveyResponsePayload,
    SurveyInvitation,
    SurveyInvitationPayload,
    SurveyTemplate,
    SurveyTemplatePayload,
    UpdateSurveyTemplateInput,
)
from services import access, limits, survey_campaigns, surveys as survey_service
from services.pagination import OrderKey, paginate

NEWEST_FIRST = [OrderKey("created_at", True), OrderKey("id", True)]


async def survey_templates(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Connection[SurveyTemplate]:
    qs = survey_service.templates(await caller_of(info))
    page = await paginate(qs, NEWEST_FIRST, first=first, after=after, last=last, before=before)
    return Connection.of(page, SurveyTemplate.from_model)


async def survey_invitations(
    info: Info,
    template_id: strawberry.ID | None = None,
    status: list[InvitationStatus] | None = None,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Connection[SurveyInvitation]:
    caller = await caller_of(info)
    qs = survey_service.visible_invitations(caller)
    template_pk = None
    if template_id is not None:
        template_pk = require_pk(template_id, "SurveyTemplate", "templateId")
    wanted = survey_service.InvitationFilter(
        template_id=template_pk, status=[InvitationStatusEnum(s.value) for s in status] if status else None
    )
    page = await paginate(
        survey_service.apply_filter(qs, wanted), NEWEST_FIRST, first=first, after=after, last=last, before=before
    )
    return Connection.of(page, SurveyInvitation.from_model)


async def survey_by_token(info: Info, token: str) -> PublicSurvey | None:
    with limits.retry_after_on(info.context.response):  # the service limits per address and per link
        found = await survey_service.public_survey(token, ip=info.context.ip)
    return PublicSurvey.from_service(found) if found else None


async def create_survey_template(info: Info, input: CreateSurveyTemplateInput) -> SurveyTemplatePayload:
    created = await survey_service.create_template(
        await caller_of(info),
        name=input.name,
        kind=SurveyKindEnum(input.kind.value),
        trigger=SurveyTriggerEnum(input.trigger.value) if input.trigger else None,
        questions=[
            {
                "key": q.key,
                "text": q.text,
                "type": QuestionTypeEnum(q.type.value),
                "required": q.required,
                "options": q.options,
            }
            for q in input.questions
        ],
        valid_days=input.valid_days,
    )
    return SurveyTemplatePayload(template=SurveyTemplate.from_model(created))


async def update_survey_template(info: Info, input: UpdateSurveyTemplateInput) -> SurveyTemplatePayload:
    updated = await survey_service.update_template(
        await caller_of(info),
        require_pk(input.id, "SurveyTemplate"),
        name=input.name,
        active=input.active,
        valid_days=input.valid_days,
    )
    return SurveyTemplatePayload(template=SurveyTemplate.from_model(updated))


async def send_survey(info: Info, input: SendSurveyInput) -> SurveyInvitationPayload:
    complaint_pk = None
    if input.complaint_id is not None:
        complaint_pk = require_pk(input.complaint_id, "Complaint", "complaintId")
    invitation = await survey_service.send(
        await caller_of(info),
        require_pk(input.template_id, "SurveyTemplate", "templateId"),
        require_pk(input.customer_id, "Customer", "customerId"),
        channel=input.channel,
        complaint_id=complaint_pk,
    )
    return SurveyInvitationPayload(invitation=SurveyInvitation.from_model(invitation))


async def launch_survey_campaign(info: Info, input: LaunchSurveyCampaignInput) -> JobPayload:
    # A segmentId of anything else names no segment (0): the service says NOT_FOUND, after "not both".
    segment_pk = None if input.segment_id is None else int_pk(input.segment_id, "Segment") or 0
    job = await survey_campaigns.start(
        await caller_of(info),
        require_pk(input.template_id, "SurveyTemplate", "templateId"),
        None if input.filter is None else CUSTOMER_FILTER.to_service(input.filter, ("filter",)),
        segment_id=segment_pk,
        channel=input.channel,
        enqueue=info.context.enqueue("run_job"),
    )
    return JobPayload(job=Job.from_model(job))


async def submit_survey_response(info: Info, input: SubmitSurveyResponseInput) -> SubmitSurveyResponsePayload:
    answers = [
        survey_service.Answer(a.question_key, number=a.number, text=a.text, choices=a.choices) for a in input.answers
    ]
    with limits.retry_after_on(info.context.response):  # the service limits per address and per link
        await survey_service.submit(input.token, answers, input.comment, ip=info.context.ip)
    return SubmitSurveyResponsePayload(accepted=True)


@strawberry.type
class Query:
    survey_templates: Connection[SurveyTemplate] = strawberry.field(
        resolver=survey_templates, extensions=allow(access.SURVEY_READERS)
    )
    survey_invitations: Connection[SurveyInvitation] = strawberry.field(
        resolver=survey_invitations, extensions=allow(access.SURVEY_READERS)
    )
    survey_stats: list[SurveyStatBucket] = strawberry.field(
        resolver=survey_stats_resolvers.survey_stats, extensions=allow(access.SURVEY_READERS)
    )
    survey_by_token: PublicSurvey | None = strawberry.field(
        resolver=survey_by_token, description="Public: opened from the link in a survey invitation."
    )


@strawberry.type
class Mutation:
    create_survey_template: SurveyTemplatePayload = mutation(
        "survey.template.create", access.SURVEY_TEMPLATE_EDITORS, resolver=create_survey_template
    )
    update_survey_template: SurveyTemplatePayload = mutation(
        "survey.template.update", access.SURVEY_TEMPLATE_EDITORS, resolver=update_survey_template
    )
    send_survey: SurveyInvitationPayload = mutation("survey.send", access.SURVEY_SENDERS, resolver=send_survey)
    launch_survey_campaign: JobPayload = mutation(
        "survey.campaign", access.CAMPAIGN_LAUNCHERS, resolver=launch_survey_campaign
    )
    # Public, like login: the service runs its own transaction after the rate limits counted the attempt.
    submit_survey_response: SubmitSurveyResponsePayload = mutation(
        None, None, public=True, resolver=submit_survey_response
    )
