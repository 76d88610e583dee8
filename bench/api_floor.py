"""The FLOOR of the API read-path benchmark (bench/api.py): a bare Starlette app with one POST endpoint per
scenario that answers THE SAME JSON body as the GraphQL API for the same data, from hand-written asyncpg
statements (one per relation, `= ANY($1)` for the children of a page, a window function for the first N per
customer, one UNION ALL for the timeline), serialised with orjson. Each request checks the bearer token the way
the API does (one indexed lookup of its keyed hash), so the floor pays what any authenticated API must.

    BENCH_FLOOR_DATABASE_URL=postgres://... BENCH_FLOOR_SECRET_KEY=... \\
        .venv/bin/python -m uvicorn bench.api_floor:app --workers 2 --port 8171

What it leaves out on purpose: GraphQL parsing, validation and execution, the ORM, the middleware (request ids,
logs, metrics), rate limits and the role checks beyond "a live token of an active staff member". The scenarios'
selections avoid personal-data fields (they would be audited as customer.pii_read), so no masking is needed:
the bench signs in as a MANAGER (bank-wide, sees free text unmasked).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

try:  # the floor serialises with orjson when installed (pip install orjson; not a dependency of the project)
    import orjson

    SERIALISER = "orjson"
except ImportError:  # the standard library, with orjson's names
    import json as _json

    class orjson:
        @staticmethod
        def dumps(value) -> bytes:
            return _json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()

        loads = staticmethod(_json.loads)

    SERIALISER = "json (orjson is not installed)"
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

OPEN = ("RECEIVED", "ACKNOWLEDGED", "IN_PROGRESS", "ESCALATED", "REOPENED")
RESOLVED = ("RESOLVED", "CLOSED")
AT_RISK_WITHIN = timedelta(days=3)
TIER_FLOORS = (
    ("PRIVATE_BANKING", Decimal(6_000_000)),
    ("WEALTH", Decimal(500_000)),
    ("AFFLUENT", Decimal(50_000)),
    ("MASS", Decimal(0)),
)
# The timeline's kinds in their order at equal times (services.timeline sorts its sources by kind).
KINDS = (
    "CHANGE",
    "COMPLAINT",
    "COMPLAINT_EVENT",
    "FOLLOW_UP",
    "HOLDING",
    "INTERACTION",
    "NOTE",
    "SURVEY_INVITATION",
    "SURVEY_RESPONSE",
)
RANK = {kind: rank for rank, kind in enumerate(KINDS)}
LINKED = ("PENDING", "SENT", "DELIVERY_FAILED")

AUTH_SQL = """
SELECT s.id, s.username FROM staff_token t JOIN staff s ON s.id = t.staff_id
WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > now() AND s.active
"""


def gid(type_name: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


def pk_of(global_id: str, type_name: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
    except ValueError:
        return None
    name, _, pk = raw.partition(":")
    return int(pk) if name == type_name and pk.isascii() and pk.isdigit() else None


def tier(aum: Decimal) -> str:
    return next(name for name, floor in TIER_FLOORS if aum >= floor)


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def money(value: Decimal) -> str:
    return str(value)


def short(text: str | None, limit: int = 200) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sla_state(status: str, due_at: datetime, resolved_at, withdrawn_at, now: datetime) -> str:
    if status in OPEN:
        if now > due_at:
            return "BREACHED"
        return "AT_RISK" if due_at - now <= AT_RISK_WITHIN else "ON_TRACK"
    if status == "WITHDRAWN":
        return "BREACHED" if withdrawn_at is not None and withdrawn_at > due_at else "ON_TRACK"
    return "MET" if resolved_at is not None and resolved_at <= due_at else "MISSED"


def mask_account(value: str) -> str:
    compact = value.replace(" ", "").replace("-", "")
    keep = min(4, len(compact) // 2)
    return "****" + compact[len(compact) - keep :]


def staff_json(row) -> dict | None:
    return None if row is None else {"id": gid("Staff", row["id"]), "displayName": row["display_name"]}


def answer(data: dict) -> Response:
    return Response(orjson.dumps({"data": data}), media_type="application/json")


def unauthenticated() -> Response:
    body = {"data": None, "errors": [{"message": "Sign in first", "extensions": {"code": "UNAUTHENTICATED"}}]}
    return Response(orjson.dumps(body), status_code=401, media_type="application/json")


class Floor:
    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None
        self.secret = b""

    async def caller(self, conn: asyncpg.Connection, request: Request):
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return None
        token_hash = hmac.new(self.secret, header[7:].strip().encode(), hashlib.sha256).hexdigest()
        return await conn.fetchrow(AUTH_SQL, token_hash)

    # ------------------------------------------------------------ A: a branch's customers by AUM

    async def customers(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        async with self.pool.acquire() as conn:
            if await self.caller(conn, request) is None:
                return unauthenticated()
            branch = body["branch"]
            total = await conn.fetchval("SELECT count(*) FROM customer WHERE branch = $1", branch)
            rows = await conn.fetch(
                "SELECT id, customer_no, name, status, branch, aum, version, relationship_manager_id FROM customer "
                "WHERE branch = $1 ORDER BY aum DESC, id DESC LIMIT 51",
                branch,
            )
            more, rows = len(rows) > 50, rows[:50]
            ids = [r["id"] for r in rows]
            holdings = await conn.fetch(
                "SELECT id, customer_id, product, balance, status, opened_at FROM product_holding "
                "WHERE customer_id = ANY($1) ORDER BY opened_at, id",
                ids,
            )
            portraits = await conn.fetch(
                "SELECT customer_id, value_tier, churn_risk FROM portrait WHERE customer_id = ANY($1)", ids
            )
            rms = await conn.fetch(
                "SELECT id, display_name FROM staff WHERE id = ANY($1)",
                list({r["relationship_manager_id"] for r in rows if r["relationship_manager_id"]}),
            )
            complaints = await conn.fetch(
                "SELECT id, customer_id, reference_no, status, due_at, resolved_at, withdrawn_at, received_at "
                "FROM (SELECT *, row_number() OVER (PARTITION BY customer_id ORDER BY received_at DESC, id DESC) AS n "
                "FROM complaint WHERE customer_id = ANY($1)) AS c WHERE n <= 3 ORDER BY customer_id, n",
                ids,
            )
        now = datetime.now(UTC)
        by_customer: dict[int, list] = {}
        for h in holdings:
            by_customer.setdefault(h["customer_id"], []).append(
                {
                    "id": gid("ProductHolding", h["id"]),
                    "product": h["product"],
                    "balance": money(h["balance"]),
                    "status": h["status"],
                    "openedAt": h["opened_at"].isoformat(),
                }
            )
        portrait = {p["customer_id"]: {"valueTier": p["value_tier"], "churnRisk": p["churn_risk"]} for p in portraits}
        staff = {s["id"]: staff_json(s) for s in rms}
        top: dict[int, list] = {}
        for c in complaints:
            top.setdefault(c["customer_id"], []).append(
                {
                    "node": {
                        "id": gid("Complaint", c["id"]),
                        "referenceNo": c["reference_no"],
                        "status": c["status"],
                        "slaState": sla_state(c["status"], c["due_at"], c["resolved_at"], c["withdrawn_at"], now),
                        "receivedAt": iso(c["received_at"]),
                    }
                }
            )
        edges = [
            {
                "node": {
                    "id": gid("Customer", r["id"]),
                    "customerNo": r["customer_no"],
                    "name": r["name"],
                    "status": r["status"],
                    "branch": r["branch"],
                    "aum": money(r["aum"]),
                    "valueTier": tier(r["aum"]),
                    "version": r["version"],
                    "portrait": portrait.get(r["id"]),
                    "relationshipManager": staff.get(r["relationship_manager_id"]),
                    "holdings": by_customer.get(r["id"], []),
                    "complaints": {"edges": top.get(r["id"], [])},
                }
            }
            for r in rows
        ]
        return answer({"customers": {"totalCount": total, "pageInfo": {"hasNextPage": more}, "edges": edges}})

    # ------------------------------------------------------------ B: one customer's 360 view

    TIMELINE_SQL = """
    (SELECT 'CHANGE' AS kind, id::bigint AS id, at, field AS a, NULL::text AS b, NULL::text AS c, NULL::text AS d,
            NULL::timestamptz AS e, NULL::float8 AS f
     FROM change_entry WHERE customer_id = $1 ORDER BY at DESC, id DESC LIMIT $2)
    UNION ALL
    (SELECT 'COMPLAINT', id, received_at, reference_no, summary, category, reason, NULL, NULL
     FROM complaint WHERE customer_id = $1 ORDER BY received_at DESC, id DESC LIMIT $2)
    UNION ALL
    (SELECT 'COMPLAINT_EVENT', e.id, e.at, e.type, e.message, NULL, NULL, NULL, NULL
     FROM complaint_event e JOIN complaint c ON c.id = e.complaint_id WHERE c.customer_id = $1
     ORDER BY e.at DESC, e.id DESC LIMIT $2)
    UNION ALL
    (SELECT 'FOLLOW_UP', id, created_at, title, description, NULL, NULL, NULL, NULL
     FROM follow_up WHERE customer_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2)
    UNION ALL
    (SELECT 'HOLDING', id, created_at, product, account_no, status, NULL, NULL, NULL
     FROM product_holding WHERE customer_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2)
    UNION ALL
    (SELECT 'INTERACTION', id, occurred_at, subject, outcome, content, NULL, NULL, NULL
     FROM interaction WHERE customer_id = $1 ORDER BY occurred_at DESC, id DESC LIMIT $2)
    UNION ALL
    (SELECT 'NOTE', id, created_at, visibility, body, NULL, NULL, NULL, NULL
     FROM note WHERE customer_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2)
    UNION ALL
    (SELECT 'SURVEY_INVITATION', id, created_at, channel, status, suppressed_reason, NULL, expires_at, NULL
     FROM survey_invitation WHERE customer_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2)
    UNION ALL
    (SELECT 'SURVEY_RESPONSE', id, submitted_at, nps_score::text, nps_category, comment, NULL, NULL, csat_score
     FROM survey_response WHERE customer_id = $1 ORDER BY submitted_at DESC, id DESC LIMIT $2)
    """

    @staticmethod
    def timeline_item(row, now: datetime) -> dict:
        kind, a, b, c, d = row["kind"], row["a"], row["b"], row["c"], row["d"]
        if kind == "CHANGE":
            title, detail = f"{a} changed", None
        elif kind == "COMPLAINT":
            title, detail = f"{a} {b}", f"{c} / {d}"
        elif kind == "COMPLAINT_EVENT":
            title, detail = f"Complaint {a.lower().replace('_', ' ')}", short(b)
        elif kind == "FOLLOW_UP":
            title, detail = a, short(b)
        elif kind == "HOLDING":
            title, detail = f"{a} account {mask_account(b)}", c
        elif kind == "INTERACTION":
            title, detail = a, short(b or c)
        elif kind == "NOTE":
            title, detail = f"Note ({a.lower()})", short(b)
        elif kind == "SURVEY_INVITATION":
            status = "EXPIRED" if b in LINKED and row["e"] <= now else b
            title, detail = f"Survey invitation by {a}", status + (f": {c}" if c else "")
        else:
            scores = []
            if a is not None:
                scores.append(f"NPS {a} ({b or ''})")
            if row["f"] is not None:
                scores.append(f"CSAT {row['f']:g}")
            title, detail = "Survey answered" + (f": {', '.join(scores)}" if scores else ""), short(c)
        return {"node": {"kind": kind, "at": iso(row["at"]), "title": title, "detail": detail}}

    async def customer(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        customer_id = pk_of(body["id"], "Customer")
        async with self.pool.acquire() as conn:
            if await self.caller(conn, request) is None:
                return unauthenticated()
            c = await conn.fetchrow(
                "SELECT id, customer_no, name, kind, status, kyc_status, branch, risk_level, aum, debt, completeness, "
                "version, created_at, updated_at, relationship_manager_id, portrait_stale_since "
                "FROM customer WHERE id = $1",
                customer_id,
            )
            if c is None:
                return answer({"customer": None})
            rm = await conn.fetchrow("SELECT id, display_name FROM staff WHERE id = $1", c["relationship_manager_id"])
            holdings = await conn.fetch(
                "SELECT id, product, balance, currency, status, opened_at, closed_at FROM product_holding "
                "WHERE customer_id = $1 ORDER BY opened_at, id",
                customer_id,
            )
            p = await conn.fetchrow(
                "SELECT value_tier, aum, churn_risk, churn_drivers, lifecycle_stage FROM portrait "
                "WHERE customer_id = $1",
                customer_id,
            )
            timeline = await conn.fetch(self.TIMELINE_SQL, customer_id, 21)
            follow_ups = await conn.fetch(
                "SELECT f.id, f.title, f.status, f.priority, f.due_at, s.id AS staff_id, s.display_name "
                "FROM follow_up f LEFT JOIN staff s ON s.id = f.assignee_id WHERE f.customer_id = $1 "
                "ORDER BY f.created_at DESC, f.id DESC LIMIT 11",
                customer_id,
            )
            follow_up_count = await conn.fetchval("SELECT count(*) FROM follow_up WHERE customer_id = $1", customer_id)
        now = datetime.now(UTC)
        items = sorted(timeline, key=lambda r: (r["at"], RANK[r["kind"]], r["id"]), reverse=True)
        portrait = None
        if p is not None:
            portrait = {
                "valueTier": p["value_tier"],
                "aum": money(p["aum"]),
                "churnRisk": p["churn_risk"],
                "churnDrivers": orjson.loads(p["churn_drivers"]),
                "lifecycleStage": p["lifecycle_stage"],
                "stale": c["portrait_stale_since"] is not None,
            }
        data = {
            "id": gid("Customer", c["id"]),
            "customerNo": c["customer_no"],
            "name": c["name"],
            "kind": c["kind"],
            "status": c["status"],
            "kycStatus": c["kyc_status"],
            "branch": c["branch"],
            "riskLevel": c["risk_level"],
            "aum": money(c["aum"]),
            "debt": money(c["debt"]),
            "valueTier": tier(c["aum"]),
            "completeness": c["completeness"],
            "version": c["version"],
            "createdAt": iso(c["created_at"]),
            "updatedAt": iso(c["updated_at"]),
            "relationshipManager": staff_json(rm),
            "holdings": [
                {
                    "id": gid("ProductHolding", h["id"]),
                    "product": h["product"],
                    "balance": money(h["balance"]),
                    "currency": h["currency"],
                    "status": h["status"],
                    "openedAt": h["opened_at"].isoformat(),
                    "closedAt": None if h["closed_at"] is None else h["closed_at"].isoformat(),
                }
                for h in holdings
            ],
            "portrait": portrait,
            "timeline": {
                "pageInfo": {"hasNextPage": len(items) > 20},
                "edges": [self.timeline_item(r, now) for r in items[:20]],
            },
            "followUps": {
                "totalCount": follow_up_count,
                "edges": [
                    {
                        "node": {
                            "id": gid("FollowUp", f["id"]),
                            "title": f["title"],
                            "status": f["status"],
                            "priority": f["priority"],
                            "dueAt": iso(f["due_at"]),
                            "overdue": f["status"] == "OPEN" and f["due_at"] is not None and f["due_at"] < now,
                            "assignee": None
                            if f["staff_id"] is None
                            else {"id": gid("Staff", f["staff_id"]), "displayName": f["display_name"]},
                        }
                    }
                    for f in follow_ups[:10]
                ],
            },
        }
        return answer({"customer": data})

    # ------------------------------------------------------------ C: complaints at risk or breached

    async def complaints(self, request: Request) -> Response:
        async with self.pool.acquire() as conn:
            if await self.caller(conn, request) is None:
                return unauthenticated()
            now = datetime.now(UTC)
            # AT_RISK or BREACHED (services.complaints.sla_condition): open and due within 3 days or past due, or
            # withdrawn after the deadline.
            where = "(status = ANY($1) AND due_at <= $2) OR (status = 'WITHDRAWN' AND withdrawn_at > due_at)"
            args = (list(OPEN), now + AT_RISK_WITHIN)
            total = await conn.fetchval(f"SELECT count(*) FROM complaint WHERE {where}", *args)
            rows = await conn.fetch(
                "SELECT id, reference_no, status, priority, due_at, resolved_at, withdrawn_at, received_at, summary, "
                f"customer_id, handler_id FROM complaint WHERE {where} ORDER BY received_at DESC, id DESC LIMIT 51",
                *args,
            )
            more, rows = len(rows) > 50, rows[:50]
            customers = await conn.fetch(
                "SELECT id, customer_no, name, branch FROM customer WHERE id = ANY($1)",
                list({r["customer_id"] for r in rows}),
            )
            handlers = await conn.fetch(
                "SELECT id, display_name FROM staff WHERE id = ANY($1)",
                list({r["handler_id"] for r in rows if r["handler_id"]}),
            )
        customer = {
            c["id"]: {
                "id": gid("Customer", c["id"]),
                "customerNo": c["customer_no"],
                "name": c["name"],
                "branch": c["branch"],
            }
            for c in customers
        }
        staff = {s["id"]: staff_json(s) for s in handlers}
        edges = [
            {
                "node": {
                    "id": gid("Complaint", r["id"]),
                    "referenceNo": r["reference_no"],
                    "status": r["status"],
                    "priority": r["priority"],
                    "slaState": sla_state(r["status"], r["due_at"], r["resolved_at"], r["withdrawn_at"], now),
                    "receivedAt": iso(r["received_at"]),
                    "dueAt": iso(r["due_at"]),
                    "summary": r["summary"],
                    "customer": customer[r["customer_id"]],
                    "handler": staff.get(r["handler_id"]),
                }
            }
            for r in rows
        ]
        return answer({"complaints": {"totalCount": total, "pageInfo": {"hasNextPage": more}, "edges": edges}})

    # ------------------------------------------------------------ D: the write mix

    async def _audit(self, conn, staff, action: str, subject_type: str, subject_id: int, fields: list[str], ip: str):
        await conn.execute(
            "INSERT INTO audit_entry (actor_id, actor_name, action, subject_type, subject_id, detail, request_id, ip, "
            "at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())",
            staff["id"],
            staff["username"],
            action,
            subject_type,
            str(subject_id),
            orjson.dumps({"input": sorted(fields)}).decode(),
            uuid.uuid4().hex,
            ip,
        )

    async def write(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        ip = request.client.host if request.client else None
        async with self.pool.acquire() as conn:
            staff = await self.caller(conn, request)
            if staff is None:
                return unauthenticated()
            if body["op"] == "log":
                return await self._log(conn, staff, body, ip)
            return await self._update(conn, staff, body, ip)

    async def _log(self, conn, staff, body: dict, ip: str) -> Response:
        customer_id = pk_of(body["customerId"], "Customer")
        async with conn.transaction():
            status = await conn.fetchval("SELECT status FROM customer WHERE id = $1", customer_id)
            if status is None or status == "ERASED":
                return answer({"logInteraction": {"interaction": None, "errors": [{"message": "Customer not found"}]}})
            row = await conn.fetchrow(
                "INSERT INTO interaction (customer_id, channel, direction, kind, status, subject, content, staff_id, "
                "occurred_at, resolved_at, created_at) "
                "VALUES ($1, $2, $3, $4, 'RESOLVED', $5, $6, $7, now(), now(), now()) "
                "RETURNING id, kind, status, subject",
                customer_id,
                body["channel"],
                body["direction"],
                body["kind"],
                body["subject"],
                body.get("content"),
                staff["id"],
            )
            await conn.execute(
                "UPDATE customer SET portrait_stale_since = COALESCE(portrait_stale_since, now()) WHERE id = $1",
                customer_id,
            )
            fields = ["customerId", "channel", "direction", "kind", "subject", "content"]
            await self._audit(conn, staff, "interaction.log", "Interaction", row["id"], fields, ip)
        interaction = {"id": gid("Interaction", row["id"]), "kind": row["kind"], "status": row["status"]}
        return answer({"logInteraction": {"interaction": {**interaction, "subject": row["subject"]}, "errors": []}})

    async def _update(self, conn, staff, body: dict, ip: str) -> Response:
        customer_id = pk_of(body["id"], "Customer")
        async with conn.transaction():
            row = await conn.fetchrow(
                "WITH old AS (SELECT id, occupation FROM customer WHERE id = $1 AND version = $2 FOR UPDATE) "
                "UPDATE customer c SET occupation = $3, version = c.version + 1 FROM old WHERE c.id = old.id "
                "RETURNING old.occupation AS before, c.version, c.occupation",
                customer_id,
                body["version"],
                body["occupation"],
            )
            if row is None:
                error = {"message": f"The customer changed since version {body['version']}; reload it"}
                return answer({"updateCustomer": {"customer": None, "errors": [error]}})
            await conn.execute(
                "INSERT INTO change_entry (customer_id, field, old_value, new_value, actor_id, at) "
                "VALUES ($1, 'occupation', $2, $3, $4, now())",
                customer_id,
                row["before"],
                row["occupation"],
                staff["id"],
            )
            await self._audit(
                conn, staff, "customer.update", "Customer", customer_id, ["id", "version", "occupation"], ip
            )
        customer = {"id": body["id"], "version": row["version"], "occupation": row["occupation"]}
        return answer({"updateCustomer": {"customer": customer, "errors": []}})


floor = Floor()


@asynccontextmanager
async def lifespan(app: Starlette):
    # The same pool bounds as Tortoise's asyncpg client gives the API (minsize 1, maxsize 5) per process.
    floor.secret = os.environ["BENCH_FLOOR_SECRET_KEY"].encode()
    url = os.environ["BENCH_FLOOR_DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    floor.pool = await asyncpg.create_pool(url, min_size=1, max_size=5)
    try:
        yield
    finally:
        await floor.pool.close()


app = Starlette(
    routes=[
        Route("/a", floor.customers, methods=["POST"]),
        Route("/b", floor.customer, methods=["POST"]),
        Route("/c", floor.complaints, methods=["POST"]),
        Route("/d", floor.write, methods=["POST"]),
    ],
    lifespan=lifespan,
)
