from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.customers import Channel


class NotificationStatus(StrEnum):
    QUEUED = "QUEUED"
    SENT = "SENT"
    FAILED = "FAILED"


class Notification(Model):
    # The outbox: written in the same transaction as its cause, sent by a worker.
    id = fields.IntField(primary_key=True)
    customer = fields.ForeignKeyField(
        "models.Customer", related_name="notifications", null=True, on_delete=fields.RESTRICT
    )
    complaint = fields.ForeignKeyField(
        "models.Complaint", related_name="notifications", null=True, on_delete=fields.RESTRICT
    )
    channel = fields.CharEnumField(Channel, max_length=16)
    recipient = fields.CharField(max_length=254)
    subject = fields.CharField(max_length=200, null=True)
    body = fields.TextField()
    status = fields.CharEnumField(NotificationStatus, max_length=8, default=NotificationStatus.QUEUED, db_index=True)
    attempts = fields.IntField(default=0)
    last_error = fields.TextField(null=True)
    # A worker that claimed the row holds it until then; a claim that ran out (the worker died) is sent again.
    claimed_until = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "notification"
