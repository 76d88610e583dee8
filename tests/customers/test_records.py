"""Merging duplicates, PIPL erasure and PIPL export (services.customer_merge, customer_erasure, customer_export,
all built on services.customer_relations), at the service level and through HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from tortoise import Tortoise
from tortoise.fields.relational import ForeignKeyFieldInstance

from models.audit import AuditEntry
from models.customers import (
    ChangeEntry,
    Consent,
    ConsentChange,
    ConsentPurpose,
    Customer,
    CustomerKind,
    CustomerStatus,
    CustomerTag,
    ProductHolding,
    ProductType,
)
from models.staff import Role
from schema.base import to_global_id
from services import (
    consents as consent_service,
    customer_erasure,
    customer_export,
    customer_merge,
    customer_relations,
    customers as customer_service,
)
from services.access import Caller
from services.customer_rules import ERASED_NAME
from services.errors import DomainError, ErrorCode
from services.identity import resident_id_check_char, unified_social_credit_check_char
from tests.conftest import make_staff

ROOT = Path(__file__).resolve().parents[2]
BRANCH, OTHER_BRANCH = "北京朝阳支行", "上海浦东支行"


def resident_id(birth: str = "19850412", sequence: str = "123", region: str = "110105") -> str:
    first17 = region + birth + sequence
    return first17 + resident_id_check_char(first17)


def credit_code(body: str = "91110105MA01ABCD1") -> str:
    return body + unified_social_credit_check_char(body)


def caller_of(member) -> Caller:
    return Caller(staff=member, request_id="test-records", ip="203.0.113.7")


async def new_customer(caller: Caller, consents: list[dict] | None = None, **fields) -> Customer:
    data = {"kind": CustomerKind.INDIVIDUAL, "name": "张伟", "branch": BRANCH, **fields}
    return await customer_service.create(caller, data, consents)


async def holding(caller: Caller, customer: Customer, account_no: str, product: ProductType, balance: str) -> None:
    await customer_service.upsert_holding(
        caller,
        customer.id,
        account_no=account_no,
        product=product,
        balance=balance,
        currency="CNY",
        opened_at=date(2020, 1, 1),
        closed_at=None,
    )


async def set_consent_time(customer: Customer, purpose: ConsentPurpose, when: datetime) -> None:
    await Consent.filter(customer_id=customer.id, purpose=purpose, channel=None).update(updated_at=when)


async def expect_error(code: ErrorCode, call, field: str | None = None) -> DomainError:
    with pytest.raises(DomainError) as caught:
        await call
    assert caught.value.code == code, caught.value.message
    if field is not None:
        assert caught.value.field == [field]
    return caught.value


async def rows_of(customer_id: int) -> dict[str, int]:
    """How many rows of each kind point at the customer, found the same way the service finds them."""
    return {r.kind: await r.rows(customer_id).count() for r in customer_relations.direct_relations()}


# ---------------------------------------------------------------- the PII scanner


async def table_names() -> list[str]:
    connection = Tortoise.get_connection("default")
    if connection.capabilities.dialect == "sqlite":
        rows = await connection.execute_query_dict(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        return [r["name"] for r in rows]
    rows = await connection.execute_query_dict(
        "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() "
        "AND table_type = 'BASE TABLE'"
    )
    return [r["name"] for r in rows]


def _forms(value) -> list[str]:
    """The texts a stored value can be searched as; JSON is also decoded (it may store \\u escapes)."""
    if value is None or isinstance(value, bool | int | float | Decimal):
        return []
    if isinstance(value, bytes | bytearray | memoryview):
        return [bytes(value).decode("utf-8", "ignore")]
    if isinstance(value, dict | list):
        return [json.dumps(value, ensure_ascii=False)]
    text = str(value)
    forms = [text]
    if text[:1] in '{["':
        try:
            forms.append(json.dumps(json.loads(text), ensure_ascii=False))
        except ValueError:
            pass
    return forms


async def find_traces(*needles: str) -> list[tuple[str, str, str]]:
    """(table, column, needle) for every text, JSON or binary value anywhere in the database that
    contains one of `needles` (case-insensitive)."""
    wanted = [n.lower() for n in needles if n]
    connection = Tortoise.get_connection("default")
    found = set()
    for table in await table_names():
        for row in await connection.execute_query_dict(f'SELECT * FROM "{table}"'):
            for column, value in row.items():
                for form in _forms(value):
                    for needle in wanted:
                        if needle in form.lower():
                            found.add((table, column, needle))
    return sorted(found)


# ---------------------------------------------------------------- discovery


def test_discovery_finds_every_foreign_key_to_customer(app) -> None:
    # Independently of the service: every ForeignKeyField / OneToOneField of every registered model.
    expected = {
        (model, name)
        for model in Tortoise.apps.get_models_iterable()
        for name, field in model._meta.fields_map.items()
        if isinstance(field, ForeignKeyFieldInstance) and field.related_model is Customer
    }
    relations = customer_relations.direct_relations()
    assert {(r.model, r.field) for r in relations} == expected
    # Every domain's relations to a customer, each under a readable plural.
    assert {r.kind for r in relations} >= {"holdings", "consents", "consentChanges", "changes", "tags"}
    assert len({r.kind for r in relations}) == len(relations)
    assert all(r.depth == 1 and r.path == f"{r.field}_id" for r in relations)
    # Indirect relations come after, each model once, none of them also a direct one.
    everything = customer_relations.customer_relations()
    assert everything[: len(relations)] == relations
    indirect = everything[len(relations) :]
    assert all(r.depth > 1 for r in indirect) and not {r.model for r in indirect} & {r.model for r in relations}
    assert len({r.model for r in indirect}) == len(indirect)
    # Each relation's kind is a readable plural, and the hooks only name models that really relate.
    related = {r.model for r in relations}
    assert set(customer_relations.MERGE_RESOLVERS) <= related
    assert set(customer_relations.SCRUBBERS) <= related
    assert set(customer_relations.EXPORT_FORMATTERS) - {Customer} <= related


def test_a_new_module_is_merged_erased_and_exported_without_changes_here(tmp_path: Path) -> None:
    """A module with a foreign key, a child table, a one-to-one and a many-to-many to Customer, in its
    own process (models register once per process) and its own SQLite file."""
    (tmp_path / "later_module.py").write_text(
        textwrap.dedent("""
        from tortoise import fields
        from tortoise.models import Model

        class Complaint(Model):
            id = fields.IntField(primary_key=True)
            customer = fields.ForeignKeyField("models.Customer", related_name="complaints",
                                              on_delete=fields.RESTRICT)
            category = fields.CharField(max_length=32)
            description = fields.TextField()
            contact = fields.JSONField(null=True)
            amount = fields.DecimalField(max_digits=12, decimal_places=2, null=True)

            class Meta:
                table = "complaint"

        class ComplaintEvent(Model):
            id = fields.IntField(primary_key=True)
            complaint = fields.ForeignKeyField("models.Complaint", related_name="events")
            message = fields.CharField(max_length=200, null=True)

            class Meta:
                table = "complaint_event"

        class Portrait(Model):
            customer = fields.OneToOneField("models.Customer", related_name="portrait", primary_key=True)
            churn = fields.FloatField(default=0)

            class Meta:
                table = "portrait"

        class Campaign(Model):
            id = fields.IntField(primary_key=True)
            title = fields.CharField(max_length=32)
            audience = fields.ManyToManyField("models.Customer", related_name="campaigns")

            class Meta:
                table = "campaign"
    """)
    )
    script = textwrap.dedent(f"""
        import asyncio, json, sys
        sys.path[:0] = [{str(ROOT)!r}, {str(tmp_path)!r}]
        from datetime import date
        from tortoise import Tortoise
        from core.db import MODEL_MODULES

        async def main():
            try:
                print(json.dumps(await run(), ensure_ascii=False))
            finally:  # an open connection would keep the process alive
                await Tortoise.close_connections()

        async def run():
            await Tortoise.init(config={{"connections": {{"default": "sqlite://{tmp_path}/db.sqlite3"}},
                                         "apps": {{"models": {{"models": MODEL_MODULES + ["later_module"]}}}},
                                         "use_tz": True, "timezone": "UTC"}})
            await Tortoise.generate_schemas()
            from later_module import Campaign, Complaint, ComplaintEvent, Portrait
            from models.customers import Customer, CustomerKind
            from services import customer_erasure, customer_export, customer_merge, customer_relations
            from services.access import COMMAND_LINE as op
            out = {{"kinds": sorted(r.kind for r in customer_relations.customer_relations())}}
            a = await Customer.create(customer_no="C0000000001", kind=CustomerKind.INDIVIDUAL, name="李娜",
                                      phone="13912345678", branch="b")
            b = await Customer.create(customer_no="C0000000002", kind=CustomerKind.INDIVIDUAL, name="李娜",
                                      email="li.na@example.com", address="上海市浦东新区世纪大道100号")
            c1 = await Complaint.create(customer=b, category="FEES", description="李娜 (li.na@example.com) says",
                                        contact={{"who": "李娜", "where": "上海市浦东新区世纪大道100号"}},
                                        amount="12.50")
            await ComplaintEvent.create(complaint=c1, message="called 李娜 back")
            await Portrait.create(customer=b, churn=0.5)
            campaign = await Campaign.create(title="spring")
            await campaign.audience.add(b)
            _, dry = await customer_merge.merge(op, a.id, b.id, dry_run=True)
            _, moved = await customer_merge.merge(op, a.id, b.id, dry_run=False)
            out.update(dry=dry, moved=moved, complaints_on_a=await Complaint.filter(customer_id=a.id).count(),
                       portrait_on_a=await Portrait.filter(customer_id=a.id).exists(),
                       campaign_on_a=await a.campaigns.all().count(), campaign_on_b=await b.campaigns.all().count())
            exported = await customer_export.export(op, a.id)
            out["export"] = {{k: exported[k] for k in ("complaints", "complaintEvents", "portrait", "campaigns")}}
            json.dumps(exported)
            await customer_erasure.erase(op, a.id, "PIPL art. 47 request")
            complaint = await Complaint.get(id=c1.id)
            out["after"] = {{"description": complaint.description, "contact": complaint.contact,
                             "customer": complaint.customer_id, "amount": str(complaint.amount),
                             "event": (await ComplaintEvent.get(complaint_id=c1.id)).message}}
            return out

        asyncio.run(main())
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    # Found from the foreign keys: the new direct ones, and the event table one hop further.
    assert set(out["kinds"]) >= {
        "changes",
        "complaints",
        "complaintEvents",
        "consentChanges",
        "consents",
        "holdings",
        "portrait",
        "tags",
    }
    assert out["dry"] == out["moved"] == {"complaints": 1, "portrait": 1, "campaigns": 1}
    assert out["complaints_on_a"] == 1 and out["portrait_on_a"]
    assert (out["campaign_on_a"], out["campaign_on_b"]) == (1, 0)
    assert out["export"]["complaints"][0]["category"] == "FEES"
    assert out["export"]["complaints"][0]["amount"] == "12.50"
    assert out["export"]["complaintEvents"][0]["message"] == "called 李娜 back"
    assert out["export"]["portrait"] == [{"churn": 0.5, "customerId": out["export"]["portrait"][0]["customerId"]}]
    assert out["export"]["campaigns"][0]["title"] == "spring"
    # Kept and still linked, but no copy of the name, email or address is left.
    after = out["after"]
    assert after["customer"] and after["amount"] == "12.50"
    assert after["description"] == "*** (***) says"
    assert after["contact"] == {"who": "***", "where": "***"}
    assert after["event"] == "called *** back"


# ---------------------------------------------------------------- merge


@pytest.fixture
async def pair(app):
    """A survivor with a phone and some answers, and its duplicate with the identity document and more."""
    admin = caller_of(await make_staff(Role.ADMIN))
    survivor = await new_customer(
        admin,
        phone="13812345678",
        tags=["vip"],
        occupation="工程师",
        consents=[
            {"purpose": ConsentPurpose.MARKETING, "granted": True, "source": "app"},
            {"purpose": ConsentPurpose.PROFILING, "granted": True, "source": "app"},
        ],
    )
    duplicate = await new_customer(
        admin,
        id_type="RESIDENT_ID",
        id_number=resident_id(),
        email="zhang.wei@example.com",
        address="北京市朝阳区建国路88号",
        risk_level="C3",
        occupation="教师",
        tags=["vip", "pension"],
        consents=[
            {"purpose": ConsentPurpose.MARKETING, "granted": False, "source": "branch form"},
            {"purpose": ConsentPurpose.PROFILING, "granted": False, "source": "branch form"},
            {"purpose": ConsentPurpose.THIRD_PARTY_SHARING, "granted": True, "source": "branch form"},
        ],
    )
    now = datetime.now(UTC)
    # MARKETING: the duplicate's answer is the more recent; PROFILING: the survivor's.
    await set_consent_time(survivor, ConsentPurpose.MARKETING, now - timedelta(days=10))
    await set_consent_time(duplicate, ConsentPurpose.MARKETING, now - timedelta(days=1))
    await set_consent_time(survivor, ConsentPurpose.PROFILING, now - timedelta(days=1))
    await set_consent_time(duplicate, ConsentPurpose.PROFILING, now - timedelta(days=10))
    await holding(admin, duplicate, "6222020200112233", ProductType.TIME_DEPOSIT, "80000.00")
    await holding(admin, duplicate, "6222020200114455", ProductType.CREDIT_CARD, "-1200.50")
    await holding(admin, survivor, "6222020200116677", ProductType.FUND, "20000.00")
    duplicate = await customer_service.update(admin, duplicate.id, duplicate.version, {"risk_level": "C4"})
    return admin, await Customer.get(id=survivor.id), duplicate


async def test_dry_run_counts_without_changing_anything(pair) -> None:
    _admin, survivor, duplicate = pair
    manager = caller_of(await make_staff(Role.MANAGER))
    before_survivor, before_duplicate = await rows_of(survivor.id), await rows_of(duplicate.id)

    returned, counts = await customer_merge.merge(manager, survivor.id, duplicate.id, dry_run=True)

    assert counts == {"holdings": 2, "consents": 2, "consentChanges": 3, "changes": 1, "tags": 1}
    assert returned.id == survivor.id and returned.version == survivor.version
    assert await rows_of(survivor.id) == before_survivor and await rows_of(duplicate.id) == before_duplicate
    assert (await Customer.get(id=duplicate.id)).status == CustomerStatus.ACTIVE
    assert (await Customer.get(id=survivor.id)).email is None
    entry = await AuditEntry.get(action="customer.merge")
    assert entry.detail == {"duplicate": duplicate.customer_no, "moved": counts, "dryRun": True}


async def test_merge_moves_everything_fills_the_survivor_and_closes_the_duplicate(pair) -> None:
    admin, survivor, duplicate = pair
    manager_staff = await make_staff(Role.MANAGER, branch=OTHER_BRANCH)  # managers are bank-wide
    manager = caller_of(manager_staff)
    duplicate_rows = await rows_of(duplicate.id)
    _, dry = await customer_merge.merge(manager, survivor.id, duplicate.id, dry_run=True)

    merged, moved = await customer_merge.merge(manager, survivor.id, duplicate.id, dry_run=False)

    assert moved == dry
    # Every row that pointed at the duplicate is on the survivor now (consents and tags resolved).
    assert await ProductHolding.filter(customer_id=survivor.id).count() == 3
    assert await ConsentChange.filter(customer_id=survivor.id).count() == 2 + duplicate_rows["consentChanges"]
    left = await rows_of(duplicate.id)
    assert {k: n for k, n in left.items() if n} == {"changes": 4}  # the duplicate's own closing entries
    closing = await ChangeEntry.filter(customer_id=duplicate.id).order_by("id").values_list("field", "new_value")
    assert closing == [
        ("status", "CLOSED"),
        ("statusNote", f"merged into {survivor.customer_no}"),
        ("idType", None),
        ("idNumber", None),
    ]
    # Consents: the more recent answer per purpose, plus what only the duplicate had.
    consents = {c.purpose: (c.granted, c.source) for c in await Consent.filter(customer_id=survivor.id)}
    assert consents == {
        ConsentPurpose.MARKETING: (False, "branch form"),
        ConsentPurpose.PROFILING: (True, "app"),
        ConsentPurpose.THIRD_PARTY_SHARING: (True, "branch form"),
    }
    assert await customer_service.tags_of(survivor.id) == ["vip", "pension"]
    # The survivor's empty fields are filled (its own occupation stays), the identity document moved.
    assert merged.id_type == "RESIDENT_ID" and merged.id_number == resident_id()
    assert merged.birth_date == date(1985, 4, 12) and merged.gender == "MALE"
    assert merged.email == "zhang.wei@example.com" and merged.address == "北京市朝阳区建国路88号"
    assert merged.risk_level == "C4" and merged.occupation == "工程师" and merged.phone == "13812345678"
    assert merged.version == survivor.version + 1
    assert merged.completeness == 1.0 > survivor.completeness
    assert merged.aum == Decimal("100000.00") and merged.debt == Decimal("1200.50")
    filled = await ChangeEntry.filter(customer_id=survivor.id, actor_id=manager_staff.id).values_list(
        "field", "old_value", "new_value"
    )
    assert set(filled) == {
        ("gender", None, "MALE"),
        ("birthDate", None, "1985-04-12"),
        ("email", None, "zhang.wei@example.com"),
        ("address", None, "北京市朝阳区建国路88号"),
        ("riskLevel", None, "C4"),
        ("idType", None, "RESIDENT_ID"),
        ("idNumber", None, resident_id()),
    }
    closed = await Customer.get(id=duplicate.id)
    assert closed.status == CustomerStatus.CLOSED and closed.status_note == f"merged into {survivor.customer_no}"
    assert closed.id_number is None and closed.version == duplicate.version + 1
    assert closed.aum == 0 and closed.debt == 0
    entry = await AuditEntry.filter(action="customer.merge").order_by("-id").first()  # after the dry run's
    assert entry.subject_type == "Customer" and entry.subject_id == str(survivor.id)
    assert entry.detail == {"duplicate": duplicate.customer_no, "moved": moved}
    assert entry.actor_id == manager_staff.id

    # Merged once: a merged (CLOSED) duplicate cannot be merged again, nor become a survivor.
    third = await new_customer(admin, name="张伟")
    await expect_error(
        ErrorCode.INVALID, customer_merge.merge(manager, third.id, duplicate.id, dry_run=True), "duplicateId"
    )
    await expect_error(
        ErrorCode.INVALID, customer_merge.merge(manager, duplicate.id, third.id, dry_run=True), "survivorId"
    )


async def test_identity_document_stays_when_the_survivor_has_one(app) -> None:
    admin = caller_of(await make_staff(Role.ADMIN))
    survivor = await new_customer(admin, id_type="PASSPORT", id_number="E12345678")
    duplicate = await new_customer(admin, id_type="RESIDENT_ID", id_number=resident_id(), phone="13812345678")
    merged, _ = await customer_merge.merge(admin, survivor.id, duplicate.id, dry_run=False)
    assert (merged.id_type, merged.id_number, merged.phone) == ("PASSPORT", "E12345678", "13812345678")
    closed = await Customer.get(id=duplicate.id)
    assert (closed.id_type, closed.id_number) == ("RESIDENT_ID", resident_id())


async def test_merge_refuses_what_cannot_be_merged(app) -> None:
    admin = caller_of(await make_staff(Role.ADMIN))
    person = await new_customer(admin, birth_date=date(1990, 1, 1))
    other = await new_customer(admin, id_type="RESIDENT_ID", id_number=resident_id())  # born 1985-04-12
    company = await new_customer(
        admin,
        kind=CustomerKind.CORPORATE,
        name="北京某某科技有限公司",
        id_type="UNIFIED_SOCIAL_CREDIT_CODE",
        id_number=credit_code(),
    )
    await expect_error(
        ErrorCode.INVALID, customer_merge.merge(admin, person.id, person.id, dry_run=True), "duplicateId"
    )
    await expect_error(
        ErrorCode.INVALID, customer_merge.merge(admin, person.id, company.id, dry_run=True), "duplicateId"
    )
    # The duplicate's resident ID says another birth date than the survivor's.
    await expect_error(
        ErrorCode.INVALID, customer_merge.merge(admin, person.id, other.id, dry_run=False), "duplicateId"
    )
    await expect_error(ErrorCode.NOT_FOUND, customer_merge.merge(admin, 999999, other.id, dry_run=True), "survivorId")
    await expect_error(ErrorCode.NOT_FOUND, customer_merge.merge(admin, person.id, 999999, dry_run=True), "duplicateId")
    erased = await new_customer(admin)
    await customer_erasure.erase(admin, erased.id, "PIPL request 7")
    await expect_error(
        ErrorCode.INVALID, customer_merge.merge(admin, person.id, erased.id, dry_run=True), "duplicateId"
    )
    await expect_error(ErrorCode.INVALID, customer_merge.merge(admin, erased.id, person.id, dry_run=True), "survivorId")
    assert (await Customer.get(id=other.id)).status == CustomerStatus.ACTIVE
    assert not await AuditEntry.filter(action="customer.merge").exists()


@pytest.mark.parametrize(
    "role", [Role.RELATIONSHIP_MANAGER, Role.SERVICE_AGENT, Role.COMPLAINT_HANDLER, Role.ANALYST, Role.AUDITOR]
)
async def test_only_managers_and_admins_merge(app, role) -> None:
    admin = caller_of(await make_staff(Role.ADMIN))
    a, b = await new_customer(admin), await new_customer(admin)
    member = caller_of(await make_staff(role, branch=BRANCH))
    await expect_error(ErrorCode.FORBIDDEN, customer_merge.merge(member, a.id, b.id, dry_run=True))
    await expect_error(ErrorCode.FORBIDDEN, customer_merge.merge(member, a.id, b.id, dry_run=False))
    assert (await Customer.get(id=b.id)).status == CustomerStatus.ACTIVE


# ---------------------------------------------------------------- erase


@pytest.fixture
async def full_record(app):
    """A customer with every kind of record, an earlier merged duplicate, and a bystander."""
    admin = caller_of(await make_staff(Role.ADMIN))
    customer = await new_customer(
        admin,
        name="欧阳娜娜",
        id_type="RESIDENT_ID",
        id_number=resident_id("19920315", "246"),
        phone="13912345678",
        email="Nana.Ouyang@Example.com",
        address="北京市朝阳区建国路88号院3号楼",
        occupation="律师",
        risk_level="C2",
        tags=["vip", "私人银行"],
        consents=[{"purpose": ConsentPurpose.MARKETING, "granted": True, "source": "app"}],
    )
    await holding(admin, customer, "6222020200112233", ProductType.WEALTH_MANAGEMENT, "600000.00")
    await holding(admin, customer, "6222020200114455", ProductType.MORTGAGE, "-300000.00")
    # History with personal data in it: old and new phone, email.
    customer = await customer_service.update(
        admin, customer.id, customer.version, {"phone": "13712345678", "email": "nana@example.org"}
    )
    duplicate = await new_customer(admin, name="欧阳娜娜", phone="15012345678", address="上海市浦东新区世纪大道1号")
    customer, _ = await customer_merge.merge(admin, customer.id, duplicate.id, dry_run=False)
    bystander = await new_customer(admin, name="王芳", phone="13600001111", email="wang.fang@example.com")
    pii = [
        "欧阳娜娜",
        resident_id("19920315", "246"),
        "13912345678",
        "13712345678",
        "15012345678",
        "Nana.Ouyang@Example.com",
        "nana@example.org",
        "北京市朝阳区建国路88号院3号楼",
        "上海市浦东新区世纪大道1号",
        "6222020200112233",
        "6222020200114455",
    ]
    return admin, customer, duplicate, bystander, pii


async def test_erasure_leaves_no_personal_data_anywhere(full_record) -> None:
    admin, customer, duplicate, bystander, pii = full_record
    found_before = {needle for _, _, needle in await find_traces(*pii)}
    assert found_before == {n.lower() for n in pii}  # the scanner does find them where they are

    erased = await customer_erasure.erase(admin, customer.id, "PIPL art. 47 request, ticket 2024-118")

    assert await find_traces(*pii) == []
    assert erased.name == ERASED_NAME and erased.status == CustomerStatus.ERASED and erased.status_note == "erased"
    assert erased.version == customer.version + 1
    for field in (
        "gender",
        "birth_date",
        "id_type",
        "id_number",
        "phone",
        "email",
        "address",
        "occupation",
        "preferred_channel",
    ):
        assert getattr(erased, field) is None, field
    assert erased.branch == BRANCH and erased.risk_level == "C2"
    assert await CustomerTag.filter(customer_id=customer.id).count() == 0
    # The merged duplicate was the same person: erased with it.
    gone = await Customer.get(id=duplicate.id)
    assert gone.status == CustomerStatus.ERASED and gone.name == ERASED_NAME and gone.phone is None
    # The bystander keeps everything.
    assert await find_traces("王芳", "13600001111", "wang.fang@example.com") != []
    assert (await Customer.get(id=bystander.id)).name == "王芳"


async def test_erasure_keeps_holdings_and_history_shape_and_revokes_every_consent(full_record) -> None:
    admin, customer, _, _, _ = full_record
    fields_before = await ChangeEntry.filter(customer_id=customer.id).order_by("id").values_list("field", flat=True)
    await customer_erasure.erase(admin, customer.id, "PIPL request")

    holdings = await ProductHolding.filter(customer_id=customer.id).order_by("id")
    assert [(h.product, h.balance) for h in holdings] == [
        (ProductType.WEALTH_MANAGEMENT, Decimal("600000.00")),
        (ProductType.MORTGAGE, Decimal("-300000.00")),
    ]
    assert [h.account_no for h in holdings] == [f"ERASED{h.id}" for h in holdings]
    after = await Customer.get(id=customer.id)
    assert (after.aum, after.debt) == (Decimal("600000.00"), Decimal("300000.00"))

    consents = await Consent.filter(customer_id=customer.id)
    assert {c.purpose for c in consents} == set(ConsentPurpose)
    assert all(not c.granted and c.source == "erasure" for c in consents)
    assert not await consent_service.consent_granted(customer.id, ConsentPurpose.SURVEY)
    revoked = await ConsentChange.filter(customer_id=customer.id, source="erasure").values_list("purpose", "granted")
    assert sorted(revoked) == sorted((p, False) for p in ConsentPurpose)

    entries = await ChangeEntry.filter(customer_id=customer.id).order_by("id")
    assert [e.field for e in entries][: len(fields_before)] == fields_before  # the field names stay
    values = [(e.field, e.old_value, e.new_value) for e in entries]
    assert ("status", "ACTIVE", "ERASED") in values
    assert all(old is None and new is None for field, old, new in values if field != "status")
    assert {"name", "phone", "email", "idNumber"} <= {field for field, _, _ in values[len(fields_before) :]}

    entry = await AuditEntry.get(action="customer.erase", subject_id=str(customer.id))
    assert entry.subject_type == "Customer" and entry.detail == {"reason": "PIPL request"}
    assert await AuditEntry.filter(action="customer.erase").count() == 2  # and one for the merged duplicate


async def test_erasure_is_irreversible_and_checked(full_record) -> None:
    admin, customer, _, _, pii = full_record
    await expect_error(ErrorCode.REQUIRED, customer_erasure.erase(admin, customer.id, "  "), "reason")
    # The reason stays in the append-only audit trail: it must not repeat the personal data.
    await expect_error(ErrorCode.INVALID, customer_erasure.erase(admin, customer.id, "Request by 欧阳娜娜"), "reason")
    await expect_error(ErrorCode.INVALID, customer_erasure.erase(admin, customer.id, "call 13712345678"), "reason")
    for role in (Role.MANAGER, Role.RELATIONSHIP_MANAGER, Role.AUDITOR):
        member = caller_of(await make_staff(role))
        await expect_error(ErrorCode.FORBIDDEN, customer_erasure.erase(member, customer.id, "PIPL request"))
    assert (await Customer.get(id=customer.id)).status == CustomerStatus.ACTIVE

    erased = await customer_erasure.erase(admin, customer.id, "PIPL request")
    await expect_error(ErrorCode.INVALID, customer_erasure.erase(admin, customer.id, "PIPL request"), "id")
    await expect_error(
        ErrorCode.INVALID, customer_service.update(admin, customer.id, erased.version, {"name": "欧阳娜娜"}), "id"
    )
    await expect_error(
        ErrorCode.INVALID,
        consent_service.set_consents(admin, customer.id, [{"purpose": ConsentPurpose.MARKETING, "granted": True}]),
        "customerId",
    )
    assert await find_traces(*pii) == []


# ---------------------------------------------------------------- export


async def test_export_holds_everything_about_the_customer(full_record) -> None:
    admin, customer, _duplicate, _, _ = full_record
    admin_staff = admin.staff
    await consent_service.set_consents(
        admin, customer.id, [{"purpose": ConsentPurpose.PROFILING, "granted": False, "source": "branch form"}]
    )

    document = await customer_export.export(admin, customer.id)

    assert json.loads(json.dumps(document)) == document  # plain JSON all the way down
    own = document["customer"]
    assert own["name"] == "欧阳娜娜" and own["idNumber"] == resident_id("19920315", "246")  # unmasked
    assert own["phone"] == "13712345678" and own["email"] == "nana@example.org"
    assert own["customerNo"] == customer.customer_no and own["kind"] == "INDIVIDUAL" and own["riskLevel"] == "C2"
    assert own["birthDate"] == "1992-03-15" and own["gender"] == "FEMALE"
    assert own["aum"] == "600000.00" and own["debt"] == "300000.00"
    assert datetime.fromisoformat(own["createdAt"]).tzinfo is not None
    # Every relation found from the foreign keys has its list, under its readable name.
    assert {r.kind for r in customer_relations.customer_relations()} <= document.keys()
    assert document["tags"] == ["vip", "私人银行"]
    consents = {(c["purpose"], c["channel"]): (c["granted"], c["source"]) for c in document["consents"]}
    assert consents == {
        ("MARKETING", None): (True, "app"),
        ("PROFILING", None): (False, "branch form"),
        ("SURVEY", None): (True, "default"),
        ("THIRD_PARTY_SHARING", None): (False, "default"),
    }
    assert [(c["purpose"], c["granted"], c["source"]) for c in document["consentChanges"]] == [
        ("MARKETING", True, "app"),
        ("PROFILING", False, "branch form"),
    ]
    assert {(h["accountNo"], h["product"], h["balance"]) for h in document["holdings"]} == {
        ("6222020200112233", "WEALTH_MANAGEMENT", "600000.00"),
        ("6222020200114455", "MORTGAGE", "-300000.00"),
    }
    assert document["holdings"][0]["openedAt"] == "2020-01-01"
    changes = {(c["field"], c["oldValue"], c["newValue"]) for c in document["changes"]}
    assert ("phone", "13912345678", "13712345678") in changes  # from the update
    assert ("address", None, None) not in changes and ("phone", None, "15012345678") not in changes
    assert document["exportedBy"] == admin_staff.username
    assert abs(datetime.fromisoformat(document["exportedAt"]) - datetime.now(UTC)) < timedelta(minutes=1)
    entry = await AuditEntry.get(action="customer.export")
    assert (entry.subject_type, entry.subject_id, entry.actor_id) == ("Customer", str(customer.id), admin_staff.id)
    assert entry.detail["counts"]["holdings"] == 2
    assert "欧阳娜娜" not in json.dumps(entry.detail, ensure_ascii=False)


async def test_export_is_scoped_and_limited_to_writers(app) -> None:
    admin = caller_of(await make_staff(Role.ADMIN))
    customer = await new_customer(admin, phone="13812345678")
    stranger = caller_of(await make_staff(Role.RELATIONSHIP_MANAGER, branch=OTHER_BRANCH))
    await expect_error(ErrorCode.NOT_FOUND, customer_export.export(stranger, customer.id), "id")
    local = caller_of(await make_staff(Role.RELATIONSHIP_MANAGER, branch=BRANCH))
    assert (await customer_export.export(local, customer.id))["customer"]["phone"] == "13812345678"
    for role in (Role.SERVICE_AGENT, Role.ANALYST, Role.AUDITOR, Role.COMPLAINT_HANDLER):
        member = caller_of(await make_staff(role))
        await expect_error(ErrorCode.FORBIDDEN, customer_export.export(member, customer.id))
    assert await AuditEntry.filter(action="customer.export").count() == 1


# ---------------------------------------------------------------- through HTTP

MERGE = """mutation($input: MergeCustomersInput!) { mergeCustomers(input: $input) {
  customer { id email version } moved errors { field code } } }"""
ERASE = """mutation($input: EraseCustomerInput!) { eraseCustomer(input: $input) {
  customer { id name status phone } errors { field code } } }"""
EXPORT = """query($id: ID!) { exportCustomerData(id: $id) }"""


async def test_merge_erase_and_export_through_graphql(gql, admin, staff_factory) -> None:
    admin_staff, token = admin
    caller = caller_of(admin_staff)
    survivor = await new_customer(caller, phone="13812345678")
    duplicate = await new_customer(caller, email="zhang.wei@example.com")
    await holding(caller, duplicate, "6222020200112233", ProductType.FUND, "10.00")
    ids = {"survivorId": to_global_id("Customer", survivor.id), "duplicateId": to_global_id("Customer", duplicate.id)}

    _, rm_token = await staff_factory(Role.RELATIONSHIP_MANAGER, branch=BRANCH)
    refused = (await gql(MERGE, {"input": ids}, token=rm_token))["mergeCustomers"]
    assert refused["errors"] == [{"field": None, "code": "FORBIDDEN"}]

    dry = (await gql(MERGE, {"input": {**ids, "dryRun": True}}, token=token))["mergeCustomers"]
    assert dry["errors"] == [] and dry["moved"] == {"holdings": 1} and dry["customer"]["email"] is None
    done = (await gql(MERGE, {"input": ids}, token=token))["mergeCustomers"]
    assert done["errors"] == [] and done["moved"] == dry["moved"]
    assert done["customer"]["email"] == "zhang.wei@example.com" and done["customer"]["version"] == 2
    again = (await gql(MERGE, {"input": ids}, token=token))["mergeCustomers"]
    assert again["errors"] == [{"field": ["duplicateId"], "code": "INVALID"}]

    exported = (await gql(EXPORT, {"id": ids["survivorId"]}, token=token))["exportCustomerData"]
    assert exported["holdings"][0]["accountNo"] == "6222020200112233"
    _, stranger_token = await staff_factory(Role.RELATIONSHIP_MANAGER, branch=OTHER_BRANCH)
    errors = await gql.errors(EXPORT, {"id": ids["survivorId"]}, token=stranger_token)
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"

    erased = (await gql(ERASE, {"input": {"id": ids["survivorId"], "reason": "PIPL request"}}, token=token))[
        "eraseCustomer"
    ]
    assert erased["errors"] == [] and erased["customer"]["name"] == ERASED_NAME
    assert erased["customer"]["status"] == "ERASED" and erased["customer"]["phone"] is None
    twice = (await gql(ERASE, {"input": {"id": ids["survivorId"], "reason": "PIPL request"}}, token=token))[
        "eraseCustomer"
    ]
    assert twice["errors"] == [{"field": ["id"], "code": "INVALID"}]
    assert await find_traces("13812345678", "zhang.wei@example.com", "6222020200112233") == []
    actions = await AuditEntry.filter(action__startswith="customer.").order_by("id").values_list("action", flat=True)
    assert [a for a in actions if a != "customer.pii_read"] == [
        "customer.merge.rejected",
        "customer.merge",
        "customer.merge",
        "customer.merge.rejected",
        "customer.export",
        "customer.erase",
        "customer.erase",
        "customer.erase.rejected",
    ]  # merged one erased too
