from tortoise import fields
from tortoise.models import Model


class AuditEntry(Model):
    # Append-only: nothing in the application updates or deletes a row.

    id = fields.BigIntField(primary_key=True)
    actor = fields.ForeignKeyField("models.Staff", related_name="audit_entries", null=True, on_delete=fields.RESTRICT)
    # Kept when no staff member is known, e.g. the username of a failed login.
    actor_name = fields.CharField(max_length=64, null=True)
    action = fields.CharField(max_length=64, db_index=True)
    subject_type = fields.CharField(max_length=32, null=True)
    subject_id = fields.CharField(max_length=64, null=True, db_index=True)
    detail = fields.JSONField(null=True)
    request_id = fields.CharField(max_length=64, null=True)
    ip = fields.CharField(max_length=64, null=True)
    at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "audit_entry"
        # Serves the per-address sign-in limit: recent login.failed rows of one IP.
        indexes = (("action", "ip", "at"),)

    async def save(self, *args, **kwargs) -> None:
        if self._saved_in_db:
            raise PermissionError("audit entries are append-only")
        await super().save(*args, **kwargs)

    async def delete(self, *args, **kwargs) -> None:
        raise PermissionError("audit entries are append-only")
