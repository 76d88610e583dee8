from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info
from tortoise.expressions import Subquery

from models.customers import (
    ChangeEntry as ChangeEntryModel,
    Channel as ChannelEnum,
    Consent as ConsentModel,
    ConsentPurpose as ConsentPurposeEnum,
    Customer as CustomerModel,
    CustomerKind as CustomerKindEnum,
    CustomerStatus as CustomerStatusEnum,
    CustomerTag as CustomerTagModel,
    Gender as GenderEnum,
    HoldingStatus as HoldingStatusEnum,
    IdType as IdTypeEnum,
    KycStatus as KycStatusEnum,
    ProductHolding as ProductHoldingModel,
    ProductType as ProductTypeEnum,
    RiskLevel as RiskLevelEnum,
)
from schema import loaders
from schema.base import Connection, Node, SortDirection, UserError, to_global_id
from schema.permissions import allow
from schema.protection import HOLDINGS_SHOWN, NOTES_SHOWN
from schema.staff import Staff, load_staff
from services import access, consents as consent_service, customer_rules as rules, customers as customer_service
from services.access import Caller
from services.identity import mask_free_text
from services.pagination import OrderKey, paginate

if TYPE_CHECKING:
    from schema.complaints import Complaint
    from schema.follow_ups import FollowUp
    from schema.interactions import Interaction
    from schema.notes import Note
    from schema.portraits import Portrait
    from schema.surveys import SurveyResponse
    from schema.timeline import TimelineConnection

CustomerKind = strawberry.enum(CustomerKindEnum, name="CustomerKind")
Gender = strawberry.enum(GenderEnum, name="Gender")
IdType = strawberry.enum(IdTypeEnum, name="IdType")
RiskLevel = strawberry.enum(
    RiskLevelEnum,
    name="RiskLevel",
    description=("Investor risk tolerance from the suitability assessment, C1 (conservative) to C5 (aggressive)."),
)
KycStatus = strawberry.enum(KycStatusEnum, name="KycStatus")
CustomerStatus = strawberry.enum(CustomerStatusEnum, name="CustomerStatus")
Channel = strawberry.enum(ChannelEnum, name="Channel")
ConsentPurpose = strawberry.enum(ConsentPurposeEnum, name="ConsentPurpose")
ProductType = strawberry.enum(ProductTypeEnum, name="ProductType")
HoldingStatus = strawberry.enum(HoldingStatusEnum, name="HoldingStatus")


@strawberry.enum
class ValueTier(Enum):
    PRIVATE_BANKING = "PRIVATE_BANKING"
    WEALTH = "WEALTH"
    AFFLUENT = "AFFLUENT"
    MASS = "MASS"


def shows_pii(info: Info) -> bool:
    """Whether this viewer sees personal data unmasked: the one decision for fields and free text."""
    return rules.sees_pii(info.context.viewer_role)


def reveal_text(info: Info, value: str | None) -> str | None:
    """Free text (notes, interaction records, complaint texts, follow-ups, survey comments) as this viewer may
    see it: phone numbers, resident ID numbers and e-mail addresses in it masked for a masked viewer."""
    if value is None or shows_pii(info):
        return value
    return mask_free_text(value)


def reveal(info: Info, customer_id: int, field: str, value: str | None) -> str | None:
    """A personal-data value as this viewer may see it; unmasked values are noted for the pii_read audit."""
    if value is None:
        return None
    context = info.context
    if shows_pii(info):
        context.pii_reads.setdefault(customer_id, set()).add(rules.camel(field))
        return value
    return rules.MASKS[field](value)


@strawberry.type
class Consent:
    purpose: ConsentPurpose
    channel: Channel | None
    granted: bool
    source: str | None
    updated_at: datetime


@strawberry.type
class DataIssue:
    field: str
    message: str


@strawberry.type(
    description="One field-level change of a customer record, with old and new values masked as the viewer requires."
)
class ChangeEntry:
    field: str
    at: datetime
    _m: strawberry.Private[ChangeEntryModel]

    def _value(self, info: Info, value: str | None) -> str | None:
        model_field = {"idNumber": "id_number", "phone": "phone", "email": "email", "address": "address"}.get(
            self.field
        )
        if self.field == "birthDate":  # digits 7-14 of the ID number: hidden from masked viewers
            return value if shows_pii(info) else None
        if self.field == "statusNote":  # free text
            return reveal_text(info, value)
        return reveal(info, self._m.customer_id, model_field, value) if model_field else value

    @strawberry.field
    def old_value(self, info: Info) -> str | None:
        return self._value(info, self._m.old_value)

    @strawberry.field
    def new_value(self, info: Info) -> str | None:
        return self._value(info, self._m.new_value)

    @strawberry.field
    async def actor(self, info: Info) -> Staff | None:
        return await load_staff(info, self._m.actor_id)

    @classmethod
    def from_model(cls, m: ChangeEntryModel) -> ChangeEntry:
        return cls(field=m.field, at=m.at, _m=m)


@strawberry.type
class ProductHolding(Node):
    id: strawberry.ID
    product: ProductType
    balance: Decimal
    currency: str
    opened_at: date
    closed_at: date | None
    status: HoldingStatus
    # A model instance (a mutation, `node`) or a `loaders.Row` (a customer's holdings): its fields read columns only.
    _m: strawberry.Private[ProductHoldingModel | loaders.Row]

    @strawberry.field(description="Masked to the last four digits unless the viewer may read personal data.")
    def account_no(self, info: Info) -> str:
        return reveal(info, self._m.customer_id, "account_no", self._m.account_no)

    @strawberry.field
    async def customer(self, info: Info) -> Customer:
        return Customer.from_model(await info.context.loaders.customer.load(self._m.customer_id))

    @classmethod
    async def resolve_nodes(cls, caller: Caller, pks: list[int]) -> dict[int, ProductHolding]:
        visible = Subquery(customer_service.visible(caller).values("id"))
        return await cls.nodes_in(ProductHoldingModel.filter(customer_id__in=visible), pks)

    @classmethod
    def from_model(cls, m: ProductHoldingModel | loaders.Row) -> ProductHolding:
        return cls(
            id=to_global_id("ProductHolding", m.id),
            product=m.product,
            balance=m.balance,
            currency=m.currency,
            opened_at=m.opened_at,
            closed_at=m.closed_at,
            status=m.status,
            _m=m,
        )


@strawberry.type(
    description="A customer of the bank: a person or an organisation, with their customer information file."
)
class Customer(Node):
    id: strawberry.ID
    customer_no: str = strawberry.field(description="The bank's customer information file number (CIF), unique.")
    kind: CustomerKind
    name: str
    gender: Gender | None
    id_type: IdType | None
    occupation: str | None
    risk_level: RiskLevel | None
    kyc_status: KycStatus
    status: CustomerStatus
    branch: str | None
    preferred_channel: Channel | None
    completeness: float = strawberry.field(description="Share, 0 to 1, of the key fields present and valid.")
    aum: Decimal = strawberry.field(description="Assets under management: active CNY asset holdings.")
    debt: Decimal
    value_tier: ValueTier
    version: int
    created_at: datetime
    updated_at: datetime
    _m: strawberry.Private[CustomerModel]

    @strawberry.field(description="null unless the viewer may read personal data (digits 7-14 of the ID number).")
    def birth_date(self, info: Info) -> date | None:
        if self._m.birth_date is None or not shows_pii(info):
            return None
        info.context.pii_reads.setdefault(self._m.id, set()).add("birthDate")  # personal data: audited
        return self._m.birth_date

    @strawberry.field
    def status_note(self, info: Info) -> str | None:
        return reveal_text(info, self._m.status_note)

    @strawberry.field(description="Masked (e.g. 110105********1234) unless the viewer may read personal data.")
    def id_number(self, info: Info) -> str | None:
        return reveal(info, self._m.id, "id_number", self._m.id_number)

    @strawberry.field(description="Masked (e.g. 138****5678) unless the viewer may read personal data.")
    def phone(self, info: Info) -> str | None:
        return reveal(info, self._m.id, "phone", self._m.phone)

    @strawberry.field
    def email(self, info: Info) -> str | None:
        return reveal(info, self._m.id, "email", self._m.email)

    @strawberry.field
    def address(self, info: Info) -> str | None:
        return reveal(info, self._m.id, "address", self._m.address)

    @strawberry.field
    async def relationship_manager(self, info: Info) -> Staff | None:
        return await load_staff(info, self._m.relationship_manager_id)

    @strawberry.field
    async def tags(self, info: Info) -> list[str]:
        return await info.context.loaders.tags.load(self._m.id)

    @strawberry.field
    async def consents(self, info: Info) -> list[Consent]:
        records = await info.context.loaders.consents.load(self._m.id)
        return [
            Consent(purpose=v.purpose, channel=v.channel, granted=v.granted, source=v.source, updated_at=v.updated_at)
            for v in consent_service.consents_view(records, self._m.created_at)
        ]

    @strawberry.field(description="Fields that are missing or fail validation (ID checksum, phone format, ...).")
    def data_issues(self) -> list[DataIssue]:
        return [DataIssue(field=i.field, message=i.message) for i in rules.assess(self._m)[1]]

    @strawberry.field
    async def holdings(self, info: Info) -> list[ProductHolding]:
        holdings = await info.context.loaders.holdings.load(self._m.id)
        return [ProductHolding.from_model(h) for h in holdings[:HOLDINGS_SHOWN]]  # the cost limit counts on it

    @strawberry.field
    async def history(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[ChangeEntry]:
        page = await paginate(
            ChangeEntryModel.filter(customer_id=self._m.id),
            NEWEST_FIRST,
            first=first,
            after=after,
            last=last,
            before=before,
        )
        return Connection.of(page, ChangeEntry.from_model)

    @strawberry.field
    async def interactions(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Annotated[Interaction, strawberry.lazy("schema.interactions")]]:
        from models.interactions import Interaction as InteractionModel
        from resolvers.common import customer_children
        from schema.interactions import Interaction

        return await customer_children(
            info, InteractionModel, self._m.id, INTERACTION_ORDER, Interaction.from_model, first, after, last, before
        )

    @strawberry.field
    async def follow_ups(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Annotated[FollowUp, strawberry.lazy("schema.follow_ups")]]:
        from models.follow_ups import FollowUp as FollowUpModel
        from resolvers.common import customer_children
        from schema.follow_ups import FollowUp

        return await customer_children(
            info, FollowUpModel, self._m.id, NEWEST_CREATED, FollowUp.from_model, first, after, last, before
        )

    @strawberry.field
    async def complaints(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Annotated[Complaint, strawberry.lazy("schema.complaints")]]:
        from models.complaints import Complaint as ComplaintModel
        from resolvers.common import customer_children
        from schema.complaints import Complaint

        return await customer_children(
            info, ComplaintModel, self._m.id, NEWEST_RECEIVED, Complaint.from_model, first, after, last, before
        )

    @strawberry.field(extensions=allow(access.SURVEY_READERS))
    async def survey_responses(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Annotated[SurveyResponse, strawberry.lazy("schema.surveys")]]:
        from models.surveys import SurveyResponse as Model
        from resolvers.common import customer_children
        from schema.surveys import SurveyResponse

        return await customer_children(
            info, Model, self._m.id, NEWEST_SUBMITTED, SurveyResponse.from_model, first, after, last, before
        )

    @strawberry.field
    async def notes(self, info: Info) -> list[Annotated[Note, strawberry.lazy("schema.notes")]]:
        from schema.notes import Note

        notes = await info.context.loaders.notes.load(self._m.id)
        return [Note.from_model(n) for n in notes[:NOTES_SHOWN]]  # the newest; the cost limit counts on it

    @strawberry.field(extensions=allow(access.PORTRAIT_READERS))
    async def portrait(self, info: Info) -> Annotated[Portrait, strawberry.lazy("schema.portraits")] | None:
        from schema.portraits import Portrait

        found = await info.context.loaders.portrait.load(self._m.id)
        return Portrait.from_model(found, self._m) if found else None

    @strawberry.field(description="Everything that happened with this customer, newest first.")
    async def timeline(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Annotated[TimelineConnection, strawberry.lazy("schema.timeline")]:
        from schema.timeline import TimelineConnection, TimelineItem
        from services import timeline

        def item(entry: timeline.Entry) -> TimelineItem:
            found = TimelineItem.from_entry(entry)
            found.title, found.detail = reveal_text(info, found.title), reveal_text(info, found.detail)
            return found

        page = await timeline.page(self._m.id, first=first, after=after, last=last, before=before)
        return TimelineConnection.of(page, item)

    @strawberry.field
    async def possible_duplicates(self, info: Info) -> list[Customer]:
        caller = await info.context.caller()

        async def load(customers: list[CustomerModel]) -> list[list[CustomerModel]]:
            found = await customer_service.possible_duplicates_of(caller, customers)
            return [found[c.id] for c in customers]

        # One loader per request: every customer of a list asks at once (two statements in all).
        loader = info.context.loaders.made("possible_duplicates", lambda: load, cache_key=lambda c: c.id)
        return [Customer.from_model(c) for c in await loader.load(self._m)]

    @classmethod
    async def resolve_nodes(cls, caller: Caller, pks: list[int]) -> dict[int, Customer]:
        return await cls.nodes_in(customer_service.visible(caller), pks)

    @classmethod
    def from_model(cls, m: CustomerModel) -> Customer:
        return cls(
            id=to_global_id("Customer", m.id),
            customer_no=m.customer_no,
            kind=m.kind,
            name=m.name,
            gender=m.gender,
            id_type=m.id_type,
            occupation=m.occupation,
            risk_level=m.risk_level,
            kyc_status=m.kyc_status,
            status=m.status,
            branch=m.branch,
            preferred_channel=m.preferred_channel,
            completeness=m.completeness,
            aum=m.aum,
            debt=m.debt,
            value_tier=ValueTier[rules.value_tier(m.aum)],
            version=m.version,
            created_at=m.created_at,
            updated_at=m.updated_at,
            _m=m,
        )


loaders.register("customer", loaders.by_id(CustomerModel))
loaders.register("holdings", loaders.grouped(ProductHoldingModel, "opened_at"))
loaders.read_as_rows(ProductHoldingModel)  # ProductHolding reads its columns only
loaders.register("tags", loaders.grouped(CustomerTagModel, "id", lambda row: row.tag))
loaders.register("consents", loaders.grouped(ConsentModel, "id"))

NEWEST_FIRST = [OrderKey("at", descending=True), OrderKey("id", descending=True)]
INTERACTION_ORDER = [OrderKey("occurred_at", descending=True), OrderKey("id", descending=True)]
NEWEST_RECEIVED = [OrderKey("received_at", descending=True), OrderKey("id", descending=True)]
NEWEST_CREATED = [OrderKey("created_at", descending=True), OrderKey("id", descending=True)]
NEWEST_SUBMITTED = [OrderKey("submitted_at", descending=True), OrderKey("id", descending=True)]


@strawberry.input
class CustomerFilter:
    search: str | None = strawberry.field(
        default=None,
        description=(
            "Matches name, customer number, phone, email or ID number; phone, email and ID number on the whole value "
            "only for a viewer who sees them masked."
        ),
    )
    status: list[CustomerStatus] | None = None
    kind: CustomerKind | None = None
    branch: str | None = None
    relationship_manager_id: strawberry.ID | None = None
    tags: list[str] | None = None
    risk_level: list[RiskLevel] | None = None
    value_tier: list[ValueTier] | None = None
    min_aum: Decimal | None = None
    max_aum: Decimal | None = None
    min_churn_risk: float | None = None
    holds_product: ProductType | None = None
    lacks_product: ProductType | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@strawberry.enum
class CustomerOrderField(Enum):
    NAME = "name"
    CUSTOMER_NO = "customer_no"
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    AUM = "aum"
    CHURN_RISK = "churn_risk"
    COMPLETENESS = "completeness"


@strawberry.input
class CustomerOrder:
    field: CustomerOrderField
    direction: SortDirection


@strawberry.input
class ConsentInput:
    purpose: ConsentPurpose
    channel: Channel | None = None
    granted: bool
    source: str | None = None


@strawberry.input
class CreateCustomerInput:
    customer_no: str | None = None
    kind: CustomerKind
    name: str
    gender: Gender | None = None
    birth_date: date | None = None
    id_type: IdType | None = None
    id_number: str | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    occupation: str | None = None
    risk_level: RiskLevel | None = None
    branch: str | None = None
    preferred_channel: Channel | None = None
    relationship_manager_id: strawberry.ID | None = None
    tags: list[str] | None = None
    consents: list[ConsentInput] | None = None


@strawberry.input
class UpdateCustomerInput:
    id: strawberry.ID
    version: int = strawberry.field(
        description="The version that the caller read; a newer stored version gives STALE_VERSION."
    )
    name: str | None = strawberry.UNSET
    gender: Gender | None = strawberry.UNSET
    birth_date: date | None = strawberry.UNSET
    id_type: IdType | None = strawberry.UNSET
    id_number: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET
    address: str | None = strawberry.UNSET
    occupation: str | None = strawberry.UNSET
    risk_level: RiskLevel | None = strawberry.UNSET
    kyc_status: KycStatus | None = strawberry.UNSET
    status: CustomerStatus | None = strawberry.UNSET
    branch: str | None = strawberry.UNSET
    preferred_channel: Channel | None = strawberry.UNSET
    relationship_manager_id: strawberry.ID | None = strawberry.UNSET
    tags: list[str] | None = strawberry.UNSET


@strawberry.type
class CustomerPayload:
    customer: Customer | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class SetConsentsInput:
    customer_id: strawberry.ID
    consents: list[ConsentInput]


@strawberry.input
class MergeCustomersInput:
    survivor_id: strawberry.ID
    duplicate_id: strawberry.ID
    dry_run: bool | None = strawberry.field(
        default=None, description="Report what would move without changing anything."
    )


@strawberry.type
class MergeCustomersPayload:
    customer: Customer | None = None
    moved: strawberry.scalars.JSON | None = strawberry.field(
        default=None, description="Counts of records moved to the survivor, by kind."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class EraseCustomerInput:
    id: strawberry.ID
    reason: str


@strawberry.input
class UpsertHoldingInput:
    customer_id: strawberry.ID
    account_no: str
    product: ProductType
    balance: Decimal
    currency: str | None = None
    opened_at: date
    closed_at: date | None = None


@strawberry.type
class HoldingPayload:
    holding: ProductHolding | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ImportCustomersInput:
    file: strawberry.file_uploads.Upload = strawberry.field(
        description=(
            "A CSV file with a header row; columns named as CreateCustomerInput's fields in snake_case or camelCase."
        )
    )
    update_existing: bool | None = strawberry.field(
        default=None, description=("Rows whose customerNo exists already update that customer instead of failing.")
    )
