from tortoise import migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0009_audit_append_only")]

    initial = False

    operations = [
        ops.DeleteModel(name="RateWindow"),
    ]
