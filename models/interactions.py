from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.customers import Channel


class Direction(StrEnum):
    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"


class InteractionKind(StrEnum):
    INQUIRY = "INQUIRY"
    SERVICE_REQUEST = "SERVICE_REQUEST"
    ADVICE = "ADVICE"
    MARKETING = "MARKETING"
    FOLLOW_UP = "FOLLOW_UP"
    COMPLAINT_INTAKE = "COMPLAINT_INTAKE"
    OTHER = "OTHER"


class InteractionStatus(StrEnum):
    OPEN = "OPEN"
    RESOLVED = "RESOLVED"


class Interaction(Model):
    id = fields.IntField(primary_key=True)
    customer = fields.ForeignKeyField("models.Customer", related_name="interactions", on_delete=fields.RESTRICT)
    channel = fields.CharEnumField(Channel, max_length=16)
    direction = fields.CharEnumField(Direction, max_length=8)
    kind = fields.CharEnumField(InteractionKind, max_length=24)
    status = fields.CharEnumField(InteractionStatus, max_length=8, db_index=True)
    subject = fields.CharField(max_length=200)
    content = fields.TextField(null=True)
    outcome = fields.TextField(null=True)
    staff = fields.ForeignKeyField("models.Staff", related_name="interactions", null=True, on_delete=fields.SET_NULL)
    occurred_at = fields.DatetimeField(db_index=True)
    duration_seconds = fields.IntField(null=True)
    resolved_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "interaction"
        indexes = (("customer_id", "occurred_at"),)
