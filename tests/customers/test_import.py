"""Bulk customer import: the service and job handler, then the importCustomers mutation over HTTP.

Row numbers in JobErrors are 1-based data rows: the physical line of the file minus the header line.
"""

from __future__ import annotations

import csv
import io
import random
import time
from datetime import date

import pytest

from core.db import atomic
from models.customers import ChangeEntry, Customer, CustomerTag
from models.jobs import Job, JobStatus, UploadChunk
from models.staff import Role
from services import customer_import, customers as customer_service, jobs as job_service, uploads
from services.access import COMMAND_LINE, Caller
from services.demo_data import fake_person
from services.errors import DomainError
from tests.conftest import make_staff
from tests.customers.helpers import resident_id

HEADER = "name,id_type,id_number,phone,email,branch,risk_level,tags"
ZHANG = resident_id(sequence="123")  # 1985-04-12, male
LI = resident_id(sequence="124")  # female
WANG = resident_id(sequence="135")
ZHAO = resident_id(sequence="146")


async def _noop_publish(channel: str, message: dict) -> None:
    return None


async def _pieces(data: bytes, size: int):
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _start(
    caller: Caller,
    content: str | bytes,
    *,
    update_existing: bool = False,
    piece: int = 64 * 1024,
    sent: list | None = None,
) -> Job:
    data = content.encode() if isinstance(content, str) else content
    async with atomic():
        return await customer_import.start_import(
            caller,
            _pieces(data, piece),
            filename="customers.csv",
            update_existing=update_existing,
            enqueue=(sent if sent is not None else []).append,
        )


async def _run(job_id: int) -> Job:
    await job_service.run(job_id, _noop_publish)
    return await Job.get(id=job_id)


async def _import(caller: Caller, content: str | bytes, **kwargs) -> Job:
    return await _run((await _start(caller, content, **kwargs)).id)


def _errors(job: Job) -> list[tuple[int | None, str | None, str]]:
    return [(e["row"], e["field"], e["message"]) for e in job.errors]


@pytest.fixture
async def writer(app) -> Caller:
    return Caller(await make_staff(Role.ADMIN), "test")


# ---------------------------------------------------------------- the handler


async def test_good_rows_are_imported_and_bad_rows_become_job_errors(writer):
    content = (
        "\n".join(
            [
                HEADER,
                f"张伟,RESIDENT_ID,{ZHANG},+86 138 1234 5678,zhang@example.com,北京朝阳支行,C3,VIP;老客户",  # row 1
                f"李娜,resident_id,{LI},13900000000,,上海浦东支行,c2,",  # row 2: enums in any case
                f"王强,RESIDENT_ID,{WANG},12345,not-an-email,,C9,",  # row 3: phone, email, riskLevel
                ",PASSPORT,E12345678,,,,,",  # row 4: no name
                f"赵敏,RESIDENT_ID,{ZHANG[:-1]}0,,,,,",  # row 5: wrong check digit
                "杭州科技有限公司,PASSPORT,E7654321,13700000000,,,,|a|b",  # row 6: good, tags split on |
            ]
        )
        + "\n"
    )
    job = await _import(writer, content)
    assert job.status == JobStatus.SUCCEEDED, job.errors
    assert job.result == {"created": 3, "updated": 0, "unchanged": 0, "failed": 3, "rows": 6}
    assert (job.total, job.processed, job.failed, job.checkpoint) == (6, 3, 3, 6)
    errors = _errors(job)
    # Every problem of a row is reported at once, unparsable values first.
    assert [(r, f) for r, f, _ in errors] == [
        (3, "riskLevel"),
        (3, "phone"),
        (3, "email"),
        (4, "name"),
        (5, "idNumber"),
    ]
    assert errors[0][2] == "INVALID: riskLevel must be one of C1, C2, C3, C4, C5"
    assert errors[1][2].startswith("INVALID: phone is not a mainland mobile number")
    assert errors[3][2] == "REQUIRED: name is required"
    assert errors[4][2].startswith("INVALID: idNumber is not a valid RESIDENT_ID")

    zhang = await Customer.get(id_number=ZHANG)
    assert zhang.phone == "13812345678" and zhang.gender == "MALE" and zhang.birth_date == date(1985, 4, 12)
    assert zhang.kind == "INDIVIDUAL" and zhang.risk_level == "C3" and zhang.version == 1
    assert zhang.customer_no.startswith("C") and len(zhang.customer_no) == 11
    assert zhang.completeness == customer_service.rules.assess(zhang)[0] and zhang.completeness > 0.5
    assert await customer_service.tags_of(zhang.id) == ["VIP", "老客户"]
    li = await Customer.get(id_number=LI)
    assert li.risk_level == "C2" and li.email is None and li.gender == "FEMALE"
    company = await Customer.get(name="杭州科技有限公司")
    assert await customer_service.tags_of(company.id) == ["a", "b"]
    assert await Customer.all().count() == 3
    # The stored upload is gone once the job has succeeded.
    assert await UploadChunk.all().count() == 0


async def test_bom_crlf_blank_lines_and_quoted_fields(writer):
    lines = [
        "\ufeffName,idType,idNumber,Address,Occupation,Kind",  # line 1: BOM, camelCase and capitals
        "",  # line 2: blank
        f'"张伟",RESIDENT_ID,{ZHANG},"北京市朝阳区建国路88号, 3单元",工程师,',  # line 3 -> row 2
        f'"李""娜""",RESIDENT_ID,{LI},"上海市浦东新区',  # line 4 -> row 3 (spans two lines)
        '世纪大道1号",教师,individual',  # line 5
        ",,,,,",  # line 6: a row of empty cells is blank
        "王强,RESIDENT_ID,not-an-id,,,",  # line 7 -> row 6
        "   ",  # line 8: blank
        "",
    ]
    job = await _import(writer, "\r\n".join(lines).encode("utf-8"))
    assert job.status == JobStatus.SUCCEEDED, job.errors
    assert job.result == {"created": 2, "updated": 0, "unchanged": 0, "failed": 1, "rows": 3}
    assert job.total == 3
    assert [(r, f) for r, f, _ in _errors(job)] == [(6, "idNumber")]
    zhang = await Customer.get(id_number=ZHANG)
    assert zhang.name == "张伟" and zhang.address == "北京市朝阳区建国路88号, 3单元" and zhang.occupation == "工程师"
    li = await Customer.get(id_number=LI)
    # Names and addresses are cleaned like createCustomer does: whitespace (the line break) collapses.
    assert li.name == '李"娜"' and li.address == "上海市浦东新区 世纪大道1号" and li.kind == "INDIVIDUAL"


async def test_records_split_anywhere_across_stored_chunks(writer, monkeypatch):
    """Tiny stored chunks: multi-byte characters, CRLF pairs and quoted line breaks fall on chunk edges."""
    monkeypatch.setattr(uploads, "CHUNK_SIZE", 7)
    monkeypatch.setattr(uploads, "CHUNKS_PER_QUERY", 2)
    rows = [
        f'"姓名{i}号",RESIDENT_ID,{resident_id(sequence=f"{i:03d}")},"第一行\r\n第二行, 有逗号"' for i in range(1, 40)
    ]
    content = ("\ufeffname,id_type,id_number,address\r\n" + "\r\n".join(rows) + "\r\n").encode()
    job = await _start(writer, content, piece=5)
    assert await UploadChunk.filter(job_id=job.id).count() == -(-len(content) // 7)
    job = await _run(job.id)
    assert job.status == JobStatus.SUCCEEDED, job.errors
    assert job.result == {"created": 39, "updated": 0, "unchanged": 0, "failed": 0, "rows": 39}
    names = {c.name: c.address for c in await Customer.all()}
    assert names["姓名1号"] == "第一行 第二行, 有逗号" and len(names) == 39


async def test_bad_enums_dates_and_value_counts_name_the_field(writer):
    content = "\n".join(
        [
            "name,kind,gender,birth_date,preferred_channel,id_type,id_number",
            "甲,ALIEN,,,,,",  # row 1
            "乙,,SOMETIMES,,,,",  # row 2
            "丙,,,1990-02-30,,,",  # row 3
            "丁,,,yesterday,,,",  # row 4
            "戊,,,,CARRIER_PIGEON,,",  # row 5
            "己,,,,,KEY_CARD,123456",  # row 6
            "庚,,,,",  # row 7: too few values
            "辛,,,,,,,extra",  # row 8: too many
            "壬,individual,female,1990/2/3,wechat,,",  # row 9: good
            "癸,,male,19900203,Mobile App,passport,e 1234-567",  # row 10: good, normalised
        ]
    )
    job = await _import(writer, content)
    assert job.status == JobStatus.SUCCEEDED
    errors = _errors(job)
    assert [(r, f) for r, f, _ in errors] == [
        (1, "kind"),
        (2, "gender"),
        (3, "birthDate"),
        (4, "birthDate"),
        (5, "preferredChannel"),
        (6, "idType"),
        (7, None),
        (8, None),
    ]
    assert errors[0][2] == "INVALID: kind must be one of INDIVIDUAL, CORPORATE"
    assert errors[3][2] == "INVALID: birthDate must be a date written YYYY-MM-DD"
    assert errors[6][2] == "INVALID: the row has 5 values but the header has 7 columns"
    ren = await Customer.get(name="壬")
    assert (ren.gender, ren.birth_date, ren.preferred_channel) == ("FEMALE", date(1990, 2, 3), "WECHAT")
    gui = await Customer.get(name="癸")
    assert (gui.birth_date, gui.preferred_channel, gui.id_type, gui.id_number) == (
        date(1990, 2, 3),
        "MOBILE_APP",
        "PASSPORT",
        "E1234567",
    )


async def test_unknown_columns_fail_the_job_at_once(writer):
    job = await _import(writer, f"name,id_type,id_number,salary,shoe size\n张伟,RESIDENT_ID,{ZHANG},1,2\n")
    assert job.status == JobStatus.FAILED
    message = job.errors[-1]["message"]
    assert "Unknown column(s) 'salary', 'shoe size'" in message and "customerNo" in message
    assert await Customer.all().count() == 0


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("name,name\nA,B\n", "appear more than once"),
        ("phone,email\n13800000000,a@example.com\n", "no name column"),
        (",,,\n\n,,\n", "no header row"),
        ("name,\nA,\n", "column 2 has no name"),
        ('name,address\nA,"never closed\n', None),  # the csv module reads to the end: the field is just long
        ("name\n张伟\n".encode("gbk"), "not UTF-8 text"),
    ],
)
async def test_files_that_cannot_be_read_fail_with_a_clear_message(writer, content, expected):
    job = await _import(writer, content)
    if expected is None:
        assert job.status == JobStatus.SUCCEEDED and job.result["rows"] == 1
        return
    assert job.status == JobStatus.FAILED
    assert expected in job.errors[-1]["message"], job.errors
    assert await Customer.all().count() == 0


async def test_not_utf8_in_the_middle_imports_nothing(writer):
    content = f"{HEADER}\n".encode() + f"张伟,RESIDENT_ID,{ZHANG},,,,,\n".encode() + "李娜,,,,,,,\n".encode("gbk")
    job = await _import(writer, content)
    assert job.status == JobStatus.FAILED
    assert "not UTF-8 text" in job.errors[-1]["message"] and "line 3" in job.errors[-1]["message"]
    assert await Customer.all().count() == 0


async def test_duplicates_in_the_file_and_in_the_database(writer):
    await customer_service.create(
        writer,
        {
            "kind": "INDIVIDUAL",
            "name": "老客户",
            "id_type": "RESIDENT_ID",
            "id_number": ZHAO,
            "customer_no": "C0000000009",
        },
    )
    content = "\n".join(
        [
            "customer_no,name,id_type,id_number",
            f"C0000000001,张伟,RESIDENT_ID,{ZHANG}",  # row 1: good
            f"C0000000002,张伟二,resident_id,{ZHANG.lower()}",  # row 2: same document as row 1
            f"c0000000001,张伟三,RESIDENT_ID,{LI}",  # row 3: same customerNo as row 1
            f",赵敏,RESIDENT_ID,{ZHAO}",  # row 4: document already in the database
            f"C0000000009,钱多,RESIDENT_ID,{WANG}",  # row 5: customerNo already in the database
            "C0000000003,孙悟,PASSPORT,E1234567",  # row 6: good
        ]
    )
    job = await _import(writer, content)
    assert job.status == JobStatus.SUCCEEDED
    assert _errors(job) == [
        (2, "idNumber", "DUPLICATE: row 1 of this file has the same identity document"),
        (3, "customerNo", "DUPLICATE: row 1 of this file has the same customerNo"),
        (4, "idNumber", "DUPLICATE: Another customer has this identity document"),
        (5, "customerNo", "DUPLICATE: Another customer has this customer number"),
    ]
    assert job.result == {"created": 2, "updated": 0, "unchanged": 0, "failed": 4, "rows": 6}
    assert sorted(await Customer.all().values_list("customer_no", flat=True)) == [
        "C0000000001",
        "C0000000003",
        "C0000000009",
    ]


async def test_duplicates_within_one_batch_that_only_normalisation_reveals(writer):
    # "E-123 4567" and "E1234567" are the same passport once cleaned.
    content = "name,id_type,id_number\n甲,PASSPORT,E-123 4567\n乙,Passport,e1234567\n"
    job = await _import(writer, content)
    assert _errors(job) == [(2, "idNumber", "DUPLICATE: row 1 of this file has the same identity document")]
    assert await Customer.all().count() == 1


async def test_update_existing_changes_only_the_given_cells_with_history(writer):
    member = writer.staff
    existing = await customer_service.create(
        writer,
        {
            "kind": "INDIVIDUAL",
            "name": "张伟",
            "id_type": "RESIDENT_ID",
            "id_number": ZHANG,
            "customer_no": "C0000000001",
            "phone": "13800000001",
            "occupation": "教师",
            "tags": ["VIP"],
        },
    )
    same = await customer_service.create(writer, {"kind": "INDIVIDUAL", "name": "李娜", "customer_no": "C0000000002"})
    for number in ("C0000000004", "C0000000005"):
        await customer_service.create(writer, {"kind": "INDIVIDUAL", "name": "其他", "customer_no": number})
    content = "\n".join(
        [
            "customerNo,name,phone,occupation,address,tags,kind",
            "C0000000001,,13900000009,,北京市朝阳区建国路1号,VIP;新客户,INDIVIDUAL",  # row 1: updates
            "C0000000002,李娜,,,,,",  # row 2: nothing changes
            "C0000000003,王强,,工程师,,,",  # row 3: a new customer with the given number
            "C0000000001,重复,,,,,",  # row 4: the file names C0000000001 twice
            "C0000000004,,12345,,,,",  # row 5: invalid phone
            "C0000000005,,,,,,CORPORATE",  # row 6: kind cannot change
        ]
    )
    job = await _import(writer, content, update_existing=True)
    assert job.status == JobStatus.SUCCEEDED, job.errors
    assert job.result == {"created": 1, "updated": 1, "unchanged": 1, "failed": 3, "rows": 6}
    assert [(r, f) for r, f, _ in _errors(job)] == [(4, "customerNo"), (5, "phone"), (6, "kind")]

    updated = await Customer.get(id=existing.id)
    assert (updated.name, updated.phone, updated.occupation, updated.address) == (
        "张伟",
        "13900000009",
        "教师",
        "北京市朝阳区建国路1号",
    )
    assert updated.version == 2 and updated.completeness > existing.completeness
    assert await customer_service.tags_of(existing.id) == ["VIP", "新客户"]
    changes = {
        (c.field, c.old_value, c.new_value, c.actor_id) for c in await ChangeEntry.filter(customer_id=existing.id)
    }
    assert changes == {
        ("phone", "13800000001", "13900000009", member.id),
        ("address", None, "北京市朝阳区建国路1号", member.id),
        ("tags", "VIP", "VIP, 新客户", member.id),
    }
    assert (await Customer.get(id=same.id)).version == 1
    assert await ChangeEntry.filter(customer_id=same.id).count() == 0
    assert (await Customer.get(customer_no="C0000000003")).occupation == "工程师"

    # Without updateExisting, a known customerNo is a duplicate, as in createCustomer.
    job = await _import(writer, "customer_no,name\nC0000000001,张伟\n")
    assert _errors(job) == [(1, "customerNo", "DUPLICATE: Another customer has this customer number")]


async def test_update_existing_respects_branch_scoping(app):
    admin = Caller(await make_staff(Role.ADMIN))
    rm = Caller(await make_staff(Role.RELATIONSHIP_MANAGER, branch="北京朝阳支行"))
    await customer_service.create(
        admin, {"kind": "INDIVIDUAL", "name": "本行", "customer_no": "C0000000001", "branch": "北京朝阳支行"}
    )
    await customer_service.create(
        admin, {"kind": "INDIVIDUAL", "name": "他行", "customer_no": "C0000000002", "branch": "上海浦东支行"}
    )
    content = "\n".join(
        [
            "customer_no,name,branch,occupation",
            "C0000000001,,,教师",  # row 1: own branch: updated
            "C0000000002,,,教师",  # row 2: not visible: as for createCustomer, the number is taken
            ",新客户,,",  # row 3: created in the RM's own branch
            ",外行客户,上海浦东支行,",  # row 4: another branch: refused
            "C0000000001,,上海浦东支行,",  # row 5: a duplicate of row 1 in the file
        ]
    )
    job = await _import(rm, content, update_existing=True)
    assert job.status == JobStatus.SUCCEEDED, job.errors
    assert _errors(job) == [
        (2, "customerNo", "DUPLICATE: Another customer has this customer number"),
        (4, "branch", "FORBIDDEN: You can only keep customers of your own branch"),
        (5, "customerNo", "DUPLICATE: row 1 of this file has the same customerNo"),
    ]
    assert (await Customer.get(customer_no="C0000000001")).occupation == "教师"
    assert (await Customer.get(customer_no="C0000000002")).occupation is None
    assert (await Customer.get(name="新客户")).branch == "北京朝阳支行"


async def test_the_importer_acts_as_its_creator_is_now(app):
    member = await make_staff(Role.RELATIONSHIP_MANAGER)
    job = await _start(Caller(member), "name\n张伟\n")
    member.role = Role.ANALYST
    await member.save()
    job = await _run(job.id)
    assert job.status == JobStatus.FAILED and "may no longer do it" in job.errors[-1]["message"]
    assert await Customer.all().count() == 0


async def test_command_line_imports_as_the_operator(app):
    job = await _import(COMMAND_LINE, "name,branch\n张伟,上海浦东支行\n")
    assert job.status == JobStatus.SUCCEEDED and job.created_by_id is None
    assert (await Customer.get(name="张伟")).branch == "上海浦东支行"


# ---------------------------------------------------------------- re-delivery


def _people_csv(count: int, *, seed: int = 7, duplicate_every: int = 0, bad_every: int = 0) -> str:
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "name",
            "gender",
            "birth_date",
            "id_type",
            "id_number",
            "phone",
            "email",
            "address",
            "occupation",
            "branch",
            "risk_level",
            "tags",
        ]
    )
    people = []
    for i in range(1, count + 1):
        p = fake_person(rng, date(2026, 1, 1))
        if duplicate_every and i % duplicate_every == 0:
            p = people[i // 2]  # the same person as an earlier row
        people.append(p)
        phone = "12345" if bad_every and i % bad_every == 0 else p.mobile
        writer.writerow(
            [
                p.name,
                p.gender,
                p.birth_date.isoformat(),
                "RESIDENT_ID",
                p.resident_id,
                phone,
                p.email or "",
                p.address,
                p.occupation,
                p.branch,
                f"C{rng.choice('12345')}",
                "代发工资;线上活跃" if i % 3 == 0 else "",
            ]
        )
    return out.getvalue()


class WorkerDied(BaseException):
    """Like a worker killed mid-job (SIGKILL, time limit): escapes the job runner, the job stays RUNNING."""


async def test_a_redelivered_job_resumes_after_its_last_batch_without_duplicates(writer, monkeypatch):
    monkeypatch.setattr(customer_import, "BATCH_ROWS", 10)
    content = _people_csv(35, duplicate_every=7, bad_every=5)
    job = await _start(writer, content)

    original = customer_import._Importer._write_creates
    calls = {"n": 0}

    async def dies_in_the_second_batch(self, creates, careful):
        calls["n"] += 1
        done = await original(self, creates, careful)
        if calls["n"] == 2:
            raise WorkerDied
        return done

    monkeypatch.setattr(customer_import._Importer, "_write_creates", dies_in_the_second_batch)
    with pytest.raises(WorkerDied):
        await job_service.run(job.id, _noop_publish)
    crashed = await Job.get(id=job.id)
    assert crashed.status == JobStatus.RUNNING and crashed.checkpoint == 10
    assert await Customer.all().count() == crashed.processed == 7  # rows 5, 7 and 10 of the first batch failed
    assert crashed.result == {"created": 7, "updated": 0, "unchanged": 0, "failed": 3}

    job = await _run(job.id)  # the message is delivered again
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 2
    resumed = (job.result, _errors(job), job.processed, job.failed, job.total)

    # The same file imported cleanly into an empty table gives the same result.
    await Customer.all().delete()
    monkeypatch.setattr(customer_import._Importer, "_write_creates", original)
    clean = await _import(writer, content)
    assert resumed == (clean.result, _errors(clean), clean.processed, clean.failed, clean.total)
    assert clean.result == {"created": 24, "updated": 0, "unchanged": 0, "failed": 11, "rows": 35}
    # Row 28 repeats row 15 (in another batch, and refused for its phone): a duplicate all the same.
    assert (28, "idNumber", "DUPLICATE: row 15 of this file has the same identity document") in _errors(clean)
    assert (5, "phone") in [(r, f) for r, f, _ in _errors(clean)]
    assert await Customer.all().count() == 24
    assert len(set(await Customer.all().values_list("id_number", flat=True))) == 24


async def test_a_second_delivery_running_alongside_stops_without_touching_the_job(writer, monkeypatch):
    monkeypatch.setattr(customer_import, "BATCH_ROWS", 5)
    job = await _start(writer, _people_csv(12))
    original = customer_import._Importer.import_batch

    async def other_worker_commits_meanwhile(self, rows, rows_done):
        await original(self, rows, rows_done)
        if rows_done == 5:  # the other delivery committed rows 6-10 in the meantime
            await Job.filter(id=self.job.id).update(checkpoint=10, processed=10)

    monkeypatch.setattr(customer_import._Importer, "import_batch", other_worker_commits_meanwhile)
    with pytest.raises(customer_import.Superseded):
        await job_service.run(job.id, _noop_publish)
    row = await Job.get(id=job.id)
    assert (row.status, row.checkpoint, row.processed) == (JobStatus.RUNNING, 10, 10)
    assert await Customer.all().count() == 5  # this worker's second batch was rolled back


async def test_a_file_with_only_a_header_imports_nothing_and_succeeds(writer):
    job = await _import(writer, "\ufeffname,phone\r\n\r\n")
    assert job.status == JobStatus.SUCCEEDED and job.total == 0
    assert job.result == {"created": 0, "updated": 0, "unchanged": 0, "failed": 0, "rows": 0}


async def test_running_a_finished_import_again_changes_nothing(writer):
    job = await _import(writer, _people_csv(12))
    assert job.status == JobStatus.SUCCEEDED and job.result["created"] == 12
    await job_service.run(job.id, _noop_publish)
    again = await Job.get(id=job.id)
    assert (again.attempts, again.result, again.finished_at) == (job.attempts, job.result, job.finished_at)
    assert await Customer.all().count() == 12


async def test_a_job_whose_worker_died_after_the_last_commit_finishes_from_its_result(writer):
    job = await _start(writer, _people_csv(3))
    await _run(job.id)
    done = await Job.get(id=job.id)
    # As if the worker died between the final commit and writing SUCCEEDED.
    await Job.filter(id=job.id).update(status=JobStatus.RUNNING)
    again = await _run(job.id)
    assert again.status == JobStatus.SUCCEEDED and again.result == done.result
    assert await Customer.all().count() == 3


async def test_a_lost_race_for_an_identity_document_fails_only_that_row(writer, monkeypatch):
    """Another request creates a customer between the batch's duplicate check and its insert."""
    original = customer_import._Importer._plan

    async def plan_then_someone_else_inserts(self, rows):
        planned = await original(self, rows)
        if not await Customer.filter(id_number=LI).exists():
            async with atomic():
                await Customer.create(
                    customer_no="C0000000077", kind="INDIVIDUAL", name="抢先", id_type="RESIDENT_ID", id_number=LI
                )
        return planned

    monkeypatch.setattr(customer_import._Importer, "_plan", plan_then_someone_else_inserts)
    content = f"name,id_type,id_number\n张伟,RESIDENT_ID,{ZHANG}\n李娜,RESIDENT_ID,{LI}\n王强,,\n"
    job = await _import(writer, content)
    assert job.status == JobStatus.SUCCEEDED, job.errors
    assert _errors(job) == [(2, "idNumber", "DUPLICATE: Another customer has this identity document or number")]
    assert job.result == {"created": 2, "updated": 0, "unchanged": 0, "failed": 1, "rows": 3}
    assert sorted(await Customer.all().values_list("name", flat=True)) == ["张伟", "抢先", "王强"]


# ---------------------------------------------------------------- size, roles, empty files


@pytest.mark.parametrize("role", [Role.ANALYST, Role.SERVICE_AGENT, Role.AUDITOR, Role.COMPLAINT_HANDLER])
async def test_only_writers_may_import(app, role):
    member = await make_staff(role)
    with pytest.raises(DomainError) as raised:
        await _start(Caller(member), "name\n张伟\n")
    assert raised.value.code == "FORBIDDEN"
    assert await Job.all().count() == 0 and await UploadChunk.all().count() == 0


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b" \r\n\n"])
async def test_an_empty_file_is_refused(writer, content):
    sent: list[int] = []
    with pytest.raises(DomainError) as raised:
        await _start(writer, content, sent=sent)
    assert (raised.value.code, raised.value.field) == ("REQUIRED", ["file"])
    assert await Job.all().count() == 0 and await UploadChunk.all().count() == 0 and sent == []


async def test_a_file_over_the_limit_is_refused(writer, monkeypatch):
    assert customer_import.MAX_FILE_BYTES == 64 * 1024 * 1024
    monkeypatch.setattr(customer_import, "MAX_FILE_BYTES", 1000)
    with pytest.raises(DomainError) as raised:
        await _start(writer, b"name\n" + b"x\n" * 500, piece=100)
    assert (raised.value.code, raised.value.field) == ("LIMIT_EXCEEDED", ["file"])
    assert await Job.all().count() == 0 and await UploadChunk.all().count() == 0


async def test_the_job_message_is_sent_after_commit_with_the_upload_stored(writer):
    sent: list[int] = []
    job = await _start(writer, "name\n张伟\n", sent=sent)
    assert sent == [job.id]
    assert job.params == {"filename": "customers.csv", "update_existing": False}
    assert job.created_by_id == writer.staff.id
    assert [bytes(d) for d in await UploadChunk.filter(job_id=job.id).values_list("data", flat=True)] == [
        "name\n张伟\n".encode()
    ]


# ---------------------------------------------------------------- over HTTP (GraphQL multipart request spec)

IMPORT = """mutation($input: ImportCustomersInput!) { importCustomers(input: $input) {
  job { id kind status } errors { field message code } } }"""


async def _upload(
    client, token: str, content: bytes, *, update_existing: bool | None = None, filename: str = "customers.csv"
) -> dict:
    import json

    operations = {"query": IMPORT, "variables": {"input": {"file": None, "updateExisting": update_existing}}}
    response = await client.post(
        "/graphql",
        headers={"Authorization": f"Bearer {token}"},
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.input.file"]})},
        files={"0": (filename, content, "text/csv")},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body.get("errors"), body["errors"]
    return body["data"]["importCustomers"]


async def _upload_and_wait(client, gql, token: str, content: bytes, timeout: float = 30, **kwargs) -> dict:
    from tests.jobs.helpers import wait_for_job

    payload = await _upload(client, token, content, **kwargs)
    assert payload["errors"] == [] and payload["job"]["kind"] == "IMPORT_CUSTOMERS", payload
    return await wait_for_job(gql, token, payload["job"]["id"], timeout=timeout)


CUSTOMERS = """query($search: String) { customers(filter: {search: $search}, first: 100) {
  totalCount edges { node { customerNo name phone birthDate gender riskLevel tags address completeness } } } }"""


async def test_http_import_with_good_and_bad_rows_a_bom_blank_lines_and_crlf(client, gql, admin):
    member, token = admin
    content = "\r\n".join(
        [
            "\ufeffcustomerNo,name,idType,idNumber,phone,riskLevel,tags,address",
            f'C1000000001,张伟,RESIDENT_ID,{ZHANG},138-1234-5678,c3,VIP;老客户,"北京市朝阳区建国路88号,\r\n3单元"',
            "",
            f"C1000000002,李娜,RESIDENT_ID,{LI},12345,C2,,",  # row 4: bad phone
            "",
            ",,PASSPORT,E1234567,,,,",  # row 6: no name
            f"C1000000003,王强,RESIDENT_ID,{ZHANG},,,,",  # row 7: same document as row 1
            "C1000000004,赵敏,,,13900000000,C9,,",  # row 8: bad risk level
            "C1000000005,孙悟,PASSPORT,E7654321,,,,",  # row 9: good
            "",
        ]
    ).encode()
    job = await _upload_and_wait(client, gql, token, content)
    assert job["status"] == "SUCCEEDED" and job["progress"] == 1.0
    assert (job["total"], job["processed"], job["failed"]) == (6, 2, 4)
    assert job["result"] == {"created": 2, "updated": 0, "unchanged": 0, "failed": 4, "rows": 6}
    assert job["createdBy"]["username"] == member.username
    assert job["errors"] == [
        {
            "row": 4,
            "field": "phone",
            "message": "INVALID: phone is not a mainland mobile number: mobile number must be 11 digits starting with "
            "13-19",
        },
        {"row": 6, "field": "name", "message": "REQUIRED: name is required"},
        {"row": 7, "field": "idNumber", "message": "DUPLICATE: row 1 of this file has the same identity document"},
        {"row": 8, "field": "riskLevel", "message": "INVALID: riskLevel must be one of C1, C2, C3, C4, C5"},
    ]
    found = (await gql(CUSTOMERS, {"search": "C10000000"}, token=token))["customers"]
    assert found["totalCount"] == 2
    zhang = next(e["node"] for e in found["edges"] if e["node"]["customerNo"] == "C1000000001")
    assert zhang == {
        "customerNo": "C1000000001",
        "name": "张伟",
        "phone": "13812345678",
        "birthDate": "1985-04-12",
        "gender": "MALE",
        "riskLevel": "C3",
        "tags": ["VIP", "老客户"],
        "address": "北京市朝阳区建国路88号, 3单元",
        "completeness": zhang["completeness"],
    }
    assert 0 < zhang["completeness"] < 1


async def test_http_update_existing(client, gql, admin):
    _, token = admin
    await _upload_and_wait(client, gql, token, "customer_no,name,occupation\nC1000000001,张伟,教师\n".encode())
    again = "customer_no,name,occupation\nC1000000001,,工程师\nC1000000002,李娜,\n".encode()
    refused = await _upload_and_wait(client, gql, token, again)
    assert refused["result"] == {"created": 1, "updated": 0, "unchanged": 0, "failed": 1, "rows": 2}
    assert refused["errors"] == [
        {"row": 1, "field": "customerNo", "message": "DUPLICATE: Another customer has this customer number"}
    ]
    updated = await _upload_and_wait(
        client, gql, token, again.replace(b"C1000000002", b"C1000000003"), update_existing=True
    )
    assert updated["result"] == {"created": 1, "updated": 1, "unchanged": 0, "failed": 0, "rows": 2}
    customer = await Customer.get(customer_no="C1000000001")
    assert (customer.name, customer.occupation, customer.version) == ("张伟", "工程师", 2)
    history = await ChangeEntry.filter(customer_id=customer.id).values_list("field", "old_value", "new_value")
    assert history == [("occupation", "教师", "工程师")]


async def test_http_unknown_column_fails_the_job(client, gql, admin):
    _, token = admin
    job = await _upload_and_wait(client, gql, token, "name,nickname\n张伟,小张\n".encode())
    assert job["status"] == "FAILED"
    assert job["errors"][-1]["row"] is None and "Unknown column(s) 'nickname'" in job["errors"][-1]["message"]
    assert await Customer.all().count() == 0


async def test_http_a_10_mb_file(client, gql, admin):
    _, token = admin
    rng = random.Random(2026)
    lines = ["\ufeffname,gender,birth_date,id_type,id_number,phone,email,address,occupation,branch,tags\r\n".encode()]
    size = rows = 0
    while size < 10 * 1024 * 1024:
        p = fake_person(rng, date(2026, 1, 1))
        line = (
            f"{p.name},{p.gender},{p.birth_date},RESIDENT_ID,{p.resident_id},{p.mobile},{p.email or ''},"
            f'"{p.address}（近地铁站）",{p.occupation},{p.branch},重要客户|代发工资\r\n'
        ).encode()
        if rows % 1000 == 999:
            line += b"\r\n"  # a blank line now and then
        lines.append(line)
        size += len(line)
        rows += 1
    data = b"".join(lines)
    started = time.monotonic()
    job = await _upload_and_wait(client, gql, token, data, timeout=60)
    elapsed = time.monotonic() - started
    assert job["status"] == "SUCCEEDED", job["errors"]
    duplicates = job["result"]["failed"]  # the generator may repeat a resident ID now and then
    assert all(e["message"].startswith("DUPLICATE: row ") for e in job["errors"])
    assert job["result"] == {
        "created": rows - duplicates,
        "updated": 0,
        "unchanged": 0,
        "failed": duplicates,
        "rows": rows,
    }
    assert await Customer.all().count() == rows - duplicates
    assert await CustomerTag.all().count() == 2 * (rows - duplicates)
    assert await UploadChunk.all().count() == 0
    assert elapsed < 60, f"{rows} rows took {elapsed:.1f}s"


@pytest.mark.parametrize("role", [Role.ANALYST, Role.SERVICE_AGENT])
async def test_http_import_is_for_writers_only(client, staff_factory, role):
    _, token = await staff_factory(role)
    payload = await _upload(client, token, "name\n张伟\n".encode())
    assert payload["job"] is None and payload["errors"][0]["code"] == "FORBIDDEN"
    assert await Job.all().count() == 0 and await UploadChunk.all().count() == 0


async def test_http_an_empty_file_is_refused(client, admin):
    _, token = admin
    payload = await _upload(client, token, b"")
    assert payload["job"] is None
    assert payload["errors"] == [{"field": ["file"], "message": "The file is empty", "code": "REQUIRED"}]
    assert await Job.all().count() == 0 and await UploadChunk.all().count() == 0
