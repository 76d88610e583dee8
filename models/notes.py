from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class NoteVisibility(StrEnum):
    INTERNAL = "INTERNAL"
    CUSTOMER = "CUSTOMER"


class Note(Model):
    # Every note belongs to a customer; a note on a complaint also names the complaint.
    id = fields.IntField(primary_key=True)
    customer = fields.ForeignKeyField("models.Customer", related_name="notes", on_delete=fields.RESTRICT)
    complaint = fields.ForeignKeyField("models.Complaint", related_name="notes", null=True, on_delete=fields.RESTRICT)
    author = fields.ForeignKeyField("models.Staff", related_name="notes", null=True, on_delete=fields.SET_NULL)
    body = fields.TextField()
    visibility = fields.CharEnumField(NoteVisibility, max_length=8, default=NoteVisibility.INTERNAL)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "note"
        # A customer's notes and timeline, newest first.
        indexes = (("customer_id", "created_at"),)
