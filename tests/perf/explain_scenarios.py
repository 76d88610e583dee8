"""The SQL of each hot-path scenario (tests/perf/test_scenario_queries.py), captured in-process through the ASGI
app, and `EXPLAIN (ANALYZE, BUFFERS)` of every statement: the numbers behind docs/QUERY_PLANS.md.

    .venv/bin/python -m tests.perf.explain_scenarios --database-url postgres://postgres@127.0.0.1:5432/explain_bench \
        --out /tmp/plans-before.json

The database must be a scratch copy seeded by bench/portraits.py (and given branches, relationship managers,
handlers, follow-ups, notes, change entries and complaint events: see docs/QUERY_PLANS.md). What it leaves behind:
five staff members of its own (to sign in as), and scenario D's two requests, sent for real once (an interaction
logged for one customer, that customer's occupation and tags changed). The statements are explained afterwards,
writes inside a transaction that is rolled back; each five times on a connection without a statement cache
(custom plans, as the app's first executions get), the fastest run reported. `compare(before, after)` prints two
runs side by side as Markdown rows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app import create_app
from core.settings import Settings
from core.statement_counter import StatementCounter
from models.staff import Department, Role
from schema.base import to_global_id
from tests.conftest import RunningApp, make_staff, token_for
from tests.perf import test_scenario_queries as q

BRANCH = "BR07"
_capturing: ContextVar[bool] = ContextVar("capturing", default=False)


async def _request(http: httpx.AsyncClient, capture: StatementCounter, query: str, variables: dict, token: str) -> dict:
    capture.clear()
    flag = _capturing.set(True)
    try:
        response = await http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
    finally:
        _capturing.reset(flag)
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]


def _summary(plan: dict) -> str:
    """The plan's nodes, outermost first: type, relation/index, sort method, actual rows."""
    parts = []

    def walk(node: dict, depth: int) -> None:
        label = node["Node Type"]
        if node.get("Scan Direction") == "Backward":
            label += " Backward"
        if "Index Name" in node:
            label += f" {node['Index Name']}"
        elif "Relation Name" in node:
            label += f" {node['Relation Name']}"
        if "Sort Method" in node:
            label += f" ({node['Sort Method']})"
        label += f" rows={node.get('Actual Rows', '?')}"
        if node.get("Rows Removed by Filter"):
            label += f" filtered={node['Rows Removed by Filter']}"
        parts.append("  " * depth + label)
        for child in node.get("Plans", []):
            walk(child, depth + 1)

    walk(plan, 0)
    return "\n".join(parts)


async def _explain(url: str, sql: str, values: list) -> dict:
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1), statement_cache_size=0)
    try:
        best = None
        for _ in range(5):
            tx = conn.transaction()
            await tx.start()
            try:
                rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *values)
            finally:
                await tx.rollback()
            doc = json.loads(rows[0][0])[0]
            if best is None or doc["Execution Time"] < best["Execution Time"]:
                best = doc
        plan = best["Plan"]
        return {
            "ms": round(best["Execution Time"], 3),
            "planning_ms": round(best["Planning Time"], 3),
            "hit": plan.get("Shared Hit Blocks", 0),
            "read": plan.get("Shared Read Blocks", 0),
            "plan": _summary(plan),
        }
    finally:
        await conn.close()


def _scenarios(customer_id: int) -> list[tuple[str, str, dict, str]]:
    """(name, query, variables, role) in the order they run."""
    runs: list[tuple[str, str, dict, str]] = []
    for order in q.ORDERS:
        name = "A default" if order is None else f"A {order['field']} {order['direction']}"
        runs.append((name, q.CUSTOMER_LIST, {"first": 50, "branch": BRANCH, "order": order}, "rm"))
    runs.append(("A AUM DESC, bank-wide", q.CUSTOMER_LIST, {"first": 50, "order": q.ORDERS[1]}, "analyst"))
    rich = to_global_id("Customer", customer_id)
    runs.append(("B node 360", q.CUSTOMER_360_NODE, {"id": rich, "timeline": 20, "followUps": 10}, "admin"))
    runs.append(("C SLA worklist", q.SLA_WORKLIST, {"first": 50, "order": None}, "handler"))
    runs.append(
        (
            "C SLA worklist DUE_AT",
            q.SLA_WORKLIST,
            {"first": 50, "order": {"field": "DUE_AT", "direction": "ASC"}},
            "agent",
        )
    )
    return runs


async def main(args: argparse.Namespace) -> int:
    settings = Settings(env="test", database_url=args.database_url, log_json=False, worker_threads=1).validated()
    results: list[dict] = []
    async with RunningApp(create_app(settings)).running() as app:
        suffix = secrets.token_hex(3)
        members = {
            "rm": await make_staff(Role.RELATIONSHIP_MANAGER, branch=BRANCH, username=f"x-rm-{suffix}"),
            "analyst": await make_staff(Role.ANALYST, username=f"x-analyst-{suffix}"),
            "admin": await make_staff(Role.ADMIN, username=f"x-admin-{suffix}"),
            "handler": await make_staff(
                Role.COMPLAINT_HANDLER, department=Department.COMPLAINTS, username=f"x-handler-{suffix}"
            ),
            "agent": await make_staff(Role.SERVICE_AGENT, branch=BRANCH, username=f"x-agent-{suffix}"),
        }
        tokens = {k: await token_for(m, settings) for k, m in members.items()}
        from tortoise import Tortoise

        _, rows = await Tortoise.get_connection("default").execute_query(
            "SELECT c.id FROM customer c JOIN complaint p ON p.customer_id = c.id "
            f"WHERE c.branch = '{BRANCH}' ORDER BY c.id LIMIT 1"
        )
        customer_id = rows[0]["id"]
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 51000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            with StatementCounter(when=_capturing.get) as capture:
                runs = _scenarios(customer_id)
                later = []
                for name, query, variables, role in runs:
                    await _request(http, capture, query, variables, tokens[role])  # warm the session
                    data = await _request(http, capture, query, variables, tokens[role])
                    results.append({"scenario": name, "role": role, "statements": capture.with_values()})
                    page = data.get("customers") or data.get("complaints")
                    if (
                        page
                        and page["pageInfo"]["hasNextPage"]
                        and name in ("A AUM DESC", "A default", "C SLA worklist")
                    ):
                        later.append(
                            (
                                f"{name}, page 2 (after:)",
                                query,
                                {**variables, "after": page["pageInfo"]["endCursor"]},
                                role,
                            )
                        )
                for name, query, variables, role in later:
                    await _request(http, capture, query, variables, tokens[role])
                    results.append({"scenario": name, "role": role, "statements": capture.with_values()})
                # D: the writes, sent for real once each.
                gid = to_global_id("Customer", customer_id)
                log_input = {
                    "customerId": gid,
                    "channel": "PHONE",
                    "direction": "OUTBOUND",
                    "kind": "ADVICE",
                    "subject": "产品咨询回电",
                    "occurredAt": datetime.now(UTC).isoformat(),
                }
                await _request(http, capture, q.LOG_INTERACTION, {"input": log_input}, tokens["admin"])
                results.append({"scenario": "D logInteraction", "role": "admin", "statements": capture.with_values()})
                _, rows = await Tortoise.get_connection("default").execute_query(
                    f"SELECT version FROM customer WHERE id = {int(customer_id)}"
                )
                update = {"id": gid, "version": rows[0]["version"], "occupation": f"教师{suffix}", "tags": ["vip"]}
                await _request(http, capture, q.UPDATE_CUSTOMER, {"input": update}, tokens["admin"])
                results.append({"scenario": "D updateCustomer", "role": "admin", "statements": capture.with_values()})
    for result in results:
        explained = []
        for sql, values in result["statements"]:
            if sql.lstrip().upper().startswith(("SELECT", "UPDATE", "INSERT", "DELETE", "WITH")):
                explained.append(
                    {"sql": sql, "values": [str(v) for v in values], **await _explain(args.database_url, sql, values)}
                )
            else:
                explained.append({"sql": sql, "values": [], "ms": None, "plan": "(not explained)"})
        result["statements"] = explained
        total = sum(s["ms"] or 0 for s in explained)
        print(f"\n## {result['scenario']} ({result['role']}): {len(explained)} statements, {total:.2f} ms executed")
        for s in explained:
            print(f"- {s['ms']} ms  {s['sql'][:160]}")
            print("    " + s["plan"].replace("\n", "\n    "))
    Path(args.out).write_text(json.dumps(results, ensure_ascii=False, indent=1))
    return 0


def _key(sql: str) -> str:
    """A statement without its column list and the length of its IN lists: the same statement in two runs."""
    import re

    start = sql.find(" FROM ")
    body = sql[start:] if sql.lstrip().upper().startswith("SELECT") and start > 0 else sql
    return re.sub(r"\((?:\$\d+|\d+)(?:\s*,\s*(?:\$\d+|\d+))*\)", "(…)", body)


def _abbreviated(sql: str, width: int = 110) -> str:
    import re

    text = _key(sql)
    if sql.lstrip().upper().startswith("SELECT") and text != sql:
        text = "SELECT … " + text.lstrip()
    text = re.sub(r'"([a-z_]+)"', r"\1", text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _short_plan(plan: str) -> str:
    lines = [line.strip() for line in plan.splitlines()]
    keep = [line for line in lines if not line.startswith(("Limit", "Gather", "Aggregate", "Hash rows"))] or lines
    return " › ".join(keep[:4])


def compare(before_path: str, after_path: str, threshold_ms: float = 0.3) -> None:
    """Markdown rows: every statement that took `threshold_ms` or more in either run, before and after."""
    before = {r["scenario"]: r for r in json.loads(Path(before_path).read_text())}
    after = {r["scenario"]: r for r in json.loads(Path(after_path).read_text())}
    for name, old in before.items():
        new = after.get(name)
        if new is None:
            continue
        total_old = sum(s["ms"] or 0 for s in old["statements"])
        total_new = sum(s["ms"] or 0 for s in new["statements"])
        print(f"\n### {name}: {len(new['statements'])} statements, {total_old:.1f} → {total_new:.1f} ms\n")
        print("| statement | plan before | plan after | ms before → after |")
        print("|---|---|---|---|")
        matched = {}
        for s in new["statements"]:
            matched.setdefault(_key(s["sql"]), []).append(s)
        for s in old["statements"]:
            candidates = matched.get(_key(s["sql"])) or [None]
            t = candidates.pop(0) if candidates[0] is not None else None
            ms_new = t["ms"] if t else None
            if max(s["ms"] or 0, ms_new or 0) < threshold_ms:
                continue
            same = t is not None and _short_plan(t["plan"]) == _short_plan(s["plan"])
            print(
                f"| `{_abbreviated(s['sql'])}` | {_short_plan(s['plan'])} | "
                f"{'same' if same else (_short_plan(t['plan']) if t else '?')} | {s['ms']} → {ms_new} |"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--out", required=True)
    parsed = parser.parse_args()
    if parsed.database_url.rstrip("/").endswith("/test"):
        sys.exit("refusing the test suite's database")
    sys.exit(asyncio.run(main(parsed)))
