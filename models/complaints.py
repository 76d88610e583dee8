from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.customers import Channel
from models.follow_ups import Priority
from models.staff import Department


class ComplaintCategory(StrEnum):
    # Business type, after JR/T 0169-2018 part B.
    DEPOSIT = "DEPOSIT"
    LOAN = "LOAN"
    BANK_CARD = "BANK_CARD"
    CREDIT_CARD = "CREDIT_CARD"
    PAYMENT_SETTLEMENT = "PAYMENT_SETTLEMENT"
    WEALTH_MANAGEMENT = "WEALTH_MANAGEMENT"
    AGENCY_SALES = "AGENCY_SALES"
    RMB_CASH = "RMB_CASH"
    PERSONAL_INFORMATION = "PERSONAL_INFORMATION"
    E_BANKING = "E_BANKING"
    OTHER = "OTHER"


class ComplaintReason(StrEnum):
    # Cause, after JR/T 0169-2018 part C.
    SERVICE_ATTITUDE = "SERVICE_ATTITUDE"
    SERVICE_FACILITIES = "SERVICE_FACILITIES"
    RULES_AND_PROCESS = "RULES_AND_PROCESS"
    MARKETING_PRACTICE = "MARKETING_PRACTICE"
    INFORMATION_DISCLOSURE = "INFORMATION_DISCLOSURE"
    FEES_AND_PRICING = "FEES_AND_PRICING"
    CONTRACT_TERMS = "CONTRACT_TERMS"
    FREE_CHOICE = "FREE_CHOICE"
    FUNDS_SECURITY = "FUNDS_SECURITY"
    INFORMATION_SECURITY = "INFORMATION_SECURITY"
    DEBT_COLLECTION = "DEBT_COLLECTION"
    SYSTEM_FAILURE = "SYSTEM_FAILURE"
    OTHER = "OTHER"


class ComplaintStatus(StrEnum):
    RECEIVED = "RECEIVED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    IN_PROGRESS = "IN_PROGRESS"
    ESCALATED = "ESCALATED"
    RESOLVED = "RESOLVED"
    CLOSED = "CLOSED"
    REOPENED = "REOPENED"
    WITHDRAWN = "WITHDRAWN"


class ComplaintEventType(StrEnum):
    RECEIVED = "RECEIVED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    ASSIGNED = "ASSIGNED"
    STARTED = "STARTED"
    ESCALATED = "ESCALATED"
    DEADLINE_EXTENDED = "DEADLINE_EXTENDED"
    NOTE_ADDED = "NOTE_ADDED"
    RESOLVED = "RESOLVED"
    CLOSED = "CLOSED"
    REOPENED = "REOPENED"
    WITHDRAWN = "WITHDRAWN"
    SLA_AT_RISK = "SLA_AT_RISK"
    SLA_BREACHED = "SLA_BREACHED"
    CUSTOMER_NOTIFIED = "CUSTOMER_NOTIFIED"


class Complaint(Model):
    id = fields.IntField(primary_key=True)
    reference_no = fields.CharField(max_length=24, unique=True)
    # Indexed: the portrait computation and a customer's page read the complaints of given customers.
    customer = fields.ForeignKeyField(
        "models.Customer", related_name="complaints", on_delete=fields.RESTRICT, db_index=True
    )
    # The customer's branch when filed: statistics and scoping stay stable if the customer moves.
    branch = fields.CharField(max_length=64, null=True, db_index=True)
    channel = fields.CharEnumField(Channel, max_length=16, db_index=True)
    category = fields.CharEnumField(ComplaintCategory, max_length=24, db_index=True)
    reason = fields.CharEnumField(ComplaintReason, max_length=24, db_index=True)
    suggested_category = fields.CharEnumField(ComplaintCategory, max_length=24, null=True)
    suggested_reason = fields.CharEnumField(ComplaintReason, max_length=24, null=True)
    priority = fields.CharEnumField(Priority, max_length=8, db_index=True)
    # LOW 1 … URGENT 4, so that lists sort by urgency rather than by the name's spelling.
    priority_rank = fields.SmallIntField(db_index=True)
    status = fields.CharEnumField(ComplaintStatus, max_length=16, db_index=True)
    summary = fields.CharField(max_length=200)
    description = fields.TextField()
    amount_in_dispute = fields.DecimalField(max_digits=20, decimal_places=2, null=True)
    received_at = fields.DatetimeField(db_index=True)
    acknowledged_at = fields.DatetimeField(null=True)
    due_at = fields.DatetimeField(db_index=True)
    extension_count = fields.IntField(default=0)
    escalation_level = fields.IntField(default=0)
    department = fields.CharEnumField(Department, max_length=32, null=True, db_index=True)
    handler = fields.ForeignKeyField(
        "models.Staff", related_name="handled_complaints", null=True, on_delete=fields.SET_NULL
    )
    resolution = fields.TextField(null=True)
    compensation_amount = fields.DecimalField(max_digits=20, decimal_places=2, null=True)
    customer_accepted = fields.BooleanField(null=True)
    resolved_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)
    withdrawn_at = fields.DatetimeField(null=True)
    reopen_count = fields.IntField(default=0)
    # Recorded once each by the SLA monitor.
    sla_at_risk_recorded = fields.BooleanField(default=False)
    sla_breached_recorded = fields.BooleanField(default=False)
    survey_sent = fields.BooleanField(default=False)
    # The CSAT score (1-5) the customer gave in the post-complaint survey, kept here for the statistics.
    satisfaction = fields.FloatField(null=True)
    created_by = fields.ForeignKeyField(
        "models.Staff", related_name="filed_complaints", null=True, on_delete=fields.SET_NULL
    )
    version = fields.IntField(default=1)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True, db_index=True)

    class Meta:
        table = "complaint"


class ComplaintEvent(Model):
    id = fields.BigIntField(primary_key=True)
    complaint = fields.ForeignKeyField("models.Complaint", related_name="events", on_delete=fields.RESTRICT)
    type = fields.CharEnumField(ComplaintEventType, max_length=24)
    from_status = fields.CharEnumField(ComplaintStatus, max_length=16, null=True)
    to_status = fields.CharEnumField(ComplaintStatus, max_length=16, null=True)
    actor = fields.ForeignKeyField(
        "models.Staff", related_name="complaint_events", null=True, on_delete=fields.SET_NULL
    )
    message = fields.TextField(null=True)
    at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "complaint_event"
        # A complaint's events; a customer's timeline reaches them through its complaints.
        indexes = (("complaint_id", "at"),)


class ComplaintDaySequence(Model):
    # The last reference number handed out per day: numbers are unique and gap-free per day.
    day = fields.DateField(primary_key=True)
    last_number = fields.IntField()

    class Meta:
        table = "complaint_day_sequence"
