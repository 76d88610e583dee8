from tortoise import migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0010_rate_limits_in_buckets")]

    initial = False

    operations = [
        ops.AddIndex(
            model_name="ChangeEntry",
            index=Index(fields=["customer_id", "at"]),
        ),
        ops.AddIndex(
            model_name="ComplaintEvent",
            index=Index(fields=["complaint_id", "at"]),
        ),
        ops.AddIndex(
            model_name="Customer",
            index=Index(fields=["branch", "created_at", "id"]),
        ),
        ops.AddIndex(
            model_name="Customer",
            index=Index(fields=["branch", "aum", "id"]),
        ),
        ops.AddIndex(
            model_name="Customer",
            index=Index(fields=["aum", "id"]),
        ),
        ops.AddIndex(
            model_name="Note",
            index=Index(fields=["customer_id", "created_at"]),
        ),
    ]
