from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from models.customers import (
    Channel,
    ConsentPurpose,
    CustomerKind,
    CustomerStatus,
    Gender,
    HoldingStatus,
    IdType,
    KycStatus,
    ProductType,
    RiskLevel,
)


class Migration(migrations.Migration):
    dependencies = [("models", "0002_audit_ip_index")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Customer",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("customer_no", fields.CharField(unique=True, max_length=16)),
                (
                    "kind",
                    fields.CharEnumField(
                        description="INDIVIDUAL: INDIVIDUAL\nCORPORATE: CORPORATE",
                        enum_type=CustomerKind,
                        max_length=16,
                    ),
                ),
                ("name", fields.CharField(db_index=True, max_length=128)),
                (
                    "gender",
                    fields.CharEnumField(
                        null=True,
                        description="MALE: MALE\nFEMALE: FEMALE\nUNKNOWN: UNKNOWN",
                        enum_type=Gender,
                        max_length=8,
                    ),
                ),
                ("birth_date", fields.DateField(null=True)),
                (
                    "id_type",
                    fields.CharEnumField(
                        null=True,
                        description="RESIDENT_ID: RESIDENT_ID\nPASSPORT: PASSPORT\nHK_MACAO_PERMIT: HK_MACAO_PERMIT\nTAIWAN_PERMIT: TAIWAN_PERMIT\nFOREIGN_PERMANENT_RESIDENT: FOREIGN_PERMANENT_RESIDENT\nUNIFIED_SOCIAL_CREDIT_CODE: UNIFIED_SOCIAL_CREDIT_CODE",
                        enum_type=IdType,
                        max_length=32,
                    ),
                ),
                ("id_number", fields.CharField(null=True, max_length=32)),
                ("phone", fields.CharField(null=True, db_index=True, max_length=20)),
                ("email", fields.CharField(null=True, db_index=True, max_length=254)),
                ("address", fields.CharField(null=True, max_length=256)),
                ("occupation", fields.CharField(null=True, max_length=64)),
                (
                    "risk_level",
                    fields.CharEnumField(
                        null=True,
                        description="C1: C1\nC2: C2\nC3: C3\nC4: C4\nC5: C5",
                        enum_type=RiskLevel,
                        max_length=2,
                    ),
                ),
                (
                    "kyc_status",
                    fields.CharEnumField(
                        default=KycStatus.PENDING,
                        description="PENDING: PENDING\nVERIFIED: VERIFIED\nEXPIRED: EXPIRED\nREJECTED: REJECTED",
                        enum_type=KycStatus,
                        max_length=16,
                    ),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        default=CustomerStatus.ACTIVE,
                        db_index=True,
                        description="ACTIVE: ACTIVE\nDORMANT: DORMANT\nCLOSED: CLOSED\nERASED: ERASED",
                        enum_type=CustomerStatus,
                        max_length=16,
                    ),
                ),
                ("status_note", fields.CharField(null=True, max_length=256)),
                ("branch", fields.CharField(null=True, db_index=True, max_length=64)),
                (
                    "preferred_channel",
                    fields.CharEnumField(
                        null=True,
                        description="BRANCH: BRANCH\nPHONE: PHONE\nSMS: SMS\nEMAIL: EMAIL\nMOBILE_APP: MOBILE_APP\nONLINE_BANKING: ONLINE_BANKING\nWECHAT: WECHAT\nVIDEO: VIDEO\nLETTER: LETTER\nREGULATOR: REGULATOR",
                        enum_type=Channel,
                        max_length=16,
                    ),
                ),
                (
                    "relationship_manager",
                    fields.ForeignKeyField(
                        "models.Staff",
                        source_field="relationship_manager_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="customers",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("completeness", fields.FloatField(default=0.0)),
                ("aum", fields.DecimalField(default=0, max_digits=20, decimal_places=2)),
                ("debt", fields.DecimalField(default=0, max_digits=20, decimal_places=2)),
                ("churn_risk", fields.FloatField(default=0.0)),
                ("version", fields.IntField(default=1)),
                ("created_at", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(db_index=True, auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "customer",
                "app": "models",
                "unique_together": (("id_type", "id_number"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ChangeEntry",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "models.Customer",
                        source_field="customer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="changes",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("field", fields.CharField(max_length=64)),
                ("old_value", fields.TextField(null=True, unique=False)),
                ("new_value", fields.TextField(null=True, unique=False)),
                (
                    "actor",
                    fields.ForeignKeyField(
                        "models.Staff",
                        source_field="actor_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="customer_changes",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("at", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
            ],
            options={"table": "change_entry", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Consent",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "models.Customer",
                        source_field="customer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="consents",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "purpose",
                    fields.CharEnumField(
                        description="MARKETING: MARKETING\nSURVEY: SURVEY\nPROFILING: PROFILING\nTHIRD_PARTY_SHARING: THIRD_PARTY_SHARING",
                        enum_type=ConsentPurpose,
                        max_length=32,
                    ),
                ),
                (
                    "channel",
                    fields.CharEnumField(
                        null=True,
                        description="BRANCH: BRANCH\nPHONE: PHONE\nSMS: SMS\nEMAIL: EMAIL\nMOBILE_APP: MOBILE_APP\nONLINE_BANKING: ONLINE_BANKING\nWECHAT: WECHAT\nVIDEO: VIDEO\nLETTER: LETTER\nREGULATOR: REGULATOR",
                        enum_type=Channel,
                        max_length=16,
                    ),
                ),
                ("granted", fields.BooleanField()),
                ("source", fields.CharField(null=True, max_length=64)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "consent",
                "app": "models",
                "unique_together": (("customer", "purpose", "channel"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ConsentChange",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "models.Customer",
                        source_field="customer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="consent_changes",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "purpose",
                    fields.CharEnumField(
                        description="MARKETING: MARKETING\nSURVEY: SURVEY\nPROFILING: PROFILING\nTHIRD_PARTY_SHARING: THIRD_PARTY_SHARING",
                        enum_type=ConsentPurpose,
                        max_length=32,
                    ),
                ),
                (
                    "channel",
                    fields.CharEnumField(
                        null=True,
                        description="BRANCH: BRANCH\nPHONE: PHONE\nSMS: SMS\nEMAIL: EMAIL\nMOBILE_APP: MOBILE_APP\nONLINE_BANKING: ONLINE_BANKING\nWECHAT: WECHAT\nVIDEO: VIDEO\nLETTER: LETTER\nREGULATOR: REGULATOR",
                        enum_type=Channel,
                        max_length=16,
                    ),
                ),
                ("granted", fields.BooleanField()),
                ("source", fields.CharField(null=True, max_length=64)),
                (
                    "actor",
                    fields.ForeignKeyField(
                        "models.Staff",
                        source_field="actor_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="consent_changes",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "consent_change", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="CustomerTag",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "models.Customer",
                        source_field="customer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="tag_rows",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("tag", fields.CharField(db_index=True, max_length=32)),
            ],
            options={
                "table": "customer_tag",
                "app": "models",
                "unique_together": (("customer", "tag"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ProductHolding",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "models.Customer",
                        source_field="customer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="holdings",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("account_no", fields.CharField(unique=True, max_length=40)),
                (
                    "product",
                    fields.CharEnumField(
                        description="CURRENT_DEPOSIT: CURRENT_DEPOSIT\nTIME_DEPOSIT: TIME_DEPOSIT\nDEBIT_CARD: DEBIT_CARD\nCREDIT_CARD: CREDIT_CARD\nPERSONAL_LOAN: PERSONAL_LOAN\nMORTGAGE: MORTGAGE\nWEALTH_MANAGEMENT: WEALTH_MANAGEMENT\nFUND: FUND\nINSURANCE: INSURANCE\nPRECIOUS_METAL: PRECIOUS_METAL",
                        enum_type=ProductType,
                        max_length=32,
                    ),
                ),
                ("balance", fields.DecimalField(max_digits=20, decimal_places=2)),
                ("currency", fields.CharField(default="CNY", max_length=3)),
                ("opened_at", fields.DateField()),
                ("closed_at", fields.DateField(null=True)),
                (
                    "status",
                    fields.CharEnumField(
                        default=HoldingStatus.ACTIVE,
                        description="ACTIVE: ACTIVE\nCLOSED: CLOSED",
                        enum_type=HoldingStatus,
                        max_length=8,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={"table": "product_holding", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="UploadChunk",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "job",
                    fields.ForeignKeyField(
                        "models.Job",
                        source_field="job_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="upload_chunks",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("seq", fields.IntField()),
                ("data", fields.BinaryField()),
            ],
            options={"table": "upload_chunk", "app": "models", "unique_together": (("job", "seq"),), "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Job",
            name="checkpoint",
            field=fields.IntField(default=0),
        ),
    ]
