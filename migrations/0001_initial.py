import functools
from enum import StrEnum
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from models.jobs import JobStatus
from models.staff import Department, Role


class JobKind(StrEnum):
    """The job kinds as this migration stored them (job kinds now belong to their domains)."""

    IMPORT_CUSTOMERS = "IMPORT_CUSTOMERS"
    RECOMPUTE_PORTRAITS = "RECOMPUTE_PORTRAITS"
    SURVEY_CAMPAIGN = "SURVEY_CAMPAIGN"
    COMPLAINT_REPORT = "COMPLAINT_REPORT"
    AUDIT_EXPORT = "AUDIT_EXPORT"


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="Staff",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("username", fields.CharField(unique=True, max_length=64)),
                ("display_name", fields.CharField(max_length=128)),
                ("password_hash", fields.CharField(max_length=256)),
                (
                    "role",
                    fields.CharEnumField(
                        description="ADMIN: ADMIN\nMANAGER: MANAGER\nRELATIONSHIP_MANAGER: RELATIONSHIP_MANAGER\nSERVICE_AGENT: SERVICE_AGENT\nCOMPLAINT_HANDLER: COMPLAINT_HANDLER\nANALYST: ANALYST\nAUDITOR: AUDITOR",
                        enum_type=Role,
                        max_length=32,
                    ),
                ),
                (
                    "department",
                    fields.CharEnumField(
                        description="BRANCH: BRANCH\nCALL_CENTER: CALL_CENTER\nCOMPLAINTS: COMPLAINTS\nMARKETING: MARKETING\nCOMPLIANCE: COMPLIANCE\nRISK: RISK\nOPERATIONS: OPERATIONS",
                        enum_type=Department,
                        max_length=32,
                    ),
                ),
                ("branch", fields.CharField(null=True, max_length=64)),
                ("active", fields.BooleanField(default=True)),
                ("failed_logins", fields.IntField(default=0)),
                ("locked_until", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={"table": "staff", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="AuditEntry",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "actor",
                    fields.ForeignKeyField(
                        "models.Staff",
                        source_field="actor_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="audit_entries",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("actor_name", fields.CharField(null=True, max_length=64)),
                ("action", fields.CharField(db_index=True, max_length=64)),
                ("subject_type", fields.CharField(null=True, max_length=32)),
                ("subject_id", fields.CharField(null=True, db_index=True, max_length=64)),
                (
                    "detail",
                    fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads),
                ),
                ("request_id", fields.CharField(null=True, max_length=64)),
                ("ip", fields.CharField(null=True, max_length=64)),
                ("at", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
            ],
            options={"table": "audit_entry", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Job",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "kind",
                    fields.CharEnumField(
                        description="IMPORT_CUSTOMERS: IMPORT_CUSTOMERS\nRECOMPUTE_PORTRAITS: RECOMPUTE_PORTRAITS\nSURVEY_CAMPAIGN: SURVEY_CAMPAIGN\nCOMPLAINT_REPORT: COMPLAINT_REPORT\nAUDIT_EXPORT: AUDIT_EXPORT",
                        enum_type=JobKind,
                        max_length=32,
                    ),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        default=JobStatus.QUEUED,
                        db_index=True,
                        description="QUEUED: QUEUED\nRUNNING: RUNNING\nSUCCEEDED: SUCCEEDED\nFAILED: FAILED\nCANCELLED: CANCELLED",
                        enum_type=JobStatus,
                        max_length=16,
                    ),
                ),
                (
                    "params",
                    fields.JSONField(
                        default=dict, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("total", fields.IntField(null=True)),
                ("processed", fields.IntField(default=0)),
                ("failed", fields.IntField(default=0)),
                (
                    "result",
                    fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads),
                ),
                (
                    "errors",
                    fields.JSONField(
                        default=list, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("attempts", fields.IntField(default=0)),
                (
                    "created_by",
                    fields.ForeignKeyField(
                        "models.Staff",
                        source_field="created_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="jobs",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ("started_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("finished_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={"table": "job", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="StaffToken",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "staff",
                    fields.ForeignKeyField(
                        "models.Staff",
                        source_field="staff_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="tokens",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("token_hash", fields.CharField(unique=True, max_length=64)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("expires_at", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={"table": "staff_token", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
