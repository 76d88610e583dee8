from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0005_complaints")]

    initial = False

    operations = [
        ops.AlterField(
            model_name="Job",
            name="kind",
            field=fields.CharField(max_length=32),
        ),
    ]
