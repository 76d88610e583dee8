from tortoise import fields
from tortoise.models import Model


class Segment(Model):
    # A named CustomerFilter (stored as services.filters.FilterParams.to_params()); its members are evaluated live.
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=120, unique=True)
    description = fields.TextField(null=True)
    filter_params = fields.JSONField(default=dict, source_field="filter")
    created_by = fields.ForeignKeyField("models.Staff", related_name="segments", null=True, on_delete=fields.SET_NULL)
    # One more per change: an update that carries an older version changes nothing (STALE_VERSION).
    version = fields.IntField(default=1)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "segment"
