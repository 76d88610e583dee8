from tortoise import fields
from tortoise.models import Model


class RateWindow(Model):
    # Hits of one key (e.g. "survey.submit:ip:203.0.113.7") in one fixed time window, shared by every process.
    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=160)
    window_start = fields.DatetimeField()
    hits = fields.IntField(default=0)

    class Meta:
        table = "rate_window"
        unique_together = (("key", "window_start"),)
