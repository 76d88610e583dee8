from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.customers import Channel


class SurveyKind(StrEnum):
    NPS = "NPS"
    CSAT = "CSAT"
    CUSTOM = "CUSTOM"


class SurveyTrigger(StrEnum):
    MANUAL = "MANUAL"
    COMPLAINT_CLOSED = "COMPLAINT_CLOSED"
    INTERACTION_RESOLVED = "INTERACTION_RESOLVED"


class QuestionType(StrEnum):
    NPS = "NPS"
    RATING = "RATING"
    SINGLE_CHOICE = "SINGLE_CHOICE"
    MULTI_CHOICE = "MULTI_CHOICE"
    TEXT = "TEXT"


class InvitationStatus(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    DELIVERY_FAILED = "DELIVERY_FAILED"
    RESPONDED = "RESPONDED"
    EXPIRED = "EXPIRED"
    SUPPRESSED = "SUPPRESSED"


class NpsCategory(StrEnum):
    PROMOTER = "PROMOTER"
    PASSIVE = "PASSIVE"
    DETRACTOR = "DETRACTOR"


class SurveyTemplate(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    kind = fields.CharEnumField(SurveyKind, max_length=8)
    trigger = fields.CharEnumField(SurveyTrigger, max_length=24, default=SurveyTrigger.MANUAL, db_index=True)
    # [{"key", "text", "type", "required", "options"}]: fixed once created, so answers stay comparable.
    questions = fields.JSONField()
    active = fields.BooleanField(default=True)
    valid_days = fields.IntField(default=14)
    created_by = fields.ForeignKeyField(
        "models.Staff", related_name="survey_templates", null=True, on_delete=fields.SET_NULL
    )
    # The key of a template the service ships (created by `crm migrate`, once: renaming or retiring it sticks).
    ready_made = fields.CharField(max_length=32, null=True, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "survey_template"


class SurveyInvitation(Model):
    id = fields.IntField(primary_key=True)
    template = fields.ForeignKeyField("models.SurveyTemplate", related_name="invitations", on_delete=fields.RESTRICT)
    customer = fields.ForeignKeyField("models.Customer", related_name="survey_invitations", on_delete=fields.RESTRICT)
    # The complaint a post-complaint survey asks about: at most one invitation per complaint, ever.
    complaint = fields.OneToOneField(
        "models.Complaint", related_name="survey_invitation", null=True, on_delete=fields.RESTRICT
    )
    # The campaign (a SURVEY_CAMPAIGN job) that sent it: at most one invitation per customer per campaign.
    campaign = fields.ForeignKeyField(
        "models.Job", related_name="survey_invitations", null=True, on_delete=fields.SET_NULL
    )
    channel = fields.CharEnumField(Channel, max_length=16)
    status = fields.CharEnumField(InvitationStatus, max_length=16, default=InvitationStatus.PENDING, db_index=True)
    suppressed_reason = fields.CharField(max_length=200, null=True)
    # SHA-256 of the link's token (the token itself is never stored); none for a suppressed invitation.
    token_hash = fields.CharField(max_length=64, null=True, unique=True)
    notification = fields.OneToOneField(
        "models.Notification", related_name="survey_invitation", null=True, on_delete=fields.SET_NULL
    )
    attempts = fields.IntField(default=0)
    last_error = fields.TextField(null=True)
    sent_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField()
    responded_at = fields.DatetimeField(null=True)
    created_by = fields.ForeignKeyField(
        "models.Staff", related_name="sent_survey_invitations", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "survey_invitation"
        unique_together = (("campaign", "customer"),)
        indexes = (("customer_id", "created_at"),)


class SurveyResponse(Model):
    id = fields.IntField(primary_key=True)
    invitation = fields.OneToOneField("models.SurveyInvitation", related_name="response", on_delete=fields.RESTRICT)
    customer = fields.ForeignKeyField("models.Customer", related_name="survey_responses", on_delete=fields.RESTRICT)
    # [{"questionKey", "number", "text", "choices"}], as validated against the template.
    answers = fields.JSONField()
    nps_score = fields.IntField(null=True)
    nps_category = fields.CharEnumField(NpsCategory, max_length=16, null=True)
    csat_score = fields.FloatField(null=True)
    comment = fields.TextField(null=True)
    # The recovery follow-up opened for a detractor or a low rating.
    follow_up = fields.ForeignKeyField(
        "models.FollowUp", related_name="survey_responses", null=True, on_delete=fields.SET_NULL
    )
    submitted_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "survey_response"
        indexes = (("customer_id", "submitted_at"),)
