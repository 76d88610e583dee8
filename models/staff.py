from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Role(StrEnum):
    ADMIN = "ADMIN"
    MANAGER = "MANAGER"
    RELATIONSHIP_MANAGER = "RELATIONSHIP_MANAGER"
    SERVICE_AGENT = "SERVICE_AGENT"
    COMPLAINT_HANDLER = "COMPLAINT_HANDLER"
    ANALYST = "ANALYST"
    AUDITOR = "AUDITOR"


class Department(StrEnum):
    BRANCH = "BRANCH"
    CALL_CENTER = "CALL_CENTER"
    COMPLAINTS = "COMPLAINTS"
    MARKETING = "MARKETING"
    COMPLIANCE = "COMPLIANCE"
    RISK = "RISK"
    OPERATIONS = "OPERATIONS"


class Staff(Model):
    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=64, unique=True)
    display_name = fields.CharField(max_length=128)
    password_hash = fields.CharField(max_length=256)
    role = fields.CharEnumField(Role, max_length=32)
    department = fields.CharEnumField(Department, max_length=32)
    branch = fields.CharField(max_length=64, null=True)
    active = fields.BooleanField(default=True)
    failed_logins = fields.IntField(default=0)
    locked_until = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "staff"


class StaffToken(Model):
    # An opaque bearer token: only its keyed hash is stored.

    id = fields.IntField(primary_key=True)
    staff = fields.ForeignKeyField("models.Staff", related_name="tokens", on_delete=fields.CASCADE)
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField(db_index=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "staff_token"
