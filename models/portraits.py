from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.customers import ProductType
from models.surveys import NpsCategory


class ValueTier(StrEnum):
    PRIVATE_BANKING = "PRIVATE_BANKING"
    WEALTH = "WEALTH"
    AFFLUENT = "AFFLUENT"
    MASS = "MASS"


class LifecycleStage(StrEnum):
    NEW = "NEW"
    GROWING = "GROWING"
    MATURE = "MATURE"
    DECLINING = "DECLINING"
    DORMANT = "DORMANT"


class Portrait(Model):
    # One row per customer, replaced by every computation (services/portraits.py); never written by a request.
    # Whether it is stale is the customer's `portrait_stale_since`, which every change behind it sets.
    # An id of its own: Tortoise's migrations cannot tell a one-to-one primary key from its column (the
    # autodetector would see `pk_attr` change on every run); the one-to-one field keeps it one per customer.
    id = fields.BigIntField(primary_key=True)
    # No foreign-key constraint on PostgreSQL (dropped by migration 0008; Tortoise's migrations would create it
    # anyway): each checked row locks its customer row, a tenth of a full recompute's database time. Only
    # services/portraits.py writes portraits, for customers it has just read; erasures and merges delete them in
    # code (the hooks at its end), and customers are never deleted.
    customer = fields.OneToOneField(
        "models.Customer", related_name="portrait", on_delete=fields.CASCADE, db_constraint=False
    )
    # Not indexed: the tier filters of the customer lists read the customer's AUM (customer_rules.TIER_FLOORS).
    value_tier = fields.CharEnumField(ValueTier, max_length=16)
    aum = fields.DecimalField(max_digits=20, decimal_places=2)
    debt = fields.DecimalField(max_digits=20, decimal_places=2)
    product_count = fields.IntField()
    product_types = fields.JSONField(default=list)
    tenure_months = fields.IntField()
    interactions_90d = fields.IntField()
    last_contact_at = fields.DatetimeField(null=True)
    complaint_count = fields.IntField()
    open_complaints = fields.IntField()
    avg_csat = fields.FloatField(null=True)
    nps_category = fields.CharEnumField(NpsCategory, max_length=16, null=True)
    # What the customer lists filter and sort on (services.customers.sortable).
    churn_risk = fields.FloatField()
    churn_drivers = fields.JSONField(default=list)
    lifecycle_stage = fields.CharEnumField(LifecycleStage, max_length=16)
    # [{"product": ..., "score": ..., "reason": ...}], best first; the same scores as the columns below.
    next_best_products = fields.JSONField(default=list)
    tags = fields.JSONField(default=list)
    computed_at = fields.DatetimeField()
    # The recommendation score of each product (score_column), null where it is not recommended (held, nobody
    # like the customer holds it, no PROFILING consent, or the relationship is over): columns rather than a row
    # per customer and product, so that `prospects(product)` ranks on one column of the portraits and a full
    # recompute writes one row per customer (docs/PORTRAITS.md). A new ProductType needs its column here.
    score_current_deposit = fields.FloatField(null=True)
    score_time_deposit = fields.FloatField(null=True)
    score_debit_card = fields.FloatField(null=True)
    score_credit_card = fields.FloatField(null=True)
    score_personal_loan = fields.FloatField(null=True)
    score_mortgage = fields.FloatField(null=True)
    score_wealth_management = fields.FloatField(null=True)
    score_fund = fields.FloatField(null=True)
    score_insurance = fields.FloatField(null=True)
    score_precious_metal = fields.FloatField(null=True)

    class Meta:
        table = "portrait"


def score_column(product: ProductType) -> str:
    """The portrait's column holding the recommendation score of `product`."""
    return f"score_{product.value.lower()}"


class TierProductSets(Model):
    # How many current customers of a value tier hold each exact set of active products ({mask: count}, a mask
    # of services.portrait_rules.PRODUCT_BITS): the statistics behind next best products. One scan of every
    # holding makes them, so computations share them and renew them when older than
    # portrait_rules.STATISTICS_MAX_AGE, instead of every batch scanning the holdings again.
    tier = fields.CharField(max_length=16, primary_key=True)
    customers_per_set = fields.JSONField(default=dict)
    computed_at = fields.DatetimeField()

    class Meta:
        table = "tier_product_sets"
