from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from models.follow_ups import FollowUp as FollowUpModel
from models.surveys import (
    InvitationStatus as InvitationStatusEnum,
    NpsCategory as NpsCategoryEnum,
    QuestionType as QuestionTypeEnum,
    SurveyInvitation as SurveyInvitationModel,
    SurveyKind as SurveyKindEnum,
    SurveyResponse as SurveyResponseModel,
    SurveyTemplate as SurveyTemplateModel,
    SurveyTrigger as SurveyTriggerEnum,
)
from schema import loaders
from schema.base import Node, UserError, to_global_id
from schema.customers import Channel, CustomerFilter, reveal_text
from schema.follow_ups import FollowUp
from services import surveys as survey_service
from services.access import Caller

if TYPE_CHECKING:
    from schema.complaints import Complaint
    from schema.customers import Customer

SurveyKind = strawberry.enum(SurveyKindEnum, name="SurveyKind")
SurveyTrigger = strawberry.enum(SurveyTriggerEnum, name="SurveyTrigger")
NpsCategory = strawberry.enum(NpsCategoryEnum, name="NpsCategory")


@strawberry.enum
class QuestionType(Enum):
    NPS = strawberry.enum_value(QuestionTypeEnum.NPS.value, description="0 to 10, likelihood to recommend.")
    RATING = strawberry.enum_value(QuestionTypeEnum.RATING.value, description="1 to 5.")
    SINGLE_CHOICE = QuestionTypeEnum.SINGLE_CHOICE.value
    MULTI_CHOICE = QuestionTypeEnum.MULTI_CHOICE.value
    TEXT = QuestionTypeEnum.TEXT.value


@strawberry.enum
class InvitationStatus(Enum):
    PENDING = InvitationStatusEnum.PENDING.value
    SENT = InvitationStatusEnum.SENT.value
    DELIVERY_FAILED = InvitationStatusEnum.DELIVERY_FAILED.value
    RESPONDED = InvitationStatusEnum.RESPONDED.value
    EXPIRED = InvitationStatusEnum.EXPIRED.value
    SUPPRESSED = strawberry.enum_value(
        InvitationStatusEnum.SUPPRESSED.value,
        description="Not sent: no consent, customer closed, or contacted too recently.",
    )


@strawberry.type
class SurveyQuestion:
    key: str
    text: str
    type: QuestionType
    required: bool
    options: list[str]

    @classmethod
    def from_question(cls, q: survey_service.Question) -> SurveyQuestion:
        return cls(
            key=q.key, text=q.text, type=QuestionType(q.type.value), required=q.required, options=list(q.options)
        )


@strawberry.type
class SurveyTemplate(Node):
    id: strawberry.ID
    name: str
    kind: SurveyKind
    trigger: SurveyTrigger
    questions: list[SurveyQuestion]
    active: bool
    valid_days: int = strawberry.field(description="Days an invitation stays answerable.")
    created_at: datetime

    @classmethod
    async def resolve_nodes(cls, caller: Caller, pks: list[int]) -> dict[int, SurveyTemplate]:
        if not survey_service.may_read(caller):
            return {}
        return await cls.nodes_in(survey_service.templates(caller), pks)

    @classmethod
    def from_model(cls, m: SurveyTemplateModel) -> SurveyTemplate:
        return cls(
            id=to_global_id("SurveyTemplate", m.id),
            name=m.name,
            kind=m.kind,
            trigger=m.trigger,
            questions=[SurveyQuestion.from_question(q) for q in survey_service.questions_of(m)],
            active=m.active,
            valid_days=m.valid_days,
            created_at=m.created_at,
        )


@strawberry.type
class SurveyInvitation(Node):
    id: strawberry.ID
    channel: Channel
    status: InvitationStatus
    suppressed_reason: str | None
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    expires_at: datetime
    responded_at: datetime | None
    created_at: datetime
    _m: strawberry.Private[SurveyInvitationModel]

    @strawberry.field
    async def template(self, info: Info) -> SurveyTemplate:
        return SurveyTemplate.from_model(await info.context.loaders.survey_template.load(self._m.template_id))

    @strawberry.field
    async def customer(self, info: Info) -> Annotated[Customer, strawberry.lazy("schema.customers")]:
        from schema.customers import Customer

        return Customer.from_model(await info.context.loaders.customer.load(self._m.customer_id))

    @strawberry.field
    async def complaint(self, info: Info) -> Annotated[Complaint, strawberry.lazy("schema.complaints")] | None:
        from schema.complaints import Complaint

        if self._m.complaint_id is None:
            return None
        return Complaint.from_model(await info.context.loaders.complaint.load(self._m.complaint_id))

    @strawberry.field
    async def response(self, info: Info) -> SurveyResponse | None:
        found = await info.context.loaders.survey_response_of_invitation.load(self._m.id)
        return SurveyResponse.from_model(found) if found else None

    @classmethod
    async def resolve_nodes(cls, caller: Caller, pks: list[int]) -> dict[int, SurveyInvitation]:
        if not survey_service.may_read(caller):
            return {}
        return await cls.nodes_in(survey_service.visible_invitations(caller), pks)

    @classmethod
    def from_model(cls, m: SurveyInvitationModel) -> SurveyInvitation:
        return cls(
            id=to_global_id("SurveyInvitation", m.id),
            channel=m.channel,
            status=InvitationStatus(survey_service.effective_status(m).value),
            suppressed_reason=m.suppressed_reason,
            attempts=m.attempts,
            last_error=m.last_error,
            sent_at=m.sent_at,
            expires_at=m.expires_at,
            responded_at=m.responded_at,
            created_at=m.created_at,
            _m=m,
        )


@strawberry.type
class SurveyAnswer:
    question_key: str
    number: float | None
    text: str | None
    choices: list[str] | None


@strawberry.type
class SurveyResponse(Node):
    id: strawberry.ID
    nps_score: int | None
    nps_category: NpsCategory | None
    csat_score: float | None
    submitted_at: datetime
    _m: strawberry.Private[SurveyResponseModel]

    @strawberry.field
    def answers(self, info: Info) -> list[SurveyAnswer]:
        return [
            SurveyAnswer(
                question_key=a["questionKey"],
                number=a.get("number"),
                text=reveal_text(info, a.get("text")),
                choices=a.get("choices"),
            )
            for a in self._m.answers
        ]

    @strawberry.field
    def comment(self, info: Info) -> str | None:
        return reveal_text(info, self._m.comment)

    @strawberry.field
    async def invitation(self, info: Info) -> SurveyInvitation:
        return SurveyInvitation.from_model(await info.context.loaders.survey_invitation.load(self._m.invitation_id))

    @strawberry.field
    async def customer(self, info: Info) -> Annotated[Customer, strawberry.lazy("schema.customers")]:
        from schema.customers import Customer

        return Customer.from_model(await info.context.loaders.customer.load(self._m.customer_id))

    @strawberry.field(description="The recovery follow-up opened for a detractor or a low rating.")
    async def follow_up(self, info: Info) -> FollowUp | None:
        if self._m.follow_up_id is None:
            return None
        found = await info.context.loaders.survey_follow_up.load(self._m.follow_up_id)
        return FollowUp.from_model(found) if found else None

    @classmethod
    async def resolve_nodes(cls, caller: Caller, pks: list[int]) -> dict[int, SurveyResponse]:
        if not survey_service.may_read(caller):
            return {}
        return await cls.nodes_in(survey_service.visible_responses(caller), pks)

    @classmethod
    def from_model(cls, m: SurveyResponseModel) -> SurveyResponse:
        return cls(
            id=to_global_id("SurveyResponse", m.id),
            nps_score=m.nps_score,
            nps_category=m.nps_category,
            csat_score=m.csat_score,
            submitted_at=m.submitted_at,
            _m=m,
        )


@strawberry.type(description="What a customer sees when opening a survey link; no staff login needed.")
class PublicSurvey:
    title: str
    questions: list[SurveyQuestion]
    customer_display_name: str
    expires_at: datetime
    already_answered: bool

    @classmethod
    def from_service(cls, s: survey_service.PublicSurvey) -> PublicSurvey:
        return cls(
            title=s.title,
            questions=[SurveyQuestion.from_question(q) for q in s.questions],
            customer_display_name=s.customer_display_name,
            expires_at=s.expires_at,
            already_answered=s.already_answered,
        )


@strawberry.input
class SurveyQuestionInput:
    key: str
    text: str
    type: QuestionType
    required: bool | None = None
    options: list[str] | None = None


@strawberry.input
class CreateSurveyTemplateInput:
    name: str
    kind: SurveyKind
    trigger: SurveyTrigger | None = None
    questions: list[SurveyQuestionInput]
    valid_days: int | None = None


@strawberry.input(
    description=(
        "Questions cannot change once a template exists (answers stay comparable); retire it and create another."
    )
)
class UpdateSurveyTemplateInput:
    id: strawberry.ID
    name: str | None = None
    active: bool | None = None
    valid_days: int | None = None


@strawberry.type
class SurveyTemplatePayload:
    template: SurveyTemplate | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class SendSurveyInput:
    template_id: strawberry.ID
    customer_id: strawberry.ID
    channel: Channel | None = None
    complaint_id: strawberry.ID | None = None


@strawberry.input(
    description=(
        "A survey to every customer of a segment or a filter (neither: every customer you may see), as a"
        " SURVEY_CAMPAIGN job; each customer passes the suppression rules and is invited once per campaign."
    )
)
class LaunchSurveyCampaignInput:
    template_id: strawberry.ID
    segment_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="A segment instead of a filter (not both): its filter as it is at launch, so later edits of "
        "the segment do not change the campaign.",
    )
    filter: CustomerFilter | None = None
    channel: Channel | None = strawberry.field(
        default=None, description="EMAIL or SMS; none: each customer's preferred channel that can carry the link."
    )


@strawberry.type
class SurveyInvitationPayload:
    invitation: SurveyInvitation | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class AnswerInput:
    question_key: str
    number: float | None = None
    text: str | None = None
    choices: list[str] | None = None


@strawberry.input
class SubmitSurveyResponseInput:
    token: str
    answers: list[AnswerInput]
    comment: str | None = None


@strawberry.type
class SubmitSurveyResponsePayload:
    accepted: bool = False
    errors: list[UserError] = strawberry.field(default_factory=list)


async def _responses_of_invitations(ids: list[int]) -> list[SurveyResponseModel | None]:
    found = {r.invitation_id: r for r in await SurveyResponseModel.filter(invitation_id__in=set(ids))}
    return [found.get(i) for i in ids]


async def _invitations_of_complaints(ids: list[int]) -> list[SurveyInvitationModel | None]:
    found = {i.complaint_id: i for i in await SurveyInvitationModel.filter(complaint_id__in=set(ids))}
    return [found.get(i) for i in ids]


loaders.register("survey_template", loaders.by_id(SurveyTemplateModel))
loaders.register("survey_invitation", loaders.by_id(SurveyInvitationModel))
loaders.register("survey_response_of_invitation", _responses_of_invitations)
loaders.register("survey_invitation_of_complaint", _invitations_of_complaints)
loaders.register("survey_follow_up", loaders.by_id(FollowUpModel))
