import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from models.portraits import LifecycleStage, ValueTier
from models.surveys import NpsCategory


async def drop_the_portraits_foreign_key(apps, schema_editor) -> None:
    """Portrait.customer has db_constraint=False, which Tortoise's CreateModel ignores (PostgreSQL only: the
    check costs SQLite next to nothing, and SQLite cannot drop a constraint)."""
    if schema_editor.client.capabilities.dialect == "postgres":
        await schema_editor.client.execute_script(
            "ALTER TABLE portrait DROP CONSTRAINT IF EXISTS portrait_customer_id_fkey"
        )


class Migration(migrations.Migration):
    dependencies = [("models", "0007_surveys_and_notifications")]

    initial = False

    operations = [
        ops.CreateModel(
            name="JobBatch",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "job",
                    fields.ForeignKeyField(
                        "models.Job",
                        source_field="job_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="batches",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("seq", fields.IntField()),
                (
                    "params",
                    fields.JSONField(
                        default=dict, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("done_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={"table": "job_batch", "app": "models", "unique_together": (("job", "seq"),), "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Portrait",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "customer",
                    fields.OneToOneField(
                        "models.Customer",
                        source_field="customer_id",
                        db_constraint=False,
                        to_field="id",
                        related_name="portrait",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "value_tier",
                    fields.CharEnumField(
                        description="PRIVATE_BANKING: PRIVATE_BANKING\nWEALTH: WEALTH\nAFFLUENT: AFFLUENT\nMASS: MASS",
                        enum_type=ValueTier,
                        max_length=16,
                    ),
                ),
                ("aum", fields.DecimalField(max_digits=20, decimal_places=2)),
                ("debt", fields.DecimalField(max_digits=20, decimal_places=2)),
                ("product_count", fields.IntField()),
                (
                    "product_types",
                    fields.JSONField(
                        default=list, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("tenure_months", fields.IntField()),
                ("interactions_90d", fields.IntField()),
                ("last_contact_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("complaint_count", fields.IntField()),
                ("open_complaints", fields.IntField()),
                ("avg_csat", fields.FloatField(null=True)),
                (
                    "nps_category",
                    fields.CharEnumField(
                        null=True,
                        description="PROMOTER: PROMOTER\nPASSIVE: PASSIVE\nDETRACTOR: DETRACTOR",
                        enum_type=NpsCategory,
                        max_length=16,
                    ),
                ),
                ("churn_risk", fields.FloatField()),
                (
                    "churn_drivers",
                    fields.JSONField(
                        default=list, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                (
                    "lifecycle_stage",
                    fields.CharEnumField(
                        description="NEW: NEW\nGROWING: GROWING\nMATURE: MATURE\nDECLINING: DECLINING\nDORMANT: DORMANT",
                        enum_type=LifecycleStage,
                        max_length=16,
                    ),
                ),
                (
                    "next_best_products",
                    fields.JSONField(
                        default=list, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                (
                    "tags",
                    fields.JSONField(
                        default=list, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("computed_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("score_current_deposit", fields.FloatField(null=True)),
                ("score_time_deposit", fields.FloatField(null=True)),
                ("score_debit_card", fields.FloatField(null=True)),
                ("score_credit_card", fields.FloatField(null=True)),
                ("score_personal_loan", fields.FloatField(null=True)),
                ("score_mortgage", fields.FloatField(null=True)),
                ("score_wealth_management", fields.FloatField(null=True)),
                ("score_fund", fields.FloatField(null=True)),
                ("score_insurance", fields.FloatField(null=True)),
                ("score_precious_metal", fields.FloatField(null=True)),
            ],
            options={"table": "portrait", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Segment",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("name", fields.CharField(unique=True, max_length=120)),
                ("description", fields.TextField(null=True, unique=False)),
                (
                    "filter_params",
                    fields.JSONField(
                        source_field="filter",
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "created_by",
                    fields.ForeignKeyField(
                        "models.Staff",
                        source_field="created_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="segments",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("version", fields.IntField(default=1)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={"table": "segment", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="TierProductSets",
            fields=[
                ("tier", fields.CharField(primary_key=True, unique=True, db_index=True, max_length=16)),
                (
                    "customers_per_set",
                    fields.JSONField(
                        default=dict, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("computed_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={"table": "tier_product_sets", "app": "models", "pk_attr": "tier"},
            bases=["Model"],
        ),
        ops.AlterField(
            model_name="Complaint",
            name="customer",
            field=fields.ForeignKeyField(
                "models.Customer",
                source_field="customer_id",
                db_index=True,
                db_constraint=True,
                to_field="id",
                related_name="complaints",
                on_delete=OnDelete.RESTRICT,
            ),
        ),
        ops.RemoveField(model_name="Customer", name="churn_risk"),
        ops.AlterField(
            model_name="ProductHolding",
            name="customer",
            field=fields.ForeignKeyField(
                "models.Customer",
                source_field="customer_id",
                db_index=True,
                db_constraint=True,
                to_field="id",
                related_name="holdings",
                on_delete=OnDelete.RESTRICT,
            ),
        ),
        ops.RunPython(drop_the_portraits_foreign_key, ops.RunPython.noop),
    ]
