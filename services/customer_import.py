"""Bulk customer import (docs/DOMAIN.md "importCustomers"): a CSV upload becomes one IMPORT_CUSTOMERS job.

`start_import` creates the job and stores the upload (`services.uploads.store`: ordered UploadChunk
rows, never the whole file in memory); `import_csv` is the job handler. It reads the stored file back
as CSV records (`services.uploads.records`), validates every row exactly like createCustomer
(`customer_rules.validate_new`) or, with `update_existing`, like updateCustomer
(`customers.merge_changes`), and writes the good rows in batches: new customers and their tags as plain rows
(`core.sql.insert_rows`: binary COPY on PostgreSQL, multi-row INSERTs on SQLite) with the values the model
would give them (`_CustomerRows`), updates through the ORM. Each batch commits in ONE transaction together
with the job's checkpoint, so a re-delivered message resumes after the last committed batch and never
imports a row twice. While one batch is being written (a task of its own), the next one is read, parsed and
validated (`_Importer.check_ahead`): the worker's CPU and the database work at the same time; the batches
still commit one after the other, in the file's order.

The file
--------
* UTF-8, with or without a byte-order mark; fields may be quoted and contain commas, quotes and line
  breaks; line ends may be LF or CRLF (services.uploads reads it). A file that is not UTF-8 (e.g. saved
  as GBK by Excel) or not CSV fails the whole job before anything is imported (FileRejected, with the
  byte offset and line).
* The first non-blank line is the header. Columns are CreateCustomerInput fields in snake_case or
  camelCase (case, `_`, `-` and spaces are ignored): customer_no, kind, name, gender, birth_date,
  id_type, id_number, phone, email, address, occupation, risk_level, branch, preferred_channel, tags.
  An unknown, unnamed or repeated column fails the job at once, naming it; so does a missing `name`
  column when the import only creates customers.
* Blank lines (and rows of empty cells) are skipped.
* An empty cell is "not given". Enum values are case-insensitive (`resident_id`, `Resident ID`);
  `kind` defaults to INDIVIDUAL; dates are YYYY-MM-DD (also YYYY/M/D and YYYYMMDD); tags are separated
  by `;` or `|`.

Row numbers
-----------
Every JobError `row` is a 1-based *data* row number: the physical line of the file on which the
record starts (as `services.uploads.records` counts them: blank lines and the extra lines of quoted
multi-line fields included), counted from the header line (the header is row 0 and is not a data row).
So row N is always on line N + 1 of a file whose header is on line 1, whatever an editor shows.

Errors
------
A bad row never stops the good ones: each problem is a JobError {row, field (camelCase), message};
messages start with a code (`INVALID:`, `REQUIRED:`, `DUPLICATE:`, `FORBIDDEN:`, `STALE_VERSION:`).
`job.failed` counts failed rows (one row may have several JobErrors). A row repeating the customerNo or
the identity document (idType + idNumber) of an earlier row of the same file is a DUPLICATE whatever
became of the earlier row: the file names one customer twice. This rule depends on the file alone,
so a resumed job reports exactly what a clean run would.

Result: {"created", "updated", "unchanged", "failed", "rows"} where rows = the data rows of the file
= created + updated + unchanged + failed.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import date
from operator import itemgetter
from typing import Any

from tortoise.exceptions import IntegrityError

from core.db import atomic
from core.sql import Statement, insert_rows, rows_of
from models.customers import (
    ChangeEntry,
    Channel,
    Customer,
    CustomerKind,
    CustomerStatus,
    CustomerTag,
    Gender,
    IdType,
    RiskLevel,
)
from models.jobs import Job
from services import access, clock, customer_rules as rules, customers, jobs, portraits, uploads
from services.access import Caller, require_role
from services.errors import DomainError, DomainErrors
from services.uploads import FileRejected

IMPORT_JOB = "IMPORT_CUSTOMERS"  # the job kind
MAX_FILE_BYTES = 64 * 1024 * 1024
BATCH_ROWS = 5000
YIELD_ROWS = 100  # rows read and validated between two looks at the batch being written

ENUMS: dict[str, type] = {
    "kind": CustomerKind,
    "gender": Gender,
    "id_type": IdType,
    "risk_level": RiskLevel,
    "preferred_channel": Channel,
}
# What an import may change on an existing customer: kind and customerNo identify it; status, KYC and the
# relationship manager are not import columns.
IMPORTABLE = tuple(f for f in customers.UPDATABLE if f not in {"status", "kyc_status", "relationship_manager_id"})
# The file's columns: what identifies the row, what an import may set, and the tags.
COLUMNS = ("customer_no", "kind", *IMPORTABLE, "tags")
_HEADER_KEY = re.compile(r"[\s_\-]")
_ALIASES = {c.replace("_", ""): c for c in COLUMNS}
_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$|^(\d{4})(\d{2})(\d{2})$")
_TAG_SPLIT = re.compile(r"[;|]")
_ID_KEY = re.compile(r"[\s\-]")


class Superseded(BaseException):
    """Another delivery of the same job committed a batch while this one was running: this one stops at
    once and leaves the job row to the other (a BaseException, so that services.jobs.run does not mark
    the job FAILED over the other's progress; the broker logs it and its retry finds the job done)."""


# ---------------------------------------------------------------- upload


async def start_import(
    caller: Caller, chunks: AsyncIterator[bytes], *, filename: str | None, update_existing: bool, enqueue: jobs.Enqueue
) -> Job:
    """Creates the IMPORT_CUSTOMERS job and stores the upload (`services.uploads.store`).

    Streams `chunks` (of any size); never holds more than one stored chunk in memory. An empty file is
    REQUIRED on field `file`, one over 64 MiB (MAX_FILE_BYTES) LIMIT_EXCEEDED. The job's message is sent only once the
    surrounding transaction commits (the mutation wraps this call in one)."""
    require_role(caller, access.CUSTOMER_WRITERS)
    params = {"filename": filename, "update_existing": bool(update_existing)}
    async with atomic():
        job = await jobs.create(caller, IMPORT_JOB, params, enqueue)
        await uploads.store(job.id, chunks, MAX_FILE_BYTES)
    return job


# ---------------------------------------------------------------- the header


def _blank(record: list[str]) -> bool:
    """No cell holds anything but whitespace (so neither does their concatenation)."""
    return not "".join(record).strip()


def _header(record: list[str], update_existing: bool) -> list[str]:
    """Model field names of the header's columns; FileRejected naming any unknown or repeated column."""
    columns, unknown, repeated = [], [], []
    for position, name in enumerate(record, start=1):
        key = _HEADER_KEY.sub("", name).lower()
        column = _ALIASES.get(key)
        if column is None:
            unknown.append(repr(name.strip()) if name.strip() else f"(column {position} has no name)")
        elif column in columns:
            repeated.append(name.strip())
        columns.append(column)
    if unknown:
        raise FileRejected(
            f"Unknown column(s) {', '.join(unknown)}; the columns are "
            f"{', '.join(rules.camel(c) for c in COLUMNS)} (or their snake_case names)"
        )
    if repeated:
        raise FileRejected(f"Column(s) {', '.join(repeated)} appear more than once in the header")
    if "name" not in columns and not update_existing:
        raise FileRejected("The header has no name column (every new customer needs a name)")
    return columns


@dataclass
class _Scan:
    columns: list[str]
    header_line: int
    rows: int


async def _scan(job_id: int, update_existing: bool) -> _Scan:
    """A cheap first pass: the whole file decodes and parses, its header is good; counts the data rows."""
    columns: list[str] | None = None
    header_line = rows = 0
    async for line, record in uploads.records(job_id):
        if _blank(record):
            continue
        if columns is None:
            columns, header_line = _header(record, update_existing), line
        else:
            rows += 1
    if columns is None:
        raise FileRejected("The file has no header row")
    return _Scan(columns, header_line, rows)


# ---------------------------------------------------------------- rows


class _Row:
    """One data row of the file: its number, its cells, their typed values and its errors."""

    __slots__ = ("blocked", "checked", "data", "errors", "row", "values")

    def __init__(self, row: int, values: dict[str, str], blocked: bool = False) -> None:
        self.row = row
        self.values = values  # column -> stripped, non-empty cell
        self.data: dict[str, Any] = {}  # typed values of the cells that parsed
        self.errors: list[tuple[str | None, str]] = []  # (camelCase field, message)
        # A wrong number of values or a repeat of an earlier row: nothing more is checked.
        self.blocked = blocked
        # Its createCustomer validation when done ahead of the batch (`_Importer.check_ahead`).
        self.checked: tuple[dict[str, Any] | None, list[tuple[str | None, str]]] | None = None

    def fail(self, error: DomainError) -> None:
        """Adds the errors of a validation, except on fields that already have one (an unparsable value)."""
        self.errors.extend(self.failures(error))

    def failures(self, error: DomainError) -> list[tuple[str | None, str]]:
        """The errors `fail` would add."""
        reported = {f for f, _ in self.errors}
        found = []
        for e in error.errors:
            name = e.field[-1] if e.field else None
            if name not in reported:
                found.append((name, f"{e.code.value}: {e.message}"))
        return found


# What a cell gave once it gives again: enum spellings and dates repeat all over a file, and their parsing
# (a regex, an enum lookup) is pure. Bounded, so that a file of distinct junk cannot grow them without end.
_CACHE_LIMIT = 100_000
_ENUM_CACHE: dict[tuple[str, str], Any] = {}
_DATE_CACHE: dict[str, Any] = {}


def _enum(column: str, raw: str, row: _Row) -> Any:
    value = _ENUM_CACHE.get((column, raw))
    if value is None:
        enum = ENUMS[column]
        key = _HEADER_KEY.sub("_", raw.strip()).upper()
        try:
            value = enum(key)
        except ValueError:
            value = _BAD
        if len(_ENUM_CACHE) < _CACHE_LIMIT:
            _ENUM_CACHE[(column, raw)] = value
    if value is _BAD:
        name = rules.camel(column)
        row.errors.append((name, f"INVALID: {name} must be one of {', '.join(m.value for m in ENUMS[column])}"))
    return value


def _date(column: str, raw: str, row: _Row) -> date | None:
    value = _DATE_CACHE.get(raw)
    if value is None:
        value = _BAD
        match = _DATE.match(raw.strip())
        if match:
            parts = [int(p) for p in match.groups() if p is not None]
            try:
                value = date(*parts)
            except ValueError:
                pass
        if len(_DATE_CACHE) < _CACHE_LIMIT:
            _DATE_CACHE[raw] = value
    if value is _BAD:
        name = rules.camel(column)
        row.errors.append((name, f"INVALID: {name} must be a date written YYYY-MM-DD"))
    return value


def _tags(column: str, raw: str, row: _Row) -> list[str]:
    return [t for t in _TAG_SPLIT.split(raw) if t.strip()]


# How each typed column is read; the other columns are text, kept as the (stripped) cell.
_READERS = {**dict.fromkeys(ENUMS, _enum), "birth_date": _date, "tags": _tags}


def _id_number_key(id_number: str) -> str:
    # isalnum: no whitespace nor hyphen, nothing for the regex to remove (the common case, without it)
    return (id_number if id_number.isalnum() else _ID_KEY.sub("", id_number)).upper()


class _FileKeys:
    """customerNo and identity documents met so far in the file, with the row that first named them."""

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {}
        self.identities: dict[tuple[str, str], int] = {}
        self._id_types: dict[str, str] = {}  # an idType cell -> its key (few spellings, met on every row)

    def check(self, row: _Row) -> None:
        values = row.values
        number = values.get("customer_no")
        if number:
            number = number.upper()
            first = self.numbers.setdefault(number, row.row)
            if first != row.row:
                row.errors.append(("customerNo", f"DUPLICATE: row {first} of this file has the same customerNo"))
        id_type, id_number = values.get("id_type"), values.get("id_number")
        if id_type and id_number:
            type_key = self._id_types.get(id_type)
            if type_key is None:
                type_key = _HEADER_KEY.sub("_", id_type).upper()
                if len(self._id_types) < _CACHE_LIMIT:
                    self._id_types[id_type] = type_key
            first = self.identities.setdefault((type_key, _id_number_key(id_number)), row.row)
            if first != row.row:
                row.errors.append(("idNumber", f"DUPLICATE: row {first} of this file has the same identity document"))


_BAD = object()  # a value that did not parse: reported, left out of the validation


def _parse(row_no: int, record: list[str], columns: list[str], keys: _FileKeys) -> _Row:
    """Typed values of one record (pure): errors for a wrong value count, bad enums, dates and file duplicates."""
    if len(record) != len(columns):
        row = _Row(row_no, {}, blocked=True)
        row.errors.append(
            (None, f"INVALID: the row has {len(record)} values but the header has {len(columns)} columns")
        )
        return row
    values = {column: cell for column, raw in zip(columns, record, strict=True) if (cell := raw.strip())}
    row = _Row(row_no, values)
    keys.check(row)
    if row.errors:
        row.blocked = True
        return row
    data = row.data
    readers = _READERS
    for column, raw in values.items():
        read = readers.get(column)
        if read is None:
            data[column] = raw
        else:
            value = read(column, raw, row)
            if value is not _BAD:
                data[column] = value
    return row


# ---------------------------------------------------------------- planning and writing a batch


@dataclass
class _Create:
    row: _Row
    clean: dict[str, Any]
    tags: list[str]


@dataclass
class _Update:
    row: _Row
    customer: Customer
    changed: dict[str, Any]
    before: dict[str, Any]
    new_tags: list[str] | None
    old_tags: list[str]


@dataclass
class _Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged, "failed": self.failed}


class _Importer:
    def __init__(self, progress: jobs.Progress, caller: Caller, update_existing: bool) -> None:
        self.progress = progress
        self.job = progress.job
        self.caller = caller
        self.actor = caller.staff
        self.update_existing = update_existing
        self.counts = _Counts(**{k: v for k, v in (self.job.result or {}).items() if k in _Counts.__annotations__})
        self.keys = _FileKeys()

    # -- planning (reads only) --

    async def _plan(self, rows: list[_Row]) -> tuple[list[_Create], list[_Update], list[_Row]]:
        # Rows with unparsable values are validated too (every problem of a row is reported at once),
        # but only rows without any error are written.
        candidates = [r for r in rows if not r.blocked]
        numbers = sorted({r.values["customer_no"].upper() for r in candidates if "customer_no" in r.values})
        existing: set[str] = set()
        updatable: dict[str, Customer] = {}
        if numbers:
            existing = set(await _existing("customer_no", numbers))
            if self.update_existing and existing:
                updatable = {
                    c.customer_no: c
                    for c in await customers.visible(self.caller).filter(customer_no__in=sorted(existing))
                }
        tags_of: dict[int, list[str]] = {}
        if updatable:
            for customer_id, tag in (
                await CustomerTag.filter(customer_id__in=[c.id for c in updatable.values()])
                .order_by("id")
                .values_list("customer_id", "tag")
            ):
                tags_of.setdefault(customer_id, []).append(tag)

        creates: list[_Create] = []
        updates: list[_Update] = []
        unchanged: list[_Row] = []
        for row in candidates:
            number = row.values.get("customer_no", "").upper()
            if number in updatable:
                update = self._plan_update(row, updatable[number], tags_of.get(updatable[number].id, []))
                if update is None:
                    continue
                if update.changed or update.new_tags is not None:
                    updates.append(update)
                else:
                    unchanged.append(row)
            elif number in existing:
                row.errors.append(("customerNo", "DUPLICATE: Another customer has this customer number"))
            else:
                create = self._plan_create(row)
                if create is not None:
                    creates.append(create)

        # The identity documents against the database and within the batch (after normalisation).
        wanted: dict[tuple[str, str], list[tuple[_Row, int | None]]] = {}
        for c in creates:
            if c.clean["id_type"] and c.clean["id_number"]:
                wanted.setdefault((c.clean["id_type"].value, c.clean["id_number"]), []).append((c.row, None))
        for u in updates:
            if "id_type" in u.changed or "id_number" in u.changed:
                id_type = u.changed.get("id_type", u.customer.id_type)
                id_number = u.changed.get("id_number", u.customer.id_number)
                if id_type and id_number:
                    wanted.setdefault((id_type.value, id_number), []).append((u.row, u.customer.id))
        if wanted:
            # One query for the batch, on both columns, so that the (id_type, id_number) unique index answers it.
            taken = {
                (id_type, id_number): pk
                for pk, id_type, id_number in await _identities(
                    sorted({t for t, _ in wanted}), sorted({n for _, n in wanted})
                )
            }
            for key, claimants in wanted.items():
                for index, (row, own_id) in enumerate(claimants):
                    if key in taken and taken[key] != own_id:
                        row.errors.append(("idNumber", "DUPLICATE: Another customer has this identity document"))
                    elif index > 0:
                        row.errors.append(
                            (
                                "idNumber",
                                f"DUPLICATE: row {claimants[0][0].row} of this file has the same identity document",
                            )
                        )
            creates = [c for c in creates if not c.row.errors]
            updates = [u for u in updates if not u.row.errors]
        return creates, updates, unchanged

    def _plan_create(self, row: _Row) -> _Create | None:
        clean, errors = row.checked or self.check_create(row)
        row.errors.extend(errors)
        if clean is None:
            return None
        clean = dict(clean)  # written as planned now: a batch planned again starts from the checked values
        return _Create(row, clean, clean.pop("tags"))

    def check_create(self, row: _Row) -> tuple[dict[str, Any] | None, list[tuple[str | None, str]]]:
        """The rules of createCustomer for a row (pure): the cleaned values of the new customer (tags
        included), or None, and the errors to add to the row's own (those of its cells) if it is to be one."""
        if "kind" in row.values and "kind" not in row.data:
            return None, []  # the other rules depend on the kind: its error says it all
        data = dict(row.data)
        data.setdefault("kind", CustomerKind.INDIVIDUAL)
        try:
            clean = rules.validate_new(data)
        except DomainError as error:
            return None, row.failures(error)
        try:
            clean["branch"] = customers.check_branch(self.caller, clean["branch"])
        except DomainError as error:
            return None, [("branch", f"{error.code.value}: {error.message}")]
        if row.errors:
            return None, []
        return clean, []

    def check_ahead(self, row: _Row) -> None:
        """Validates a row that may become a new customer before its batch's transaction (`_plan` uses the
        outcome if it does): CPU work done while the database writes the previous batch. A row with a
        customerNo may be an update when updating existing customers: `_plan` decides, and checks it then."""
        if not row.blocked and not (self.update_existing and "customer_no" in row.values):
            row.checked = self.check_create(row)

    def _plan_update(self, row: _Row, customer: Customer, old_tags: list[str]) -> _Update | None:
        """The rules of services.customers.update (`customers.merge_changes`), for the cells given (an empty
        cell changes nothing)."""
        data = row.data
        if customer.status == CustomerStatus.ERASED:
            row.errors.append(("customerNo", "INVALID: An erased customer cannot be changed"))
            return None
        if "kind" in row.values and data.get("kind") != customer.kind:
            if "kind" in data:
                row.errors.append(("kind", "INVALID: kind cannot be changed by an import"))
            return None
        changes = {f: data[f] for f in IMPORTABLE if f in data}
        errors: list[DomainError] = []
        merged, new_tags = customers.merge_changes(customer, changes, data.get("tags"), errors)
        if errors:
            row.fail(DomainErrors(errors))
        if "branch" in changes:
            try:
                merged["branch"] = customers.check_branch(self.caller, merged["branch"])
            except DomainError as error:
                row.errors.append(("branch", f"{error.code.value}: {error.message}"))
        if row.errors:
            return None
        changed = customers.changed_values(customer, merged)
        if new_tags is not None and new_tags == old_tags:
            new_tags = None
        return _Update(row, customer, changed, {f: getattr(customer, f) for f in changed}, new_tags, old_tags)

    # -- writing (inside the batch transaction) --

    async def _write_creates(self, creates: list[_Create], careful: bool) -> list[_Create]:
        """Writes the new customers and their tags as plain rows (`core.sql.insert_rows`: COPY on PostgreSQL),
        with what save() would write: the model's defaults and timestamps (`_CustomerRows`)."""
        if not creates:
            return []
        avoid = set(self.keys.numbers) | {c.clean["customer_no"] for c in creates if c.clean["customer_no"]}
        fresh = iter(await customers.new_customer_numbers(sum(1 for c in creates if not c.clean["customer_no"]), avoid))
        for c in creates:
            if not c.clean["customer_no"]:
                c.clean["customer_no"] = next(fresh)
        table = _CustomerRows()
        # Each one's first portrait: the freshness sweep computes it.
        rows = table.rows([c.clean for c in creates], portrait_stale_since=clock.now())
        if not careful:
            await insert_rows(Customer._meta.db, table.table, table.columns, rows)
            done = creates
        else:  # one savepoint per row: a row that lost a race is a JobError, the others go in
            done = []
            for c, row in zip(creates, rows, strict=True):
                try:
                    async with atomic():
                        await insert_rows(Customer._meta.db, table.table, table.columns, [row])
                except IntegrityError:
                    c.row.errors.append(
                        ("idNumber", "DUPLICATE: Another customer has this identity document or number")
                    )
                else:
                    done.append(c)
        tagged = [c for c in done if c.tags]
        if tagged:
            ids = dict(await _existing("customer_no", [c.clean["customer_no"] for c in tagged], "id"))
            await insert_rows(
                CustomerTag._meta.db,
                CustomerTag._meta.db_table,
                ("customer_id", "tag"),
                [(ids[c.clean["customer_no"]], t) for c in tagged for t in c.tags],
            )
        return done

    async def _write_updates(self, updates: list[_Update], careful: bool) -> list[_Update]:
        done: list[_Update] = []
        entries: list[ChangeEntry] = []
        retagged: list[_Update] = []
        stamp = clock.now()
        for u in updates:
            customer = u.customer
            version = customer.version
            for name, value in u.changed.items():
                setattr(customer, name, value)
            completeness = rules.assess(customer)[0]
            try:
                async with atomic():
                    written = await Customer.filter(id=customer.id, version=version).update(
                        **u.changed, completeness=completeness, version=version + 1, updated_at=stamp
                    )
            except IntegrityError:
                if not careful:
                    raise
                u.row.errors.append(("idNumber", "DUPLICATE: Another customer has this identity document"))
                continue
            if not written:  # changed by someone else since we read it
                u.row.errors.append(
                    ("customerNo", "STALE_VERSION: The customer changed during the import; import this row again")
                )
                continue
            done.append(u)
            entries.extend(customers.change_entries(customer.id, u.before, u.changed, self.actor))
            if u.new_tags is not None:
                retagged.append(u)
                entries.append(customers.tags_entry(customer.id, u.old_tags, u.new_tags, self.actor))
        await portraits.mark_stale(u.customer.id for u in done if "status" in u.changed or u.new_tags is not None)
        if retagged:
            await CustomerTag.filter(customer_id__in=[u.customer.id for u in retagged]).delete()
            await CustomerTag.bulk_create(
                [CustomerTag(customer_id=u.customer.id, tag=t) for u in retagged for t in u.new_tags]
            )
        if entries:
            await ChangeEntry.bulk_create(entries)
        return done

    async def import_batch(self, rows: list[_Row], rows_done: int) -> None:
        """Plans and writes one batch in one transaction together with the checkpoint `rows_done` (the data
        rows finished once it commits). A lost race for a unique value (IntegrityError) rolls the batch
        back and plans it again, writing row by row in savepoints so that only the loser fails."""
        parse_errors = [len(r.errors) for r in rows]
        try:
            await self._import_batch(rows, rows_done, careful=False)
        except IntegrityError:
            for row, count in zip(rows, parse_errors, strict=True):
                del row.errors[count:]
            await self._import_batch(rows, rows_done, careful=True)

    async def _import_batch(self, rows: list[_Row], rows_done: int, careful: bool) -> None:
        job = self.job
        snapshot = (job.processed, job.failed, job.errors, job.result, replace(self.counts))
        try:
            async with atomic():
                await _custom_plans()
                # One writer per import: a second delivery running alongside sees the checkpoint move.
                current = await jobs.locked(job.id)
                if current is not None and current.checkpoint != job.checkpoint:
                    raise Superseded(f"job {job.id}: another worker moved the checkpoint to {current.checkpoint}")
                creates, updates, unchanged = await self._plan(rows)
                created = await self._write_creates(creates, careful)
                updated = await self._write_updates(updates, careful)
                failed = [r for r in rows if r.errors]
                self.counts.created += len(created)
                self.counts.updated += len(updated)
                self.counts.unchanged += len(unchanged)
                self.counts.failed += len(failed)
                job.processed += len(created) + len(updated) + len(unchanged)
                job.failed += len(failed)
                room = jobs.MAX_STORED_ERRORS - len(job.errors)
                if room > 0 and failed:
                    new = [{"row": r.row, "field": f, "message": m} for r in failed for f, m in r.errors]
                    job.errors = job.errors + new[:room]
                job.result = self.counts.as_dict()
                await job.save(update_fields=["result"])
                await self.progress.checkpoint(rows_done)
        except BaseException:
            job.processed, job.failed, job.errors, job.result, self.counts = snapshot
            raise


class _CustomerRows:
    """New customers as the plain rows `core.sql.insert_rows` takes, column for column what `Customer(**clean)`
    and save() would write: the cleaned values (enums as their values), the completeness, and for every other
    column what the model's field gives a fresh instance (defaults such as version, status, KYC status, AUM;
    created_at and updated_at stamped by the fields' auto_now(_add)), converted by the field itself.

    The cleaned values go in as they are, without the fields' own checks: `customer_rules.validate_new` made
    them (lengths within the columns', enums of the model's); tests/customers/test_import_copy.py compares a row
    written this way with one saved by the ORM, column by column."""

    ENUMS = tuple(ENUMS)

    def __init__(self) -> None:
        meta = Customer._meta
        self.table = meta.db_table
        names = [name for name in meta.fields_db_projection if not meta.fields_map[name].generated]
        self.columns = [meta.fields_db_projection[name] for name in names]
        template = Customer(customer_no="", kind=CustomerKind.INDIVIDUAL, name="")
        # Stamped now, once for the batch, as save() stamps a row.
        self.defaults = {name: meta.fields_map[name].to_db_value(getattr(template, name), template) for name in names}
        self._pick = itemgetter(*names)

    def rows(self, cleaned: list[dict[str, Any]], **same: Any) -> list[tuple]:
        rows = []
        defaults, pick, enums, completeness = self.defaults, self._pick, self.ENUMS, rules.completeness_of_valid
        for clean in cleaned:
            record = {**defaults, **clean, **same}
            for name in enums:
                value = record[name]
                if value is not None:
                    record[name] = value.value
            record["completeness"] = completeness(clean)
            rows.append(pick(record))
        return rows


async def _existing(column: str, values: list[str], *more: str) -> list:
    """(`column`, *more) of the customers whose `column` is one of `values` (flat when no `more`)."""
    connection = Customer._meta.db
    s = Statement(connection)
    rows = await rows_of(
        connection, f"SELECT {', '.join((column, *more))} FROM customer WHERE {column} IN ({s.params(values)})", s
    )
    return [tuple(r) for r in rows] if more else [r[0] for r in rows]


async def _identities(id_types: list[str], id_numbers: list[str]) -> list:
    """(id, id_type, id_number) of the customers holding one of these documents (or a type and number of two)."""
    connection = Customer._meta.db
    s = Statement(connection)
    sql = (
        f"SELECT id, id_type, id_number FROM customer "
        f"WHERE id_type IN ({s.params(id_types)}) AND id_number IN ({s.params(id_numbers)})"
    )
    return [tuple(r) for r in await rows_of(connection, sql, s)]


async def _custom_plans() -> None:
    """PostgreSQL: plan this transaction's statements for their actual parameters.

    The batch queries repeat with the same text (e.g. `customer_no IN ($1..$1000)`), so after five runs
    PostgreSQL may settle on a generic plan made while the table was small: a sequential scan, which then
    grows with every batch (an O(n^2) import). SET LOCAL ends with the transaction."""
    connection = Customer._meta.db
    if connection.capabilities.dialect == "postgres":
        await connection.execute_script("SET LOCAL plan_cache_mode = force_custom_plan")


# ---------------------------------------------------------------- the job handler


async def import_csv(params: dict, progress: jobs.Progress) -> dict:
    """Job handler (IMPORT_CUSTOMERS); see the module docstring for the file format and row numbers.

    Resumes after `job.checkpoint` data rows when a message is re-delivered; deletes the stored upload
    once every row is done. Returns {"created", "updated", "unchanged", "failed", "rows"}."""
    job = progress.job
    if not await uploads.exists(job.id):
        if job.result and "rows" in job.result:  # finished, but the worker died before it could say so
            return job.result
        raise FileRejected("The uploaded file is no longer stored; upload it again")
    try:
        caller = await jobs.requester(job, access.CUSTOMER_WRITERS, "this import")
    except jobs.RequesterGone as exc:
        raise FileRejected(str(exc)) from None
    update_existing = bool(params.get("update_existing"))
    scan = await _scan(job.id, update_existing)
    await progress.set_total(scan.rows)

    importer = _Importer(progress, caller, update_existing)
    resume_after = job.checkpoint
    seen = 0
    batch: list[_Row] = []
    header_seen = False
    # One batch is written (its own transaction, a task) while the next is read and validated: the worker's
    # CPU and the database work at once. The batches still commit one after the other, in order.
    writing: asyncio.Task | None = None
    try:
        async for line, record in uploads.records(job.id):
            if _blank(record):
                continue
            if not header_seen:
                header_seen = True
                continue
            seen += 1
            row = _parse(line - scan.header_line, record, scan.columns, importer.keys)
            if seen <= resume_after:  # committed by an earlier delivery; parsed only to know the file's keys
                continue
            importer.check_ahead(row)
            batch.append(row)
            if len(batch) >= BATCH_ROWS:
                if writing is not None:
                    await writing
                writing = asyncio.create_task(importer.import_batch(batch, seen))
                batch = []
            elif writing is not None and len(batch) % YIELD_ROWS == 0:
                await asyncio.sleep(0)  # lets the batch being written take its query's answer
        if writing is not None:
            await writing
        if batch:
            await importer.import_batch(batch, seen)
    finally:
        if writing is not None and not writing.done():  # this delivery stops: the batch commits or not, whole
            await asyncio.wait([writing])

    result = {**importer.counts.as_dict(), "rows": seen}
    async with atomic():
        await uploads.delete(job.id)
        job.result = result
        await job.save(update_fields=["result"])
        await progress.checkpoint(seen)
    return result
