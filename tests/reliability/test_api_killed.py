"""The API process killed (SIGKILL: the OOM killer, a lost machine) in the middle of mutations, merges and
erasures included (docs/RELIABILITY.md, "API process killed"): every mutation commits whole or not at all, since
each runs in one transaction with its audit entry (schema/conventions.py), and PostgreSQL rolls back the
transaction of a connection that goes away. So afterwards, for every mutation sent: its change exists exactly when
its audit entry does, and a mutation answered as done is done.

A merge moves every row of the duplicate and an erasure rewrites every row of the person; the duplicates and the
people erased here have thousands of rows, so that the kill can be aimed at a merge or an erasure caught in the
act (seen in pg_stat_activity)."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections import Counter

import httpx
import pytest
from tortoise import Tortoise

from models.audit import AuditEntry
from models.complaints import Complaint, ComplaintDaySequence, ComplaintEvent
from models.customers import ChangeEntry, Customer, CustomerStatus
from models.notes import Note
from services import customer_rules
from services.customer_merge import merged_note
from tests.complaints.helpers import FILE, new_customer, pk
from tests.conftest import GraphQLClient
from tests.customers.helpers import UPDATE
from tests.reliability.harness import NO_RATE_LIMITS, Api, crm_env, eventually, free_port, processes

pytestmark = pytest.mark.timeout(120)

ROUNDS = 3  # kills: one aimed at a merge, one at an erasure, one at a random moment (then a round left alone)
MERGE_ROWS = 30_000  # notes of each duplicate: moving them is one long UPDATE
ERASE_ROWS = 600  # notes of each person erased, naming them: redacting them is one UPDATE each
MERGE = """mutation($input: MergeCustomersInput!) { mergeCustomers(input: $input) {
  customer { id } moved errors { field code } } }"""
ERASE = """mutation($input: EraseCustomerInput!) { eraseCustomer(input: $input) {
  customer { id status } errors { field code } } }"""
_names = itertools.count(1)


async def _add_notes(customer_id: int, count: int, body: str) -> None:
    await Tortoise.get_connection("default").execute_query(
        "INSERT INTO note (customer_id, body, visibility, created_at) "
        "SELECT $1, $2 || ' #' || g, 'INTERNAL', now() FROM generate_series(1, $3) AS g",
        [customer_id, body, count],
    )


class Sent:
    """One mutation sent: its request id (kept by its audit entry) and what became of the request."""

    def __init__(self, kind: str, subject: dict) -> None:
        self.kind = kind
        self.subject = subject
        self.request_id = f"kill-{kind}-{uuid.uuid4().hex[:12]}"
        self.answer: dict | None = None  # the payload, when the response came back
        self.failure: str | None = None


async def _send(url: str, token: str, sent: Sent, query: str, variables: dict, field: str) -> None:
    headers = {"Authorization": f"Bearer {token}", "X-Request-ID": sent.request_id}
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            response = await http.post(f"{url}/graphql", json={"query": query, "variables": variables}, headers=headers)
        sent.answer = response.json()["data"][field]
    except Exception as exc:  # the process was killed under it: any failure is expected
        sent.failure = f"{type(exc).__name__}: {exc}"


async def _in_progress(pattern: str) -> bool:
    """A statement matching `pattern` runs in one of the API's sessions."""
    rows = await Tortoise.get_connection("default").execute_query_dict(
        "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE $1 "
        "AND pid <> pg_backend_pid()",
        [pattern],
    )
    return bool(rows)


async def _no_session_left(database: str) -> bool:
    """The killed process's sessions are gone: their transactions rolled back."""
    rows = await Tortoise.get_connection("default").execute_query_dict(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() "
        "AND state IN ('active', 'idle in transaction')",
        [database],
    )
    return rows[0]["n"] == 0


async def test_every_mutation_commits_whole_or_not_at_all_when_the_api_is_killed(app, admin, migrated_database):
    _, token = admin
    rng = random.Random()
    with processes() as started:
        env = crm_env(migrated_database, None, **NO_RATE_LIMITS)
        api = Api(env, free_port())
        started.append(api)
        await api.ready(60)
        async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
            gql = GraphQLClient(http)
            people = [await new_customer(gql, token, name=f"王{next(_names)}号") for _ in range(4 * (ROUNDS + 1))]
        survivors, duplicates, erased, updated = (people[i::4] for i in range(4))
        for duplicate in duplicates:
            await _add_notes(pk(duplicate["id"]), MERGE_ROWS, "重复客户的记录")
        for person in erased:
            await _add_notes(pk(person["id"]), ERASE_ROWS, f"客户{person['name']}来电，电话 13812345678")

        everything: list[Sent] = []
        # A last round runs to its end: what a whole merge, erasure, update and filing leave is checked the same way.
        for round_no in range(ROUNDS + 1):
            batch: list[tuple[Sent, str, dict, str]] = []
            merge = Sent("merge", {"survivor": survivors[round_no], "duplicate": duplicates[round_no]})
            batch.append(
                (
                    merge,
                    MERGE,
                    {"input": {"survivorId": survivors[round_no]["id"], "duplicateId": duplicates[round_no]["id"]}},
                    "mergeCustomers",
                )
            )
            erase = Sent("erase", erased[round_no])
            batch.append(
                (
                    erase,
                    ERASE,
                    {"input": {"id": erased[round_no]["id"], "reason": "PIPL 第47条 工单 118"}},
                    "eraseCustomer",
                )
            )
            customer = updated[round_no]
            for i in range(6):
                value = f"职业-{round_no}-{i}"
                # Each update of the version read: at most one of them wins, whatever the kill leaves.
                update = Sent("update", {"customer": customer, "value": value})
                variables = {"input": {"id": customer["id"], "version": customer["version"], "occupation": value}}
                batch.append((update, UPDATE, variables, "updateCustomer"))
            for i in range(8):
                summary = f"被中断的投诉 {round_no}-{i}"
                filing = Sent("file", {"summary": summary})
                data = {
                    "customerId": survivors[round_no]["id"],
                    "channel": "PHONE",
                    "summary": summary,
                    "description": "客户称未被告知信用卡年费，要求退还。",
                }
                batch.append((filing, FILE, {"input": data}, "fileComplaint"))
            rng.shuffle(batch)
            tasks = [asyncio.create_task(_send(api.url, token, *item)) for item in batch]
            everything += [item[0] for item in batch]

            if round_no == 0:
                await eventually(
                    lambda: _in_progress('UPDATE "note" SET "customer_id"%'),
                    timeout=30,
                    interval=0.01,
                    what="a merge moving rows",
                )
            elif round_no == 1:
                await eventually(
                    lambda: _in_progress('UPDATE "note" SET "body"%'),
                    timeout=30,
                    interval=0.01,
                    what="an erasure redacting rows",
                )
            elif round_no == 2:
                await asyncio.sleep(rng.uniform(0.05, 1.0))
            else:
                await asyncio.gather(*tasks)
                assert all(s.answer is not None for s, *_ in batch), [s.failure for s, *_ in batch]
                break
            api.kill()
            await asyncio.gather(*tasks)
            await eventually(
                lambda: _no_session_left(migrated_database.rsplit("/", 1)[1]), timeout=30, what="sessions gone"
            )
            api = Api(env, free_port())
            started.append(api)
            await api.ready(60)

    assert sum(1 for s in everything if s.failure) > 0, "no mutation was cut by a kill"
    await _check(everything)


async def _audit(sent: Sent, action: str) -> bool:
    return await AuditEntry.filter(request_id=sent.request_id, action=action).exists()


async def _check(everything: list[Sent]) -> None:
    report = []
    for sent in everything:
        succeeded = sent.answer is not None and not sent.answer["errors"]
        if sent.kind == "update":
            customer_id = pk(sent.subject["customer"]["id"])
            changed = await ChangeEntry.filter(
                customer_id=customer_id, field="occupation", new_value=sent.subject["value"]
            ).count()
            audited = await _audit(sent, "customer.update")
            assert changed == int(audited), (sent.request_id, changed, audited)
        elif sent.kind == "file":
            complaints = await Complaint.filter(summary=sent.subject["summary"])
            audited = await _audit(sent, "complaint.file")
            assert len(complaints) == int(audited), (sent.request_id, complaints, audited)
            changed = bool(complaints)
            if complaints:
                assert await ComplaintEvent.filter(complaint_id=complaints[0].id).count() == 1
        elif sent.kind == "merge":
            survivor = await Customer.get(id=pk(sent.subject["survivor"]["id"]))
            duplicate = await Customer.get(id=pk(sent.subject["duplicate"]["id"]))
            closed = duplicate.status == CustomerStatus.CLOSED and duplicate.status_note == merged_note(survivor)
            left = await Note.filter(customer_id=duplicate.id).count()
            moved = await Note.filter(customer_id=survivor.id).count()
            audited = await _audit(sent, "customer.merge")
            assert (closed, left, moved, audited) in (
                (True, 0, MERGE_ROWS, True),
                (False, MERGE_ROWS, 0, False),
            ), (sent.request_id, closed, left, moved, audited)
            changed = closed
        else:  # erase
            person = await Customer.get(id=pk(sent.subject["id"]))
            is_erased = person.status == CustomerStatus.ERASED
            pii_gone = person.name == customer_rules.ERASED_NAME and person.phone is None and person.id_number is None
            naming = await Note.filter(customer_id=person.id, body__contains=sent.subject["name"]).count()
            audited = await _audit(sent, "customer.erase")
            assert (is_erased, pii_gone, naming, audited) in (
                (True, True, 0, True),
                (False, False, ERASE_ROWS, False),
            ), (sent.request_id, is_erased, pii_gone, naming, audited)
            changed = is_erased
        if succeeded:  # answered as done: it is
            assert changed, (sent.kind, sent.request_id, sent.answer)
        report.append((sent.kind, "answered" if sent.answer else "cut", "committed" if changed else "not committed"))
    print(sorted(Counter(report).items()))
    # Of the updates of one version read, at most one committed.
    committed_updates = Counter(
        s.subject["customer"]["id"]
        for s, (_, _, outcome) in zip(everything, report, strict=True)
        if s.kind == "update" and outcome == "committed"
    )
    assert all(n == 1 for n in committed_updates.values()), committed_updates
    # The reference numbers of the filings that committed are still gap-free: a number taken by a filing that
    # was cut went back with its transaction.
    numbers = sorted(int(ref[-6:]) for ref in await Complaint.all().values_list("reference_no", flat=True))
    assert numbers == list(range(1, len(numbers) + 1)), numbers
    if numbers:
        assert (await ComplaintDaySequence.all().values_list("last_number", flat=True)) == [len(numbers)]
