"""The bulk import writes new customers as plain rows (core.sql.insert_rows: COPY on PostgreSQL, multi-row INSERTs
on SQLite), validates them ahead of their batch's transaction and writes one batch while reading the next: what
it writes, and how a refused or interrupted batch ends, are those of the ORM path it replaced."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from tortoise.connection import get_connection
from tortoise.exceptions import IntegrityError

from core.db import atomic
from models.customers import Customer, CustomerKind, CustomerTag, Gender, IdType, RiskLevel
from models.jobs import Job, JobStatus
from models.staff import Role
from services import clock, customer_import, customer_rules as rules, jobs as job_service
from services.access import Caller
from services.demo_data import fake_company, fake_person
from services.errors import DomainError
from tests.conftest import make_staff
from tests.customers.helpers import resident_id

TODAY = date(2026, 1, 1)
COLUMNS = [
    "customer_no",
    "kind",
    "name",
    "gender",
    "birth_date",
    "id_type",
    "id_number",
    "phone",
    "email",
    "address",
    "occupation",
    "risk_level",
    "branch",
    "preferred_channel",
    "tags",
]
STAMPS = {"created_at", "updated_at", "portrait_stale_since"}  # times: set by the clock when written


async def _noop_publish(channel: str, message: dict) -> None:
    return None


async def _pieces(data: bytes):
    yield data


async def _start(caller: Caller, content: str) -> Job:
    async with atomic():
        return await customer_import.start_import(
            caller, _pieces(content.encode()), filename="c.csv", update_existing=False, enqueue=lambda job_id: None
        )


async def _import(caller: Caller, content: str) -> Job:
    job = await _start(caller, content)
    await job_service.run(job.id, _noop_publish)
    return await Job.get(id=job.id)


def _csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _varied_rows(count: int, seed: int = 11) -> list[dict[str, str]]:
    """Valid rows of every shape: people with resident IDs (gender and birth date given or derived), passports,
    companies with a unified social credit code, rows with only a name, phones with +86 and separators, e-mail
    domains in capitals, tags with repeats and blanks, enums in any case."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        shape = i % 5
        if shape == 3:
            company = fake_company(rng)
            row = {
                "kind": "corporate",
                "name": f"{company.name}{i}",
                "id_type": "Unified Social Credit Code",
                "id_number": company.unified_social_credit_code.lower(),
                "branch": rng.choice(["北京朝阳支行", ""]),
                "risk_level": rng.choice(["c1", "C5", ""]),
            }
        elif shape == 4:
            row = {"name": f"  只有名字 {i}  "}
        else:
            p = fake_person(rng, TODAY)
            row = {
                "customer_no": f"C{i:010d}" if i % 2 else "",
                "name": f"{p.name}{i}",
                "gender": p.gender.lower() if shape == 0 else "",
                "birth_date": p.birth_date.strftime("%Y/%m/%d") if shape == 0 else "",
                "id_type": "RESIDENT_ID" if shape != 2 else "passport",
                "id_number": p.resident_id if shape != 2 else f"e-{i:07d}",
                "phone": f"+86 {p.mobile[:3]}-{p.mobile[3:]}" if shape == 1 else p.mobile,
                "email": (p.email or "").replace("example", "EXAMPLE"),
                "address": p.address,
                "occupation": p.occupation if shape != 1 else "",
                "risk_level": f"C{rng.randint(1, 5)}",
                "branch": p.branch,
                "preferred_channel": rng.choice(["wechat", "Mobile App", ""]),
                "tags": rng.choice(["", "VIP", "VIP; 老客户 ;VIP", "a|b|c"]),
            }
        rows.append(row)
    return rows


def _data(row: dict[str, str]) -> dict:
    """The typed values of a row as the import's parser gives them (`_parse`, the path under test, is not used)."""
    keys = customer_import._FileKeys()
    parsed = customer_import._parse(1, [row.get(c, "") for c in COLUMNS], COLUMNS, keys)
    assert not parsed.errors, parsed.errors
    data = dict(parsed.data)
    data.setdefault("kind", CustomerKind.INDIVIDUAL)
    return data


async def _raw_rows() -> dict[str, dict]:
    """Every customer row as the database returns it (SQLite: the stored text), by customer number."""
    rows = await get_connection("default").execute_query_dict("SELECT * FROM customer")
    return {row["customer_no"]: row for row in rows}


def _as_time(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


@pytest.fixture
async def writer(app) -> Caller:
    return Caller(await make_staff(Role.ADMIN), "test")


# ---------------------------------------------------------------- what is written


async def test_a_customer_written_by_the_import_equals_one_saved_by_the_orm_column_by_column(writer):
    rows = _varied_rows(40)
    job = await _import(writer, _csv(rows))
    assert job.status == JobStatus.SUCCEEDED, job.errors
    assert job.result == {"created": 40, "updated": 0, "unchanged": 0, "failed": 0, "rows": 40}
    imported = await _raw_rows()
    number_of = {row["id"]: number for number, row in imported.items()}
    tags: dict[str, list[str]] = {number: [] for number in imported}
    for customer_id, tag in await CustomerTag.all().order_by("tag").values_list("customer_id", "tag"):
        tags[number_of[customer_id]].append(tag)

    # The same rows the way the import wrote them before (services.customers.create writes them so too):
    # validate_new, a model instance, its completeness by `assess`, the first-portrait mark, bulk_create.
    await CustomerTag.all().delete()
    await Customer.all().delete()
    by_name = {rules.validate_new(_data(row))["name"]: _data(row) for row in rows}
    for values in imported.values():
        clean = rules.validate_new(by_name[values["name"]])
        tags_given = clean.pop("tags")
        clean["customer_no"] = values["customer_no"]
        customer = Customer(**clean)
        customer.completeness = rules.assess(customer)[0]
        customer.portrait_stale_since = clock.now()
        await Customer.bulk_create([customer])
        assert sorted(tags_given) == tags[values["customer_no"]]
    saved = await _raw_rows()

    assert saved.keys() == imported.keys()
    started = datetime.now(UTC) - timedelta(minutes=5)
    for number, old in saved.items():
        new = imported[number]
        assert new.keys() == old.keys()
        for column in old:
            if column == "id":
                continue
            if column in STAMPS:  # the same type and form (SQLite stores text), a moment apart
                assert type(new[column]) is type(old[column]), column
                assert _as_time(new[column]).tzinfo is not None and _as_time(old[column]).tzinfo is not None
                assert started < _as_time(new[column]) <= _as_time(old[column]), column
                if isinstance(old[column], str):
                    assert len(new[column]) == len(old[column]), (column, new[column], old[column])
                continue
            assert (column, type(new[column]), new[column]) == (column, type(old[column]), old[column]), number
    # Every column a default fills holds it.
    sample = await Customer.get(customer_no=next(iter(imported)))
    assert (sample.version, sample.kyc_status, sample.status, sample.aum, sample.debt) == (
        1,
        "PENDING",
        "ACTIVE",
        Decimal(0),
        Decimal(0),
    )


async def test_tags_are_written_with_the_customers_they_belong_to(writer):
    rows = _varied_rows(20)
    job = await _import(writer, _csv(rows))
    assert job.status == JobStatus.SUCCEEDED, job.errors
    for row in rows:
        customer = await Customer.get(name=" ".join(row["name"].split()))
        expected = list(dict.fromkeys(t.strip() for t in customer_import._TAG_SPLIT.split(row.get("tags", ""))))
        expected = sorted(t for t in expected if t)
        assert sorted(await CustomerTag.filter(customer_id=customer.id).values_list("tag", flat=True)) == expected


def _shuffled_values(rng: random.Random, count: int):
    """Inputs of validate_new of every kind, good and bad."""
    for _ in range(count):
        p = fake_person(rng, TODAY)
        kind = rng.choice([CustomerKind.INDIVIDUAL, CustomerKind.INDIVIDUAL, CustomerKind.CORPORATE])
        data = {
            "kind": kind,
            "name": rng.choice([p.name, p.name, p.name, "", None]),
            "gender": rng.choice([Gender(p.gender), Gender.UNKNOWN, None, Gender.MALE]),
            "birth_date": rng.choice([p.birth_date, p.birth_date, None, None, date(1890, 1, 1), date(2030, 1, 1)]),
            "phone": rng.choice([p.mobile, "+86 " + p.mobile, "86-" + p.mobile, "12345", None, ""]),
            "email": rng.choice([p.email, p.email, "Bad@", "x@EXAMPLE.COM", None]),
            "address": rng.choice([p.address, p.address, None, "x" * 300]),
            "occupation": rng.choice([p.occupation, None]),
            "branch": rng.choice([p.branch, None]),
            "risk_level": rng.choice([RiskLevel.C2, None]),
            "tags": rng.choice([None, ["a", "a", " "], ["a"], ["x" * 40]]),
        }
        choice = rng.randrange(5)
        if choice == 0:
            data.update(id_type=IdType.RESIDENT_ID, id_number=p.resident_id)
        elif choice == 1:
            data.update(id_type=IdType.RESIDENT_ID, id_number=p.resident_id[:-1] + "0")
        elif choice == 2:
            data.update(id_type=IdType.PASSPORT, id_number=rng.choice(["e 1234-567", "12"]))
        elif choice == 3:
            code = fake_company(rng).unified_social_credit_code
            data.update(id_type=IdType.UNIFIED_SOCIAL_CREDIT_CODE, id_number=code.lower())
        yield {k: v for k, v in data.items() if v is not None or rng.random() < 0.5}


def test_completeness_of_valid_values_is_that_of_assess():
    rng = random.Random(3)
    checked = 0
    for data in _shuffled_values(rng, 6000):
        try:
            clean = rules.validate_new(data, today=TODAY)
        except DomainError:
            continue
        clean.pop("tags")
        clean["customer_no"] = "C0000000001"
        assert rules.completeness_of_valid(clean) == rules.assess(Customer(**clean), today=TODAY)[0], clean
        checked += 1
    assert checked > 300


def test_cached_parsing_gives_what_parsing_gives():
    keys = customer_import._FileKeys()
    columns = ["name", "gender", "birth_date", "risk_level"]
    for _ in range(2):  # the second time from the caches
        row = customer_import._parse(1, ["甲", " male ", "1990/2/3", "c2"], columns, customer_import._FileKeys())
        assert (row.data["gender"], row.data["birth_date"], row.data["risk_level"]) == (
            Gender.MALE,
            date(1990, 2, 3),
            RiskLevel.C2,
        )
        bad = customer_import._parse(2, ["乙", "SOMETIMES", "1990-02-30", "C9"], columns, keys)
        assert [f for f, _ in bad.errors] == ["gender", "birthDate", "riskLevel"]
        assert "gender" not in bad.data and "birth_date" not in bad.data


# ---------------------------------------------------------------- refused and interrupted batches


class WorkerDied(BaseException):
    """Like a worker killed mid-job: escapes the job runner, the job stays RUNNING."""


def _people(count: int, seed: int = 5) -> str:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        p = fake_person(rng, TODAY)
        rows.append(
            {"name": p.name, "id_type": "RESIDENT_ID", "id_number": p.resident_id, "tags": "VIP;代发" if i % 2 else ""}
        )
    return _csv(rows)


async def _state() -> tuple[int, int]:
    return await Customer.all().count(), await CustomerTag.all().count()


async def test_a_batch_whose_copy_is_refused_rolls_back_with_its_checkpoint_and_is_written_row_by_row(
    writer, monkeypatch
):
    """The customers' COPY of the second batch is refused (another request took a document meanwhile): the
    batch's transaction rolls back whole, checkpoint and counts included, and the batch is written again row
    by row, where only the loser fails."""
    monkeypatch.setattr(customer_import, "BATCH_ROWS", 5)
    content = _people(12)
    real_insert = customer_import.insert_rows
    seen_by_retry: list = []
    calls = {"customers": 0}

    async def refused_once(connection, table, columns, rows):
        if table == "customer":
            calls["customers"] += 1
            if calls["customers"] == 2:  # the second batch's COPY: written, then refused
                await real_insert(connection, table, columns, rows)
                raise IntegrityError("duplicate key value violates unique constraint")
            if calls["customers"] == 3:  # the retry, row by row: sees only what batch 1 committed
                job = await Job.get(id=job_id)
                seen_by_retry.append((await _state(), job.checkpoint, job.processed, job.result))
        await real_insert(connection, table, columns, rows)

    monkeypatch.setattr(customer_import, "insert_rows", refused_once)
    job_id = (await _start(writer, content)).id
    await job_service.run(job_id, _noop_publish)
    job = await Job.get(id=job_id)
    assert seen_by_retry == [
        ((5, 4), 5, 5, {"created": 5, "updated": 0, "unchanged": 0, "failed": 0}),
    ]
    assert job.status == JobStatus.SUCCEEDED, job.errors
    assert job.result == {"created": 12, "updated": 0, "unchanged": 0, "failed": 0, "rows": 12}
    assert (job.checkpoint, job.processed, job.failed) == (12, 12, 0)
    assert await _state() == (12, 12)


async def test_a_worker_dying_between_the_customers_and_their_tags_loses_and_doubles_nothing(writer, monkeypatch):
    monkeypatch.setattr(customer_import, "BATCH_ROWS", 5)
    content = _people(13)
    real_insert = customer_import.insert_rows
    calls = {"tags": 0}

    async def dies_before_the_second_batchs_tags(connection, table, columns, rows):
        if table == "customer_tag":
            calls["tags"] += 1
            if calls["tags"] == 2:
                raise WorkerDied
        await real_insert(connection, table, columns, rows)

    monkeypatch.setattr(customer_import, "insert_rows", dies_before_the_second_batchs_tags)
    job = await _start(writer, content)
    with pytest.raises(WorkerDied):
        await job_service.run(job.id, _noop_publish)
    crashed = await Job.get(id=job.id)
    # Batch 2 (rows 6-10) was read and validated, batch 3 partly, while it was being written: none of it counts.
    assert (crashed.status, crashed.checkpoint, crashed.processed) == (JobStatus.RUNNING, 5, 5)
    assert await _state() == (5, 4)

    monkeypatch.setattr(customer_import, "insert_rows", real_insert)
    await job_service.run(job.id, _noop_publish)  # the message is delivered again
    resumed = await Job.get(id=job.id)
    assert resumed.status == JobStatus.SUCCEEDED and resumed.attempts == 2
    assert resumed.result == {"created": 13, "updated": 0, "unchanged": 0, "failed": 0, "rows": 13}
    assert (resumed.checkpoint, resumed.processed, resumed.failed) == (13, 13, 0)
    assert await _state() == (13, 12)
    assert len(set(await Customer.all().values_list("id_number", flat=True))) == 13


async def test_an_error_in_the_batch_being_written_stops_the_reading_of_the_next(writer, monkeypatch):
    """The batch is written in a task while the next is read: its failure ends the job as a failure there ends it."""
    monkeypatch.setattr(customer_import, "BATCH_ROWS", 4)
    real_plan = customer_import._Importer._plan
    calls = {"n": 0}

    async def fails_in_the_second_batch(self, rows):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("the database went away")
        return await real_plan(self, rows)

    monkeypatch.setattr(customer_import._Importer, "_plan", fails_in_the_second_batch)
    job = await _import(writer, _people(10))
    assert job.status == JobStatus.FAILED
    assert job.errors[-1]["message"] == "RuntimeError: the database went away"
    assert (job.checkpoint, job.processed) == (4, 4)
    assert await _state() == (4, 4)


async def test_rows_validated_ahead_are_checked_against_the_database_in_their_batch(writer):
    """Validation ahead of the batch is the file's alone: the database checks still come in the batch."""
    zhang = resident_id(sequence="123")
    await Customer.create(
        customer_no="C0000000077", kind="INDIVIDUAL", name="早有", id_type="RESIDENT_ID", id_number=zhang
    )
    content = f"customer_no,name,id_type,id_number\nC0000000077,甲,,\n,乙,RESIDENT_ID,{zhang}\n,丙,,\n"
    job = await _import(writer, content)
    assert [(e["row"], e["field"], e["message"]) for e in job.errors] == [
        (1, "customerNo", "DUPLICATE: Another customer has this customer number"),
        (2, "idNumber", "DUPLICATE: Another customer has this identity document"),
    ]
    assert job.result == {"created": 1, "updated": 0, "unchanged": 0, "failed": 2, "rows": 3}
