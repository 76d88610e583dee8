from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.staff import Department


class Priority(StrEnum):
    LOW = "LOW"
    NORMAL = "NORMAL"
    HIGH = "HIGH"
    URGENT = "URGENT"


class FollowUpStatus(StrEnum):
    OPEN = "OPEN"
    DONE = "DONE"
    CANCELLED = "CANCELLED"


class FollowUp(Model):
    # A piece of work for a person or a department; the unit of cross-department collaboration.
    id = fields.IntField(primary_key=True)
    title = fields.CharField(max_length=200)
    description = fields.TextField(null=True)
    customer = fields.ForeignKeyField(
        "models.Customer", related_name="follow_ups", null=True, on_delete=fields.RESTRICT
    )
    complaint = fields.ForeignKeyField(
        "models.Complaint", related_name="follow_ups", null=True, on_delete=fields.RESTRICT
    )
    assignee = fields.ForeignKeyField(
        "models.Staff", related_name="assigned_follow_ups", null=True, on_delete=fields.SET_NULL
    )
    department = fields.CharEnumField(Department, max_length=32, null=True, db_index=True)
    priority = fields.CharEnumField(Priority, max_length=8, default=Priority.NORMAL)
    status = fields.CharEnumField(FollowUpStatus, max_length=16, default=FollowUpStatus.OPEN, db_index=True)
    due_at = fields.DatetimeField(null=True, db_index=True)
    created_by = fields.ForeignKeyField(
        "models.Staff", related_name="created_follow_ups", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    completed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "follow_up"
        indexes = (("customer_id", "created_at"),)
