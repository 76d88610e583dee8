from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class CustomerKind(StrEnum):
    INDIVIDUAL = "INDIVIDUAL"
    CORPORATE = "CORPORATE"


class Gender(StrEnum):
    MALE = "MALE"
    FEMALE = "FEMALE"
    UNKNOWN = "UNKNOWN"


class IdType(StrEnum):
    RESIDENT_ID = "RESIDENT_ID"
    PASSPORT = "PASSPORT"
    HK_MACAO_PERMIT = "HK_MACAO_PERMIT"
    TAIWAN_PERMIT = "TAIWAN_PERMIT"
    FOREIGN_PERMANENT_RESIDENT = "FOREIGN_PERMANENT_RESIDENT"
    UNIFIED_SOCIAL_CREDIT_CODE = "UNIFIED_SOCIAL_CREDIT_CODE"


class RiskLevel(StrEnum):
    C1 = "C1"
    C2 = "C2"
    C3 = "C3"
    C4 = "C4"
    C5 = "C5"


class KycStatus(StrEnum):
    PENDING = "PENDING"
    VERIFIED = "VERIFIED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"


class CustomerStatus(StrEnum):
    ACTIVE = "ACTIVE"
    DORMANT = "DORMANT"
    CLOSED = "CLOSED"
    ERASED = "ERASED"


class Channel(StrEnum):
    BRANCH = "BRANCH"
    PHONE = "PHONE"
    SMS = "SMS"
    EMAIL = "EMAIL"
    MOBILE_APP = "MOBILE_APP"
    ONLINE_BANKING = "ONLINE_BANKING"
    WECHAT = "WECHAT"
    VIDEO = "VIDEO"
    LETTER = "LETTER"
    REGULATOR = "REGULATOR"


class ConsentPurpose(StrEnum):
    MARKETING = "MARKETING"
    SURVEY = "SURVEY"
    PROFILING = "PROFILING"
    THIRD_PARTY_SHARING = "THIRD_PARTY_SHARING"


class ProductType(StrEnum):
    CURRENT_DEPOSIT = "CURRENT_DEPOSIT"
    TIME_DEPOSIT = "TIME_DEPOSIT"
    DEBIT_CARD = "DEBIT_CARD"
    CREDIT_CARD = "CREDIT_CARD"
    PERSONAL_LOAN = "PERSONAL_LOAN"
    MORTGAGE = "MORTGAGE"
    WEALTH_MANAGEMENT = "WEALTH_MANAGEMENT"
    FUND = "FUND"
    INSURANCE = "INSURANCE"
    PRECIOUS_METAL = "PRECIOUS_METAL"


class HoldingStatus(StrEnum):
    ACTIVE = "ACTIVE"
    CLOSED = "CLOSED"


class Customer(Model):
    id = fields.IntField(primary_key=True)
    customer_no = fields.CharField(max_length=16, unique=True)
    kind = fields.CharEnumField(CustomerKind, max_length=16)
    name = fields.CharField(max_length=128, db_index=True)
    gender = fields.CharEnumField(Gender, max_length=8, null=True)
    birth_date = fields.DateField(null=True)
    id_type = fields.CharEnumField(IdType, max_length=32, null=True)
    id_number = fields.CharField(max_length=32, null=True)
    phone = fields.CharField(max_length=20, null=True, db_index=True)
    email = fields.CharField(max_length=254, null=True, db_index=True)
    address = fields.CharField(max_length=256, null=True)
    occupation = fields.CharField(max_length=64, null=True)
    risk_level = fields.CharEnumField(RiskLevel, max_length=2, null=True)
    kyc_status = fields.CharEnumField(KycStatus, max_length=16, default=KycStatus.PENDING)
    status = fields.CharEnumField(CustomerStatus, max_length=16, default=CustomerStatus.ACTIVE, db_index=True)
    status_note = fields.CharField(max_length=256, null=True)
    branch = fields.CharField(max_length=64, null=True, db_index=True)
    preferred_channel = fields.CharEnumField(Channel, max_length=16, null=True)
    relationship_manager = fields.ForeignKeyField(
        "models.Staff", related_name="customers", null=True, on_delete=fields.SET_NULL
    )
    # Derived on every write, stored so that lists can filter and sort on them in the database.
    completeness = fields.FloatField(default=0.0)
    aum = fields.DecimalField(max_digits=20, decimal_places=2, default=0)
    debt = fields.DecimalField(max_digits=20, decimal_places=2, default=0)
    # Set when data behind the portrait changed; the portrait computation clears it.
    portrait_stale_since = fields.DatetimeField(null=True)
    version = fields.IntField(default=1)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)
    updated_at = fields.DatetimeField(auto_now=True, db_index=True)

    class Meta:
        table = "customer"
        unique_together = (("id_type", "id_number"),)
        # The customer lists' keyset pages: a branch's newest first (the default order) and by AUM, and the bank's
        # by AUM (also the value-tier and AUM range filters); docs/QUERY_PLANS.md.
        indexes = (("branch", "created_at", "id"), ("branch", "aum", "id"), ("aum", "id"))


class CustomerTag(Model):
    id = fields.IntField(primary_key=True)
    customer = fields.ForeignKeyField("models.Customer", related_name="tag_rows", on_delete=fields.CASCADE)
    tag = fields.CharField(max_length=32, db_index=True)

    class Meta:
        table = "customer_tag"
        unique_together = (("customer", "tag"),)


class ProductHolding(Model):
    id = fields.IntField(primary_key=True)
    # Indexed: the portrait computation and a customer's page read the holdings of given customers.
    customer = fields.ForeignKeyField(
        "models.Customer", related_name="holdings", on_delete=fields.RESTRICT, db_index=True
    )
    account_no = fields.CharField(max_length=40, unique=True)
    product = fields.CharEnumField(ProductType, max_length=32)
    balance = fields.DecimalField(max_digits=20, decimal_places=2)
    currency = fields.CharField(max_length=3, default="CNY")
    opened_at = fields.DateField()
    closed_at = fields.DateField(null=True)
    status = fields.CharEnumField(HoldingStatus, max_length=8, default=HoldingStatus.ACTIVE)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "product_holding"


class Consent(Model):
    # The current answer for one purpose (and channel, where the answer is channel-specific).
    id = fields.IntField(primary_key=True)
    customer = fields.ForeignKeyField("models.Customer", related_name="consents", on_delete=fields.RESTRICT)
    purpose = fields.CharEnumField(ConsentPurpose, max_length=32)
    channel = fields.CharEnumField(Channel, max_length=16, null=True)
    granted = fields.BooleanField()
    source = fields.CharField(max_length=64, null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "consent"
        unique_together = (("customer", "purpose", "channel"),)


class ConsentChange(Model):
    # Every answer ever given, kept for evidence.
    id = fields.BigIntField(primary_key=True)
    customer = fields.ForeignKeyField("models.Customer", related_name="consent_changes", on_delete=fields.RESTRICT)
    purpose = fields.CharEnumField(ConsentPurpose, max_length=32)
    channel = fields.CharEnumField(Channel, max_length=16, null=True)
    granted = fields.BooleanField()
    source = fields.CharField(max_length=64, null=True)
    actor = fields.ForeignKeyField("models.Staff", related_name="consent_changes", null=True, on_delete=fields.SET_NULL)
    at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "consent_change"


class ChangeEntry(Model):
    id = fields.BigIntField(primary_key=True)
    customer = fields.ForeignKeyField("models.Customer", related_name="changes", on_delete=fields.RESTRICT)
    field = fields.CharField(max_length=64)
    old_value = fields.TextField(null=True)
    new_value = fields.TextField(null=True)
    actor = fields.ForeignKeyField(
        "models.Staff", related_name="customer_changes", null=True, on_delete=fields.SET_NULL
    )
    at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "change_entry"
        # A customer's history and timeline, newest first.
        indexes = (("customer_id", "at"),)
