from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from models.customers import Channel
from models.follow_ups import FollowUpStatus, Priority
from models.interactions import Direction, InteractionKind, InteractionStatus
from models.notes import NoteVisibility
from models.staff import Department


class Migration(migrations.Migration):
    dependencies = [("models", "0003_customers")]

    initial = False

    operations = [
        ops.CreateModel(
            name="FollowUp",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("title", fields.CharField(max_length=200)),
                ("description", fields.TextField(null=True, unique=False)),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "models.Customer",
                        source_field="customer_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="follow_ups",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "assignee",
                    fields.ForeignKeyField(
                        "models.Staff",
                        source_field="assignee_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="assigned_follow_ups",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                (
                    "department",
                    fields.CharEnumField(
                        null=True,
                        db_index=True,
                        description="BRANCH: BRANCH\nCALL_CENTER: CALL_CENTER\nCOMPLAINTS: COMPLAINTS\nMARKETING: MARKETING\nCOMPLIANCE: COMPLIANCE\nRISK: RISK\nOPERATIONS: OPERATIONS",
                        enum_type=Department,
                        max_length=32,
                    ),
                ),
                (
                    "priority",
                    fields.CharEnumField(
                        default=Priority.NORMAL,
                        description="LOW: LOW\nNORMAL: NORMAL\nHIGH: HIGH\nURGENT: URGENT",
                        enum_type=Priority,
                        max_length=8,
                    ),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        default=FollowUpStatus.OPEN,
                        db_index=True,
                        description="OPEN: OPEN\nDONE: DONE\nCANCELLED: CANCELLED",
                        enum_type=FollowUpStatus,
                        max_length=16,
                    ),
                ),
                ("due_at", fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
                (
                    "created_by",
                    fields.ForeignKeyField(
                        "models.Staff",
                        source_field="created_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="created_follow_ups",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("completed_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "follow_up",
                "app": "models",
                "indexes": [Index(fields=["customer_id", "created_at"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Interaction",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "models.Customer",
                        source_field="customer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="interactions",
                        on_delete=OnDelete.RESTRICT,
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
                    "direction",
                    fields.CharEnumField(
                        description="INBOUND: INBOUND\nOUTBOUND: OUTBOUND", enum_type=Direction, max_length=8
                    ),
                ),
                (
                    "kind",
                    fields.CharEnumField(
                        description="INQUIRY: INQUIRY\nSERVICE_REQUEST: SERVICE_REQUEST\nADVICE: ADVICE\nMARKETING: MARKETING\nFOLLOW_UP: FOLLOW_UP\nCOMPLAINT_INTAKE: COMPLAINT_INTAKE\nOTHER: OTHER",
                        enum_type=InteractionKind,
                        max_length=24,
                    ),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        db_index=True,
                        description="OPEN: OPEN\nRESOLVED: RESOLVED",
                        enum_type=InteractionStatus,
                        max_length=8,
                    ),
                ),
                ("subject", fields.CharField(max_length=200)),
                ("content", fields.TextField(null=True, unique=False)),
                ("outcome", fields.TextField(null=True, unique=False)),
                (
                    "staff",
                    fields.ForeignKeyField(
                        "models.Staff",
                        source_field="staff_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="interactions",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("occurred_at", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ("duration_seconds", fields.IntField(null=True)),
                ("resolved_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "interaction",
                "app": "models",
                "indexes": [Index(fields=["customer_id", "occurred_at"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Note",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "models.Customer",
                        source_field="customer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="notes",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "author",
                    fields.ForeignKeyField(
                        "models.Staff",
                        source_field="author_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="notes",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("body", fields.TextField(unique=False)),
                (
                    "visibility",
                    fields.CharEnumField(
                        default=NoteVisibility.INTERNAL,
                        description="INTERNAL: INTERNAL\nCUSTOMER: CUSTOMER",
                        enum_type=NoteVisibility,
                        max_length=8,
                    ),
                ),
                ("created_at", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
            ],
            options={"table": "note", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Customer",
            name="portrait_stale_since",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
