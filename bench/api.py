"""Benchmark of the GraphQL API's read path (and a write mix) as a user runs it, next to a FLOOR measured in the
same run: a bare Starlette + asyncpg app answering the same JSON bodies (bench/api_floor.py).

    make bench                      # CRM_BENCH_DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/api_bench
    .venv/bin/python bench/api.py --database-url postgres://postgres@127.0.0.1:5432/api_bench \\
        [--rows 100000] [--workers 2] [--connections 16] [--duration 15] [--scenarios A,B,C,D] [--reseed]

The scenarios (signed in as a MANAGER: bank-wide, unmasked free text; no personal-data field is asked for, so
no customer.pii_read audit entry is written by the reads):
 A. a branch's customers: customers(first: 50, filter: {branch}, orderBy: {field: AUM, direction: DESC}) with
    totalCount, each with portrait { valueTier churnRisk }, relationshipManager, holdings, complaints(first: 3);
 B. one customer's 360 view: its fields, relationship manager, holdings, portrait, timeline(first: 20),
    followUps(first: 10) with totalCount;
 C. complaints(filter: {slaState: [AT_RISK, BREACHED]}, first: 50) with totalCount, customer and handler;
 D. a write mix, one mutation per request, alternating: logInteraction, then updateCustomer (occupation) with
    the version the client last read (the Lua script keeps each customer's version from the responses).

What it does:
 1. data: REUSES the database when it holds this script's data set of --rows customers (a marker table), else
    drops the `public` schema, migrates, seeds with bench/portraits.py's `seed()` and adds what the scenarios
    need (branches and relationship managers, complaint handlers and SLA outcomes, complaint events,
    follow-ups, every portrait computed by services.portraits.compute); --reseed forces it. A MANAGER
    `bench-manager` is created with services.staff (refuses the database named `test` and Redis db 15);
 2. starts the API as in production: `CRM_ENV=production app.py serve --workers W` on PostgreSQL and Redis
    (--redis-url, flushed before and after), with the API-token rate limit raised (still taken on every
    request) so that it does not refuse the load; signs in through the real `login` mutation;
 3. starts the FLOOR: `uvicorn bench.api_floor:app --workers W`, checking the same bearer token;
 4. VERIFIES that the floor answers exactly the API's `data` for each scenario (JSON compared, lists in
    order; for D the ids and versions, which differ between the two customers written, are left out) and
    refuses to report otherwise (exit 1, with the first difference);
 5. counts the SQL statements of one request per scenario, run in-process through the same ASGI app;
 6. loads each scenario with `wrk` (1 thread, --connections, a --warmup run then --duration seconds; a Lua
    script POSTs JSON with the Authorization header and counts non-2xx answers and bodies holding an error),
    first the API then the floor; without wrk, an asyncio client (httpx) does it, and says so;
 7. prints per scenario requests/s, p50/p95/p99, SQL statements per request, the peak memory (VmHWM) of the
    API's and the floor's processes, and the ratio API rps / floor rps against the targets (A >= 0.5, B and C
    >= 0.4, p99 < 100 ms; D is reported without a target).

Exit status: 0 all targets met, 3 a target missed, 1 a check failed (a difference, errors under load), 2 refused.
Every process it starts is stopped at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import httpx
import redis

from bench import common, portraits as portraits_bench, processes
from bench.processes import PYTHON, ROOT, Processes, worker_env
from services.demo_data import BRANCHES

TARGETS = {"A": 0.5, "B": 0.4, "C": 0.4}
P99_TARGET_MS = 100.0
SECRET_KEY = "bench-api-secret-key-" + "k" * 24  # production needs 32+ characters; scratch data only
MANAGER, PASSWORD = "bench-manager", "bench-password-2026"
RAISED_LIMITS = {"CRM_LIMIT_API_TOKEN_BURST": "100000", "CRM_LIMIT_API_TOKEN_PER_HOUR": "3600000"}
RMS_PER_BRANCH, HANDLERS = 3, 6
MARKER = "bench_api_dataset"
RUN = f"{int(time.time()):x}"  # this run's stamp in the occupations D writes

# ---------------------------------------------------------------- the requests

A_QUERY = """query BranchCustomers($branch: String!) {
  customers(first: 50, filter: {branch: $branch}, orderBy: {field: AUM, direction: DESC}) {
    totalCount
    pageInfo { hasNextPage }
    edges { node {
      id customerNo name status branch aum valueTier version
      portrait { valueTier churnRisk }
      relationshipManager { id displayName }
      holdings { id product balance status openedAt }
      complaints(first: 3) { edges { node { id referenceNo status slaState receivedAt } } }
    } }
  }
}"""

B_QUERY = """query Customer360($id: ID!) {
  customer(id: $id) {
    id customerNo name kind status kycStatus branch riskLevel aum debt valueTier completeness version
    createdAt updatedAt
    relationshipManager { id displayName }
    holdings { id product balance currency status openedAt closedAt }
    portrait { valueTier aum churnRisk churnDrivers lifecycleStage stale }
    timeline(first: 20) { pageInfo { hasNextPage } edges { node { kind at title detail } } }
    followUps(first: 10) {
      totalCount
      edges { node { id title status priority dueAt overdue assignee { id displayName } } }
    }
  }
}"""

C_QUERY = """query ComplaintsAtRisk {
  complaints(filter: {slaState: [AT_RISK, BREACHED]}, first: 50) {
    totalCount
    pageInfo { hasNextPage }
    edges { node {
      id referenceNo status priority slaState receivedAt dueAt summary
      customer { id customerNo name branch }
      handler { id displayName }
    } }
  }
}"""

LOG_MUTATION = """mutation Log($input: LogInteractionInput!) {
  logInteraction(input: $input) { interaction { id kind status subject } errors { message } }
}"""

UPDATE_MUTATION = """mutation Update($input: UpdateCustomerInput!) {
  updateCustomer(input: $input) { customer { id version occupation } errors { message } }
}"""

LOG_INPUT = {
    "channel": "PHONE",
    "direction": "INBOUND",
    "kind": "SERVICE_REQUEST",
    "subject": "客户来电咨询账户服务",
    "content": "bench: a service call, logged",
}


def gid(type_name: str, pk: int) -> str:
    from bench.api_floor import gid as floor_gid

    return floor_gid(type_name, pk)


@dataclass
class Scenario:
    name: str
    title: str
    path: str  # the floor's endpoint
    api_bodies: list[str] = field(default_factory=list)  # JSON request bodies, used in turn
    floor_bodies: list[str] = field(default_factory=list)
    writes: bool = False


def _graphql(query: str, variables: dict) -> str:
    return json.dumps({"query": query, "variables": variables}, ensure_ascii=False, separators=(",", ":"))


def _plain(value: dict) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------- the data set


def _pg(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


async def dataset(args: argparse.Namespace) -> None:
    """The data set of --rows customers: reused when the database holds it (new migrations applied), else seeded."""
    from core import db

    conn = await asyncpg.connect(_pg(args.database_url))
    try:
        found = None
        if await conn.fetchval("SELECT to_regclass($1)", f"public.{MARKER}"):
            found = await conn.fetchrow(f"SELECT rows, seed, seeded_at FROM {MARKER}")
    finally:
        await conn.close()
    if found and found["rows"] == args.rows and found["seed"] == args.seed and not args.reseed:
        applied = await db.migrate(args.database_url)
        print(
            f"data       reused: {args.rows:,} customers seeded {found['seeded_at']:%Y-%m-%d %H:%M} UTC"
            + (f" (migrations applied now: {', '.join(applied)})" if applied else "")
            + " (--reseed to seed afresh)"
        )
        return
    await common.fresh_database(args.database_url)
    started = time.perf_counter()
    rng = random.Random(args.seed)
    counts = await portraits_bench.seed(args.database_url, args.rows, rng)
    counts.pop("copy seconds", None)
    counts.update(await enrich(args.database_url, args.rows, rng))
    print(f"seeded     {', '.join(f'{v:,} {k}' for k, v in counts.items())}")
    computed = await compute_portraits(args.database_url, args.rows)
    conn = await asyncpg.connect(_pg(args.database_url))
    try:
        await conn.execute("VACUUM ANALYZE")
        await conn.execute(f"CREATE TABLE {MARKER} (rows integer, seed integer, seeded_at timestamptz)")
        await conn.execute(f"INSERT INTO {MARKER} VALUES ($1, $2, now())", args.rows, args.seed)
    finally:
        await conn.close()
    print(f"seeded     {computed:,} portraits computed; {time.perf_counter() - started:.0f} s in all")


async def enrich(url: str, rows: int, rng: random.Random) -> dict[str, int]:
    """What the API scenarios need beyond bench/portraits.py's data: staff (relationship managers per branch,
    complaint handlers), each customer's branch and relationship manager, complaint handlers, SLA outcomes and
    a RECEIVED event per complaint, follow-ups."""
    now = datetime.now(UTC)
    branches = [b.name for b in BRANCHES]
    conn = await asyncpg.connect(_pg(url))
    try:
        staff = []
        # Position p of the relationship managers is in branch p % 12, so customer id % 36 keeps id % 12's branch.
        for p in range(RMS_PER_BRANCH * len(branches)):
            branch = branches[p % len(branches)]
            staff.append((f"bench-rm-{p:02d}", f"客户经理{p:02d}", "RELATIONSHIP_MANAGER", "BRANCH", branch))
        for h in range(HANDLERS):
            staff.append((f"bench-handler-{h}", f"投诉专员{h}", "COMPLAINT_HANDLER", "COMPLAINTS", None))
        await conn.copy_records_to_table(
            "staff",
            records=[(u, d, "!no-login", r, dep, b, True, 0, now, now) for u, d, r, dep, b in staff],
            columns=[
                "username", "display_name", "password_hash", "role", "department", "branch", "active",
                "failed_logins", "created_at", "updated_at",
            ],
        )  # fmt: skip
        rm_ids = [
            r["id"] for r in await conn.fetch("SELECT id FROM staff WHERE username LIKE 'bench-rm-%' ORDER BY username")
        ]
        handler_ids = [
            r["id"]
            for r in await conn.fetch("SELECT id FROM staff WHERE username LIKE 'bench-handler-%' ORDER BY username")
        ]
        await conn.execute(
            "UPDATE customer SET branch = ($1::text[])[1 + id % $3], "
            "relationship_manager_id = ($2::int[])[1 + id % $4]",
            branches,
            rm_ids,
            len(branches),
            len(rm_ids),
        )
        # Handlers for all; resolution (some in time: MET, some late: MISSED) and withdrawal times.
        await conn.execute(
            "UPDATE complaint SET handler_id = ($1::int[])[1 + id % $2], department = 'COMPLAINTS', "
            "acknowledged_at = received_at + interval '1 day', "
            "resolved_at = CASE WHEN status IN ('RESOLVED', 'CLOSED') "
            "  THEN received_at + (id % 20) * interval '1 day' + interval '3 hours' END, "
            "withdrawn_at = CASE WHEN status = 'WITHDRAWN' THEN received_at + (id % 20) * interval '1 day' END",
            handler_ids,
            len(handler_ids),
        )
        await conn.execute(
            "INSERT INTO complaint_event (complaint_id, type, to_status, message, at) "
            "SELECT id, 'RECEIVED', 'RECEIVED', '投诉已受理', received_at FROM complaint"
        )
        events = await conn.fetchval("SELECT count(*) FROM complaint_event")
        follow_ups = []
        for n in range(rows // 2):
            customer_id = rng.randrange(1, rows + 1)
            created = now - timedelta(seconds=rng.randrange(0, 180 * 86400))
            done = rng.random() < 0.6
            follow_ups.append(
                (
                    "回访客户" if n % 2 else "跟进理财到期",
                    "与客户确认需求并记录结果",
                    customer_id,
                    rm_ids[customer_id % len(rm_ids)],
                    ("LOW", "NORMAL", "NORMAL", "HIGH")[n % 4],
                    "DONE" if done else "OPEN",
                    created + timedelta(days=7),
                    rm_ids[customer_id % len(rm_ids)],
                    created,
                    created + timedelta(days=rng.randrange(1, 9)) if done else None,
                )
            )
        await conn.copy_records_to_table(
            "follow_up",
            records=follow_ups,
            columns=[
                "title", "description", "customer_id", "assignee_id", "priority", "status", "due_at", "created_by_id",
                "created_at", "completed_at",
            ],
        )  # fmt: skip
    finally:
        await conn.close()
    return {"staff": len(staff), "complaint events": events, "follow-ups": len(follow_ups)}


async def compute_portraits(url: str, rows: int) -> int:
    """Every portrait, with the service that workers run (services.portraits.compute), in batches."""
    from core import db

    # The co-holding statistics written by SQL first (the keys of their JSON are the product masks): with orjson
    # installed, Tortoise's JSONField refuses the int keys that services.portraits.co_holding() writes them
    # with ("Dict key must be str"); computed here, they are only read.
    from models.portraits import ValueTier
    from services import portraits

    conn = await asyncpg.connect(_pg(url))
    try:
        await conn.execute(
            "INSERT INTO tier_product_sets (tier, customers_per_set, computed_at) "
            "SELECT t.tier, COALESCE(s.sets, '{}'::jsonb), now() FROM unnest($1::text[]) AS t(tier) "
            f"LEFT JOIN (SELECT tier, jsonb_object_agg(mask::text, n) AS sets FROM ({portraits.CO_HOLDING_SQL}) AS x "
            "GROUP BY tier) AS s ON s.tier = t.tier "
            "ON CONFLICT (tier) DO UPDATE SET customers_per_set = excluded.customers_per_set, computed_at = now()",
            [tier.value for tier in ValueTier],
        )
    finally:
        await conn.close()
    await db.init_orm(url)
    try:
        done = 0
        for start in range(1, rows + 1, 2000):
            done += await portraits.compute(list(range(start, min(rows, start + 1999) + 1)))
        return done
    finally:
        await db.close_orm()


async def ensure_manager(url: str) -> None:
    """The MANAGER the bench signs in as, created with services.staff (once per data set)."""
    from core import db
    from models.staff import Department, Role, Staff
    from services import staff as staff_service
    from services.access import COMMAND_LINE

    await db.init_orm(url)
    try:
        if not await Staff.filter(username=MANAGER).exists():
            await staff_service.create(
                COMMAND_LINE,
                username=MANAGER,
                display_name="Bench Manager",
                password=PASSWORD,
                role=Role.MANAGER,
                department=Department.OPERATIONS,
            )
    finally:
        await db.close_orm()


# ---------------------------------------------------------------- the scenarios' requests


async def scenarios(url: str, rows: int, wanted: list[str], seed: int) -> dict[str, Scenario]:
    conn = await asyncpg.connect(_pg(url))
    try:
        branches = [r["branch"] for r in await conn.fetch("SELECT DISTINCT branch FROM customer ORDER BY branch")]
        with_complaints = [
            r["customer_id"]
            for r in await conn.fetch("SELECT DISTINCT customer_id FROM complaint ORDER BY customer_id LIMIT 5000")
        ]
    finally:
        await conn.close()
    rng = random.Random(seed)
    found: dict[str, Scenario] = {}
    a = Scenario("A", "branch customers by AUM", "/a")
    for branch in branches:
        a.api_bodies.append(_graphql(A_QUERY, {"branch": branch}))
        a.floor_bodies.append(_plain({"branch": branch}))
    found["A"] = a
    b = Scenario("B", "customer 360", "/b")
    for customer_id in rng.sample(with_complaints, min(100, len(with_complaints))):
        b.api_bodies.append(_graphql(B_QUERY, {"id": gid("Customer", customer_id)}))
        b.floor_bodies.append(_plain({"id": gid("Customer", customer_id)}))
    found["B"] = b
    c = Scenario("C", "complaints at risk", "/c", [_graphql(C_QUERY, {})], [_plain({})])
    found["C"] = c
    found["D"] = Scenario("D", "write mix", "/d", writes=True)
    return {name: s for name, s in found.items() if name in wanted}


# The customers each side of D writes: the API the ids = 1 (mod 4), the floor the ids = 3 (mod 4), in three
# disjoint parts of up to 2,000: 0 for the checks, 1 for the warm-up, 2 for the measured run (a warm-up's last
# requests may still be committing when the measured run reads the versions). A customer comes back only long
# after its previous answer.
def d_pool(rows: int, side: str, part: int) -> list[int]:
    ids = list(range(1 if side == "api" else 3, rows + 1, 4))
    size = max(1, min(2000, len(ids) // 3))
    return ids[part * size : (part + 1) * size]


async def versions_of(url: str, ids: list[int]) -> dict[int, int]:
    conn = await asyncpg.connect(_pg(url))
    try:
        return {
            r["id"]: r["version"] for r in await conn.fetch("SELECT id, version FROM customer WHERE id = ANY($1)", ids)
        }
    finally:
        await conn.close()


def d_bodies(side: str, customer_id: int, version: int, n: int) -> tuple[str, str]:
    """(logInteraction, updateCustomer) bodies of one customer, in the side's own form."""
    customer = gid("Customer", customer_id)
    occupation = f"bench occupation {RUN}-{n}"  # new in every run: an update that changes nothing writes nothing
    if side == "api":
        return (
            _graphql(LOG_MUTATION, {"input": {"customerId": customer, **LOG_INPUT}}),
            _graphql(UPDATE_MUTATION, {"input": {"id": customer, "version": version, "occupation": occupation}}),
        )
    return (
        _plain({"op": "log", "customerId": customer, **LOG_INPUT}),
        _plain({"op": "update", "id": customer, "version": version, "occupation": occupation}),
    )


# ---------------------------------------------------------------- verification


def first_difference(api: object, floor: object, path: str = "data") -> str | None:
    if isinstance(api, dict) and isinstance(floor, dict):
        for key in list(api) + [k for k in floor if k not in api]:
            if key not in floor:
                return (
                    f"{path}.{key}: the floor's answer lacks it (API: {json.dumps(api[key], ensure_ascii=False)[:200]})"
                )
            if key not in api:
                return f"{path}.{key}: only the floor answers it"
            found = first_difference(api[key], floor[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(api, list) and isinstance(floor, list):
        for i, (x, y) in enumerate(zip(api, floor, strict=False)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        if len(api) != len(floor):
            return f"{path}: {len(api)} items from the API, {len(floor)} from the floor"
        return None
    if api != floor or type(api) is not type(floor):
        return f"{path}: API {json.dumps(api, ensure_ascii=False)} != floor {json.dumps(floor, ensure_ascii=False)}"
    return None


def _without_ids(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in ("id", "version")}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


async def verify(
    scenario: Scenario, api_url: str, floor_url: str, token: str, database_url: str, rows: int
) -> list[str]:
    """Problems: the floor's `data` differs from the API's, or either answered an error."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    problems: list[str] = []
    async with httpx.AsyncClient(timeout=60) as http:

        async def both(api_body: str, floor_body: str) -> tuple[dict, dict] | None:
            api = await http.post(f"{api_url}/graphql", content=api_body.encode(), headers=headers)
            floor = await http.post(f"{floor_url}{scenario.path}", content=floor_body.encode(), headers=headers)
            api_json, floor_json = api.json(), floor.json()
            for side, response, body in (("API", api, api_json), ("floor", floor, floor_json)):
                if response.status_code != 200 or body.get("errors") or _payload_errors(body):
                    problems.append(f"{scenario.name}: the {side} answered {response.status_code} {str(body)[:500]}")
            return (api_json, floor_json) if not problems else None

        if scenario.writes:
            api_id, floor_id = d_pool(rows, "api", 0)[0], d_pool(rows, "floor", 0)[0]
            versions = await versions_of(database_url, [api_id, floor_id])
            api_bodies = d_bodies("api", api_id, versions[api_id], 0)
            floor_bodies = d_bodies("floor", floor_id, versions[floor_id], 0)
            for api_body, floor_body in zip(api_bodies, floor_bodies, strict=True):
                answered = await both(api_body, floor_body)
                if answered is None:
                    return problems
                difference = first_difference(_without_ids(answered[0]["data"]), _without_ids(answered[1]["data"]))
                if difference:
                    return [f"{scenario.name}: {difference}"]
            return problems
        checked = scenario.api_bodies[:20]
        for api_body, floor_body in zip(checked, scenario.floor_bodies, strict=False):
            answered = await both(api_body, floor_body)
            if answered is None:
                return problems
            difference = first_difference(answered[0]["data"], answered[1]["data"])
            if difference:
                return [f"{scenario.name} ({floor_body}): {difference}"]
    return problems


def _payload_errors(body: dict) -> bool:
    data = body.get("data") or {}
    return any(isinstance(v, dict) and v.get("errors") for v in data.values())


# ---------------------------------------------------------------- statements per request (in-process)


async def statements(
    args: argparse.Namespace, chosen: dict[str, Scenario], token: str
) -> tuple[dict[str, str], dict[str, float]]:
    """SQL statements of one request of each scenario, through the API's ASGI app in this process (after one
    request of each, so that what a process does once is not counted); for the reads also the CPU time of one
    request in this process (the mean of IN_PROCESS_REQUESTS, one after another), the figure that says what a
    change saved whatever else the machine does, and with --cprofile the functions that took it."""
    from asgi_lifespan import LifespanManager

    from app import create_app
    from core.settings import Settings
    from core.statement_counter import StatementCounter

    settings = Settings(
        env="production", secret_key=SECRET_KEY, database_url=args.database_url, redis_url=args.redis_url
    ).validated()
    found: dict[str, str] = {}
    cpu: dict[str, float] = {}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with LifespanManager(create_app(settings), startup_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            for name, scenario in chosen.items():
                if scenario.writes:
                    customer_id = d_pool(args.rows, "api", 0)[1]
                    version = (await versions_of(args.database_url, [customer_id]))[customer_id]
                    counts = []
                    for body in d_bodies("api", customer_id, version, 1):
                        with StatementCounter() as counter:
                            response = await http.post("/graphql", content=body.encode(), headers=headers)
                        assert response.status_code == 200 and '"errors":[{' not in response.text, response.text
                        counts.append(counter.count)
                    found[name] = f"{counts[0]} / {counts[1]}"
                    continue
                body = scenario.api_bodies[0].encode()
                await http.post("/graphql", content=body, headers=headers)
                with StatementCounter() as counter:
                    response = await http.post("/graphql", content=body, headers=headers)
                assert response.status_code == 200 and "errors" not in response.json(), response.text[:500]
                found[name] = str(counter.count)
                cpu[name] = await _cpu_per_request(http, body, headers, name, args.cprofile)
    return found, cpu


IN_PROCESS_REQUESTS = 40


async def _cpu_per_request(http: httpx.AsyncClient, body: bytes, headers: dict, name: str, profile: int) -> float:
    """Mean CPU milliseconds of this process per request (the client's share included: httpx's ASGI transport)."""
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    started = time.process_time()
    for _ in range(IN_PROCESS_REQUESTS):
        await http.post("/graphql", content=body, headers=headers)
    spent = time.process_time() - started
    if profiler:
        profiler.disable()
        out = ROOT / "var" / f"bench-api-cprofile-{name}.txt"
        out.parent.mkdir(exist_ok=True)
        with out.open("w") as handle:
            stats = pstats.Stats(profiler, stream=handle)
            stats.sort_stats("tottime").print_stats(profile)
            stats.sort_stats("cumulative").print_stats(profile)
        print(f"cprofile   {name}: {out} (the {profile} costliest functions, by own and by cumulative time)")
    return spent / IN_PROCESS_REQUESTS * 1000


# The floor's statements per request, by construction (bench/api_floor.py): the token lookup and one statement
# per relation; D: logInteraction / updateCustomer (each in BEGIN ... COMMIT, not counted).
FLOOR_STATEMENTS = {"A": "7", "B": "8", "C": "5", "D": "5 / 4"}


# ---------------------------------------------------------------- load


@dataclass
class Load:
    requests: int
    seconds: float
    p50: float
    p95: float
    p99: float
    failed: int  # non-2xx answers, socket errors and bodies holding an error
    detail: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


LUA_COMMON = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
bad_status, bad_body, first_error = 0, 0, ""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function response(status, headers, body)
  if status < 200 or status > 299 then bad_status = bad_status + 1 end
  if body and (string.find(body, '"errors":[{', 1, true) or string.find(body, '{"errors"', 1, true)) then
    bad_body = bad_body + 1
    if first_error == "" then first_error = string.sub(body, 1, 300) end
  end
  on_body(body)
end
function done(summary, latency, requests)
  local s, b = 0, 0
  local first = ""
  for _, t in ipairs(threads) do
    s = s + t:get("bad_status"); b = b + t:get("bad_body")
    if first == "" then first = t:get("first_error") end
  end
  if first ~= "" then io.write("FIRSTERROR " .. first .. "\n") end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%%d,"duration_us":%%d,"p50":%%d,"p95":%%d,"p99":%%d,"bad_status":%%d,"bad_body":%%d,' ..
    '"connect":%%d,"read":%%d,"write":%%d,"timeout":%%d,"status":%%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    s, b, e.connect, e.read, e.write, e.timeout, e.status))
end
"""

LUA_BODIES = r"""
bodies = { %(bodies)s }
n = 0
function on_body(body) end
function request()
  n = n + 1
  return wrk.format(nil, "%(path)s", nil, bodies[(n %% #bodies) + 1])
end
"""

# D: alternately logInteraction and updateCustomer, each on the next customer of the pool; an update carries
# the version of the customer's last answer (or the one read before the run).
LUA_WRITES = r"""
ids = { %(ids)s }
versions = { %(versions)s }
log_bodies = { %(log_bodies)s }
upd_a, upd_b, upd_c, upd_d = %(upd)s
n = 0
function on_body(body)
  if body then
    local id, v = string.match(body, '"id":"([^"]+)","version":(%%d+)')
    if id then versions[id] = tonumber(v) end
  end
end
function request()
  n = n + 1
  local k = math.floor((n - 1) / 2) %% #ids + 1
  local body
  if n %% 2 == 1 then
    body = log_bodies[k]
  else
    local id = ids[k]
    body = upd_a .. id .. upd_b .. versions[id] .. upd_c .. n .. upd_d
  end
  return wrk.format(nil, "%(path)s", nil, body)
end
"""


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


async def lua_script(
    scenario: Scenario, side: str, token: str, args: argparse.Namespace, folder: Path, part: int
) -> Path:
    path = "/graphql" if side == "api" else scenario.path
    script = LUA_COMMON % {"token": token}
    if not scenario.writes:
        bodies = scenario.api_bodies if side == "api" else scenario.floor_bodies
        script += LUA_BODIES % {"bodies": ", ".join(_lua_string(b) for b in bodies), "path": path}
    else:
        pool = d_pool(args.rows, side, part)
        versions = await versions_of(args.database_url, pool)
        log_bodies = [d_bodies(side, customer_id, 0, 0)[0] for customer_id in pool]
        marker = "\x00"
        template = d_bodies(side, 999_999_999, 424_242_424, 0)[1]
        template = template.replace(gid("Customer", 999_999_999), marker).replace("424242424", marker, 1)
        template = template.replace(f"bench occupation {RUN}-0", f"bench occupation {RUN}-{marker}")
        upd_a, upd_b, upd_c, upd_d = template.split(marker)
        script += LUA_WRITES % {
            "ids": ", ".join(f'"{gid("Customer", c)}"' for c in pool),
            "versions": ", ".join(f'["{gid("Customer", c)}"] = {versions[c]}' for c in pool),
            "log_bodies": ", ".join(_lua_string(b) for b in log_bodies),
            "upd": ", ".join(_lua_string(part) for part in (upd_a, upd_b, upd_c, upd_d)),
            "path": path,
        }
    file = folder / f"{scenario.name}-{side}.lua"
    file.write_text(script, encoding="utf-8")
    return file


def run_wrk(url: str, script: Path, connections: int, seconds: float) -> Load:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCHJSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    r = json.loads(line.removeprefix("BENCHJSON "))
    socket_errors = r["connect"] + r["read"] + r["write"] + r["timeout"]
    failed = r["bad_status"] + r["bad_body"] + socket_errors
    first = next((x.removeprefix("FIRSTERROR ") for x in done.stdout.splitlines() if x.startswith("FIRSTERROR ")), "")
    detail = ""
    if failed:
        detail = f"non-2xx {r['bad_status']}, error bodies {r['bad_body']}, socket errors {socket_errors}"
        detail += f"; the first error body: {first}" if first else ""
    return Load(
        r["requests"], r["duration_us"] / 1e6, r["p50"] / 1000, r["p95"] / 1000, r["p99"] / 1000, failed, detail
    )


async def run_asyncio_client(
    url: str, scenario: Scenario, side: str, token: str, args: argparse.Namespace, seconds: float, part: int
) -> Load:
    """Without wrk: `connections` asyncio tasks, each on its own keep-alive connection, one request at a time."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    failed = 0
    counter = 0
    versions: dict[int, int] = {}
    pool = d_pool(args.rows, side, part) if scenario.writes else []
    if pool:
        versions = await versions_of(args.database_url, pool)

    def next_body() -> str:
        nonlocal counter
        counter += 1
        if not scenario.writes:
            bodies = scenario.api_bodies if side == "api" else scenario.floor_bodies
            return bodies[counter % len(bodies)]
        customer_id = pool[((counter - 1) // 2) % len(pool)]
        log_body, update_body = d_bodies(side, customer_id, versions[customer_id], counter)
        return log_body if counter % 2 else update_body

    deadline = time.perf_counter() + seconds

    async def connection() -> None:
        nonlocal failed
        async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=1)) as http:
            while time.perf_counter() < deadline:
                body = next_body()
                started = time.perf_counter()
                try:
                    response = await http.post(url, content=body.encode(), headers=headers)
                except httpx.HTTPError:
                    failed += 1
                    continue
                latencies.append(time.perf_counter() - started)
                text = response.text
                if response.status_code // 100 != 2 or '"errors":[{' in text or '{"errors"' in text:
                    failed += 1
                if scenario.writes and '"version":' in text:
                    customer = json.loads(text)["data"].get("updateCustomer", {}).get("customer")
                    if customer:
                        from bench.api_floor import pk_of

                        versions[pk_of(customer["id"], "Customer")] = customer["version"]

    started = time.perf_counter()
    await asyncio.gather(*[connection() for _ in range(args.connections)])
    elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return Load(
        len(latencies), elapsed, quantiles[49] * 1000, quantiles[94] * 1000, quantiles[98] * 1000, failed,
        f"{failed} failed" if failed else "",
    )  # fmt: skip


async def load(scenario: Scenario, side: str, base: str, token: str, args: argparse.Namespace, folder: Path) -> Load:
    url = f"{base}/graphql" if side == "api" else f"{base}{scenario.path}"
    if shutil.which("wrk"):
        if args.warmup > 0:
            run_wrk(url, await lua_script(scenario, side, token, args, folder, 1), args.connections, args.warmup)
        script = await lua_script(scenario, side, token, args, folder, 2)
        return run_wrk(url, script, args.connections, args.duration)
    if args.warmup > 0:
        await run_asyncio_client(url, scenario, side, token, args, args.warmup, 1)
    return await run_asyncio_client(url, scenario, side, token, args, args.duration, 2)


# ---------------------------------------------------------------- the servers


def _wait_started(log: Path, process: subprocess.Popen, workers: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while log.read_text(errors="replace").count("Application startup complete") < workers:
        if process.poll() is not None:
            raise RuntimeError(
                f"{log.name}: exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{log.name}: not ready after {timeout:.0f} s:\n{log.read_text(errors='replace')[-3000:]}"
            )
        time.sleep(0.2)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_api(running: Processes, args: argparse.Namespace, folder: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = worker_env(
        CRM_ENV="production",
        CRM_SECRET_KEY=SECRET_KEY,
        CRM_DATABASE_URL=args.database_url,
        CRM_REDIS_URL=args.redis_url,
        CRM_LOG_LEVEL=args.api_log_level,
        CRM_MAIL_DROP_DIR=str(folder / "outbox"),
        **RAISED_LIMITS,
    )
    command = [str(PYTHON), "app.py", "serve", "--workers", str(args.workers), "--port", str(port)]
    if args.profile and shutil.which("py-spy"):
        (ROOT / "var").mkdir(exist_ok=True)
        command = [
            "py-spy",
            "record",
            "--subprocesses",
            "-o",
            str(ROOT / "var" / "bench-api-profile.svg"),
            "--",
            *command,
        ]
    process, _ = running.start("api", command, env)
    return process, f"http://127.0.0.1:{port}"


def start_floor(running: Processes, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = worker_env(BENCH_FLOOR_DATABASE_URL=args.database_url, BENCH_FLOOR_SECRET_KEY=SECRET_KEY)
    command = [
        str(PYTHON), "-m", "uvicorn", "bench.api_floor:app", "--workers", str(args.workers), "--port", str(port),
        "--no-access-log", "--timeout-worker-healthcheck", "60",
    ]  # fmt: skip
    process, _ = running.start("floor", command, env)
    return process, f"http://127.0.0.1:{port}"


async def sign_in(api: str) -> str:
    mutation = (
        "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token errors { message } } }"
    )
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.post(
            f"{api}/graphql", json={"query": mutation, "variables": {"u": MANAGER, "p": PASSWORD}}
        )
    payload = response.json()["data"]["login"]
    if not payload["token"]:
        raise RuntimeError(f"login refused: {payload['errors']}")
    return payload["token"]


# ---------------------------------------------------------------- main


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f}"


async def main(args: argparse.Namespace) -> int:
    if (refused := processes.refuse_or_none(args)) is not None:
        return refused
    wanted = [s.strip().upper() for s in args.scenarios.split(",") if s.strip()]
    if not wanted or any(s not in "ABCD" for s in wanted):
        print("--scenarios takes a comma-separated list of A, B, C, D", file=sys.stderr)
        return 2
    from core.settings import Settings, use as use_settings

    # This process's own settings (the `make` defaults and CRM_BENCH_DATABASE_URL are no settings of the app).
    for name in [name for name in os.environ if name.startswith("CRM_")]:
        del os.environ[name]
    use_settings(
        Settings(
            env="production", secret_key=SECRET_KEY, database_url=args.database_url, redis_url=args.redis_url
        ).validated()
    )
    client = redis.Redis.from_url(args.redis_url)
    client.ping()
    client.flushdb()
    print(f"redis      {args.redis_url} (flushed before and after)")
    await common.ensure_database(args.database_url)
    await dataset(args)
    await ensure_manager(args.database_url)
    chosen = await scenarios(args.database_url, args.rows, wanted, args.seed)
    folder = Path(tempfile.mkdtemp(prefix="api-bench-"))
    running = Processes(folder)
    results: dict[str, tuple[Load, Load]] = {}
    try:
        print(
            f"servers    API: app.py serve --workers {args.workers} "
            f"(CRM_ENV=production, CRM_LOG_LEVEL={args.api_log_level}); "
            f"floor: uvicorn bench.api_floor:app --workers {args.workers}; logs in {folder}"
        )
        print(
            "limits     raised for the load, still taken on every request: "
            + ", ".join(f"{k}={v}" for k, v in RAISED_LIMITS.items())
        )
        api_process, api = start_api(running, args, folder)
        floor_process, floor = start_floor(running, args)
        for process, log in running.running:  # both start at once; each is ready when every process started
            _wait_started(log, process, args.workers, timeout=180)
        token = await sign_in(api)
        print(f"signed in  as {MANAGER} (MANAGER) through the login mutation")
        for scenario in chosen.values():
            problems = await verify(scenario, api, floor, token, args.database_url, args.rows)
            if problems:
                print("VERIFICATION FAILED (no ratio is reported):\n  " + "\n  ".join(problems), file=sys.stderr)
                return 1
        checked = ", ".join(
            f"{s.name} ({min(20, len(s.api_bodies)) if not s.writes else 2} requests)" for s in chosen.values()
        )
        print(f"verified   the floor answers the API's data: {checked}")
        if args.verify_only:
            return 0
        counts, cpu = await statements(args, chosen, token)
        if not shutil.which("wrk"):
            print("load       wrk is missing (apt-get install wrk): using the asyncio client (httpx) instead, slower")
        for scenario in chosen.values():
            api_load = await load(scenario, "api", api, token, args, folder)
            floor_load = await load(scenario, "floor", floor, token, args, folder)
            results[scenario.name] = (api_load, floor_load)
            print(
                f"measured   {scenario.name} {scenario.title}: "
                f"API {api_load.rps:,.0f} req/s, floor {floor_load.rps:,.0f} req/s"
            )
        api_memory = processes.peak_memory(processes.group_pids(api_process))
        floor_memory = processes.peak_memory(processes.group_pids(floor_process))
    finally:
        running.stop_all()
        client.flushdb()
        client.close()
    return report(args, chosen, results, counts, cpu, api_memory, floor_memory)


def report(args, chosen, results, counts, cpu, api_memory, floor_memory) -> int:
    print()
    print(
        f"{args.connections} connections, {args.duration:g} s per run after {args.warmup:g} s of warm-up, "
        f"{args.workers} processes each side; load average {' / '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(
        f"peak memory (VmHWM, MiB): API {_mib(sum(api_memory.values()))} in all "
        f"(largest process {_mib(max(api_memory.values(), default=0))}), "
        f"floor {_mib(sum(floor_memory.values()))} (largest {_mib(max(floor_memory.values(), default=0))})"
    )
    header = (
        "| scenario | API req/s | API p50 / p95 / p99 ms | API SQL/req | API CPU ms/req "
        "| floor req/s | floor p50 / p95 / p99 ms | floor SQL/req | ratio | target |"
    )
    print(header)
    print("|---|---|---|---|---|---|---|---|---|---|")
    met, failed = True, []
    cpu_of = {name: f"{ms:.1f}" for name, ms in cpu.items()}
    for name, scenario in chosen.items():
        api_load, floor_load = results[name]
        ratio = api_load.rps / floor_load.rps if floor_load.rps else 0.0
        target = TARGETS.get(name)
        ok = (target is None or ratio >= target) and api_load.p99 < P99_TARGET_MS
        if target is not None:
            met = met and ok
        verdict = "—" if target is None else f"≥ {target:g}, p99 < {P99_TARGET_MS:g}: {'met' if ok else 'NOT MET'}"
        print(
            f"| {name} {scenario.title} | {api_load.rps:,.0f} "
            f"| {api_load.p50:.1f} / {api_load.p95:.1f} / {api_load.p99:.1f} "
            f"| {counts.get(name, '?')} | {cpu_of.get(name, '—')} | {floor_load.rps:,.0f} "
            f"| {floor_load.p50:.1f} / {floor_load.p95:.1f} / {floor_load.p99:.1f} | {FLOOR_STATEMENTS[name]} "
            f"| {ratio:.2f} | {verdict} |"
        )
        for side, measured in (("API", api_load), ("floor", floor_load)):
            if measured.failed:
                failed.append(f"{name} {side}: {measured.detail} of {measured.requests} requests")
    if failed:
        print("NOT A VALID MEASUREMENT, requests failed under load:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    print(
        f"API CPU ms/req: one request at a time in this process ({IN_PROCESS_REQUESTS} requests, the client's share "
        "included), steadier than req/s on a busy machine"
    )
    if args.cprofile:
        print("               (measured under cProfile here: several times the unprofiled figure)")
    print(f"targets    {'all met' if met else 'NOT MET'}")
    return 0 if met else 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common.parser(__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12", help="a Redis database it may flush")
    parser.add_argument("--workers", type=int, default=2, help="processes of the API and of the floor (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections of the load (wrk -c)")
    parser.add_argument("--duration", type=float, default=15, help="seconds of each measured run")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of the warm-up run before each (0: none)")
    parser.add_argument("--scenarios", default="A,B,C,D", help="which scenarios, e.g. A,B")
    parser.add_argument("--reseed", action="store_true", help="seed afresh even when the data set is there")
    parser.add_argument("--api-log-level", default="INFO", help="CRM_LOG_LEVEL of the API (production: INFO)")
    parser.add_argument("--verify-only", action="store_true", help="stop after checking the floor against the API")
    parser.add_argument(
        "--profile", action="store_true", help="run the API under `py-spy record` (var/bench-api-profile.svg)"
    )
    parser.add_argument(
        "--cprofile",
        type=int,
        default=0,
        metavar="N",
        help="cProfile the in-process requests of each read scenario: the N costliest functions in var/",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main(parse_args())))
    except KeyboardInterrupt:
        sys.exit(130)
