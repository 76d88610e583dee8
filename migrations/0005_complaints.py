from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from models.complaints import (
    ComplaintCategory,
    ComplaintEventType,
    ComplaintReason,
    ComplaintStatus,
)
from models.customers import Channel
from models.follow_ups import Priority
from models.notifications import NotificationStatus
from models.staff import Department


class Migration(migrations.Migration):
    dependencies = [("models", "0004_service_and_collaboration")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Complaint",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("reference_no", fields.CharField(unique=True, max_length=24)),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "models.Customer",
                        source_field="customer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="complaints",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("branch", fields.CharField(null=True, db_index=True, max_length=64)),
                (
                    "channel",
                    fields.CharEnumField(
                        db_index=True,
                        description="BRANCH: BRANCH\nPHONE: PHONE\nSMS: SMS\nEMAIL: EMAIL\nMOBILE_APP: MOBILE_APP\nONLINE_BANKING: ONLINE_BANKING\nWECHAT: WECHAT\nVIDEO: VIDEO\nLETTER: LETTER\nREGULATOR: REGULATOR",
                        enum_type=Channel,
                        max_length=16,
                    ),
                ),
                (
                    "category",
                    fields.CharEnumField(
                        db_index=True,
                        description="DEPOSIT: DEPOSIT\nLOAN: LOAN\nBANK_CARD: BANK_CARD\nCREDIT_CARD: CREDIT_CARD\nPAYMENT_SETTLEMENT: PAYMENT_SETTLEMENT\nWEALTH_MANAGEMENT: WEALTH_MANAGEMENT\nAGENCY_SALES: AGENCY_SALES\nRMB_CASH: RMB_CASH\nPERSONAL_INFORMATION: PERSONAL_INFORMATION\nE_BANKING: E_BANKING\nOTHER: OTHER",
                        enum_type=ComplaintCategory,
                        max_length=24,
                    ),
                ),
                (
                    "reason",
                    fields.CharEnumField(
                        db_index=True,
                        description="SERVICE_ATTITUDE: SERVICE_ATTITUDE\nSERVICE_FACILITIES: SERVICE_FACILITIES\nRULES_AND_PROCESS: RULES_AND_PROCESS\nMARKETING_PRACTICE: MARKETING_PRACTICE\nINFORMATION_DISCLOSURE: INFORMATION_DISCLOSURE\nFEES_AND_PRICING: FEES_AND_PRICING\nCONTRACT_TERMS: CONTRACT_TERMS\nFREE_CHOICE: FREE_CHOICE\nFUNDS_SECURITY: FUNDS_SECURITY\nINFORMATION_SECURITY: INFORMATION_SECURITY\nDEBT_COLLECTION: DEBT_COLLECTION\nSYSTEM_FAILURE: SYSTEM_FAILURE\nOTHER: OTHER",
                        enum_type=ComplaintReason,
                        max_length=24,
                    ),
                ),
                (
                    "suggested_category",
                    fields.CharEnumField(
                        null=True,
                        description="DEPOSIT: DEPOSIT\nLOAN: LOAN\nBANK_CARD: BANK_CARD\nCREDIT_CARD: CREDIT_CARD\nPAYMENT_SETTLEMENT: PAYMENT_SETTLEMENT\nWEALTH_MANAGEMENT: WEALTH_MANAGEMENT\nAGENCY_SALES: AGENCY_SALES\nRMB_CASH: RMB_CASH\nPERSONAL_INFORMATION: PERSONAL_INFORMATION\nE_BANKING: E_BANKING\nOTHER: OTHER",
                        enum_type=ComplaintCategory,
                        max_length=24,
                    ),
                ),
                (
                    "suggested_reason",
                    fields.CharEnumField(
                        null=True,
                        description="SERVICE_ATTITUDE: SERVICE_ATTITUDE\nSERVICE_FACILITIES: SERVICE_FACILITIES\nRULES_AND_PROCESS: RULES_AND_PROCESS\nMARKETING_PRACTICE: MARKETING_PRACTICE\nINFORMATION_DISCLOSURE: INFORMATION_DISCLOSURE\nFEES_AND_PRICING: FEES_AND_PRICING\nCONTRACT_TERMS: CONTRACT_TERMS\nFREE_CHOICE: FREE_CHOICE\nFUNDS_SECURITY: FUNDS_SECURITY\nINFORMATION_SECURITY: INFORMATION_SECURITY\nDEBT_COLLECTION: DEBT_COLLECTION\nSYSTEM_FAILURE: SYSTEM_FAILURE\nOTHER: OTHER",
                        enum_type=ComplaintReason,
                        max_length=24,
                    ),
                ),
                (
                    "priority",
                    fields.CharEnumField(
                        db_index=True,
                        description="LOW: LOW\nNORMAL: NORMAL\nHIGH: HIGH\nURGENT: URGENT",
                        enum_type=Priority,
                        max_length=8,
                    ),
                ),
                ("priority_rank", fields.SmallIntField(db_index=True)),
                (
                    "status",
                    fields.CharEnumField(
                        db_index=True,
                        description="RECEIVED: RECEIVED\nACKNOWLEDGED: ACKNOWLEDGED\nIN_PROGRESS: IN_PROGRESS\nESCALATED: ESCALATED\nRESOLVED: RESOLVED\nCLOSED: CLOSED\nREOPENED: REOPENED\nWITHDRAWN: WITHDRAWN",
                        enum_type=ComplaintStatus,
                        max_length=16,
                    ),
                ),
                ("summary", fields.CharField(max_length=200)),
                ("description", fields.TextField(unique=False)),
                ("amount_in_dispute", fields.DecimalField(null=True, max_digits=20, decimal_places=2)),
                ("received_at", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ("acknowledged_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("due_at", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ("extension_count", fields.IntField(default=0)),
                ("escalation_level", fields.IntField(default=0)),
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
                    "handler",
                    fields.ForeignKeyField(
                        "models.Staff",
                        source_field="handler_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="handled_complaints",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("resolution", fields.TextField(null=True, unique=False)),
                ("compensation_amount", fields.DecimalField(null=True, max_digits=20, decimal_places=2)),
                ("customer_accepted", fields.BooleanField(null=True)),
                ("resolved_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("closed_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("withdrawn_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("reopen_count", fields.IntField(default=0)),
                ("sla_at_risk_recorded", fields.BooleanField(default=False)),
                ("sla_breached_recorded", fields.BooleanField(default=False)),
                ("survey_sent", fields.BooleanField(default=False)),
                (
                    "created_by",
                    fields.ForeignKeyField(
                        "models.Staff",
                        source_field="created_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="filed_complaints",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("version", fields.IntField(default=1)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(db_index=True, auto_now=True, auto_now_add=False)),
            ],
            options={"table": "complaint", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ComplaintDaySequence",
            fields=[
                ("day", fields.DateField(primary_key=True, unique=True, db_index=True)),
                ("last_number", fields.IntField()),
            ],
            options={"table": "complaint_day_sequence", "app": "models", "pk_attr": "day"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ComplaintEvent",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "complaint",
                    fields.ForeignKeyField(
                        "models.Complaint",
                        source_field="complaint_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="events",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "type",
                    fields.CharEnumField(
                        description="RECEIVED: RECEIVED\nACKNOWLEDGED: ACKNOWLEDGED\nASSIGNED: ASSIGNED\nSTARTED: STARTED\nESCALATED: ESCALATED\nDEADLINE_EXTENDED: DEADLINE_EXTENDED\nNOTE_ADDED: NOTE_ADDED\nRESOLVED: RESOLVED\nCLOSED: CLOSED\nREOPENED: REOPENED\nWITHDRAWN: WITHDRAWN\nSLA_AT_RISK: SLA_AT_RISK\nSLA_BREACHED: SLA_BREACHED\nCUSTOMER_NOTIFIED: CUSTOMER_NOTIFIED",
                        enum_type=ComplaintEventType,
                        max_length=24,
                    ),
                ),
                (
                    "from_status",
                    fields.CharEnumField(
                        null=True,
                        description="RECEIVED: RECEIVED\nACKNOWLEDGED: ACKNOWLEDGED\nIN_PROGRESS: IN_PROGRESS\nESCALATED: ESCALATED\nRESOLVED: RESOLVED\nCLOSED: CLOSED\nREOPENED: REOPENED\nWITHDRAWN: WITHDRAWN",
                        enum_type=ComplaintStatus,
                        max_length=16,
                    ),
                ),
                (
                    "to_status",
                    fields.CharEnumField(
                        null=True,
                        description="RECEIVED: RECEIVED\nACKNOWLEDGED: ACKNOWLEDGED\nIN_PROGRESS: IN_PROGRESS\nESCALATED: ESCALATED\nRESOLVED: RESOLVED\nCLOSED: CLOSED\nREOPENED: REOPENED\nWITHDRAWN: WITHDRAWN",
                        enum_type=ComplaintStatus,
                        max_length=16,
                    ),
                ),
                (
                    "actor",
                    fields.ForeignKeyField(
                        "models.Staff",
                        source_field="actor_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="complaint_events",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("message", fields.TextField(null=True, unique=False)),
                ("at", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={"table": "complaint_event", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Notification",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "models.Customer",
                        source_field="customer_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="notifications",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "complaint",
                    fields.ForeignKeyField(
                        "models.Complaint",
                        source_field="complaint_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="notifications",
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
                ("recipient", fields.CharField(max_length=254)),
                ("subject", fields.CharField(null=True, max_length=200)),
                ("body", fields.TextField(unique=False)),
                (
                    "status",
                    fields.CharEnumField(
                        default=NotificationStatus.QUEUED,
                        db_index=True,
                        description="QUEUED: QUEUED\nSENT: SENT\nFAILED: FAILED",
                        enum_type=NotificationStatus,
                        max_length=8,
                    ),
                ),
                ("attempts", fields.IntField(default=0)),
                ("last_error", fields.TextField(null=True, unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("sent_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={"table": "notification", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.AddField(
            model_name="FollowUp",
            name="complaint",
            field=fields.ForeignKeyField(
                "models.Complaint",
                source_field="complaint_id",
                null=True,
                db_constraint=True,
                to_field="id",
                related_name="follow_ups",
                on_delete=OnDelete.RESTRICT,
            ),
        ),
        ops.AddField(
            model_name="Note",
            name="complaint",
            field=fields.ForeignKeyField(
                "models.Complaint",
                source_field="complaint_id",
                null=True,
                db_constraint=True,
                to_field="id",
                related_name="notes",
                on_delete=OnDelete.RESTRICT,
            ),
        ),
    ]
