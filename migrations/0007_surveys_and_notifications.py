import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from models.customers import Channel
from models.surveys import InvitationStatus, NpsCategory, SurveyKind, SurveyTrigger


class Migration(migrations.Migration):
    dependencies = [("models", "0006_job_kinds_belong_to_domains")]

    initial = False

    operations = [
        ops.CreateModel(
            name="RateWindow",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("key", fields.CharField(max_length=160)),
                ("window_start", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("hits", fields.IntField(default=0)),
            ],
            options={
                "table": "rate_window",
                "app": "models",
                "unique_together": (("key", "window_start"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="SurveyTemplate",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("name", fields.CharField(max_length=200)),
                (
                    "kind",
                    fields.CharEnumField(
                        description="NPS: NPS\nCSAT: CSAT\nCUSTOM: CUSTOM", enum_type=SurveyKind, max_length=8
                    ),
                ),
                (
                    "trigger",
                    fields.CharEnumField(
                        default=SurveyTrigger.MANUAL,
                        db_index=True,
                        description="MANUAL: MANUAL\nCOMPLAINT_CLOSED: COMPLAINT_CLOSED\nINTERACTION_RESOLVED: INTERACTION_RESOLVED",
                        enum_type=SurveyTrigger,
                        max_length=24,
                    ),
                ),
                ("questions", fields.JSONField(encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads)),
                ("active", fields.BooleanField(default=True)),
                ("valid_days", fields.IntField(default=14)),
                (
                    "created_by",
                    fields.ForeignKeyField(
                        "models.Staff",
                        source_field="created_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="survey_templates",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("ready_made", fields.CharField(null=True, unique=True, max_length=32)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "survey_template", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="SurveyInvitation",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "template",
                    fields.ForeignKeyField(
                        "models.SurveyTemplate",
                        source_field="template_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="invitations",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "models.Customer",
                        source_field="customer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="survey_invitations",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "complaint",
                    fields.OneToOneField(
                        "models.Complaint",
                        source_field="complaint_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="survey_invitation",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "campaign",
                    fields.ForeignKeyField(
                        "models.Job",
                        source_field="campaign_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="survey_invitations",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                (
                    "channel",
                    fields.CharEnumField(
                        description="BRANCH: BRANCH\nPHONE: PHONE\nSMS: SMS\nEMAIL: EMAIL\nMOBILE_APP: MOBILE_APP\nONLINE_BANKING: ONLINE_BANKING\nWECHAT: WECHAT\nVIDEO: VIDEO\nLETTER: LETTER\nREGULATOR: REGULATOR",
                        enum_type=Channel,
                        max_length=16,
                    ),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        default=InvitationStatus.PENDING,
                        db_index=True,
                        description="PENDING: PENDING\nSENT: SENT\nDELIVERY_FAILED: DELIVERY_FAILED\nRESPONDED: RESPONDED\nEXPIRED: EXPIRED\nSUPPRESSED: SUPPRESSED",
                        enum_type=InvitationStatus,
                        max_length=16,
                    ),
                ),
                ("suppressed_reason", fields.CharField(null=True, max_length=200)),
                ("token_hash", fields.CharField(null=True, unique=True, max_length=64)),
                (
                    "notification",
                    fields.OneToOneField(
                        "models.Notification",
                        source_field="notification_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="survey_invitation",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("attempts", fields.IntField(default=0)),
                ("last_error", fields.TextField(null=True, unique=False)),
                ("sent_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("responded_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "created_by",
                    fields.ForeignKeyField(
                        "models.Staff",
                        source_field="created_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="sent_survey_invitations",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "survey_invitation",
                "app": "models",
                "unique_together": (("campaign", "customer"),),
                "indexes": [Index(fields=["customer_id", "created_at"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="SurveyResponse",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "invitation",
                    fields.OneToOneField(
                        "models.SurveyInvitation",
                        source_field="invitation_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="response",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "models.Customer",
                        source_field="customer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="survey_responses",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("answers", fields.JSONField(encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads)),
                ("nps_score", fields.IntField(null=True)),
                (
                    "nps_category",
                    fields.CharEnumField(
                        null=True,
                        description="PROMOTER: PROMOTER\nPASSIVE: PASSIVE\nDETRACTOR: DETRACTOR",
                        enum_type=NpsCategory,
                        max_length=16,
                    ),
                ),
                ("csat_score", fields.FloatField(null=True)),
                ("comment", fields.TextField(null=True, unique=False)),
                (
                    "follow_up",
                    fields.ForeignKeyField(
                        "models.FollowUp",
                        source_field="follow_up_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="survey_responses",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("submitted_at", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "survey_response",
                "app": "models",
                "indexes": [Index(fields=["customer_id", "submitted_at"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Complaint",
            name="satisfaction",
            field=fields.FloatField(null=True),
        ),
        ops.AddField(
            model_name="Notification",
            name="claimed_until",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
