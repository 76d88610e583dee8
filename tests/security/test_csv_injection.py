"""CSV formula injection: every CSV the service writes neutralises cells a spreadsheet would run as a formula
(docs/DOMAIN.md, "Limits and protection"), through one helper, core/csv_safe.py."""

from __future__ import annotations

import ast
import csv
import io
from decimal import Decimal
from pathlib import Path

from hypothesis import given, strategies as st

from core import csv_safe
from models.audit import AuditEntry
from services import complaint_stats
from tests.jobs.helpers import EXPORT, wait_for_job

ROOT = Path(__file__).resolve().parents[2]
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
HYPERLINK = '=HYPERLINK("http://x","y")'
LOGIN = (
    """mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token errors { code } } }"""
)


@given(st.text())
def test_a_cell_is_prefixed_exactly_when_it_starts_like_a_formula(text):
    cell = csv_safe.safe_cell(text)
    if text[:1] in DANGEROUS and text:
        assert cell == "'" + text
    else:
        assert cell == text


@given(st.sampled_from(DANGEROUS), st.text())
def test_every_dangerous_start_is_neutralised_and_survives_a_round_trip(start, rest):
    out = io.StringIO()
    csv_safe.writer(out).writerow([start + rest, "plain"])
    [row] = list(csv.reader(io.StringIO(out.getvalue())))
    assert row == ["'" + start + rest, "plain"]


def test_numbers_and_empty_cells_are_left_alone():
    assert [csv_safe.safe_cell(v) for v in (None, 0, -5, 1.5, Decimal("-2.50"), True)] == [
        None,
        0,
        -5,
        1.5,
        Decimal("-2.50"),
        True,
    ]
    assert csv_safe.safe_cell("'already") == "'already" and csv_safe.safe_cell(" =x") == " =x"


def _csv_writers(path: Path) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute)
        and node.attr in ("writer", "DictWriter")
        and isinstance(node.value, ast.Name)
        and node.value.id == "csv"
    ]


def test_no_module_writes_csv_without_the_helper():
    """One place: nothing but core/csv_safe.py calls csv.writer / csv.DictWriter."""
    paths = [
        p
        for folder in ("core", "services", "tasks", "resolvers", "schema", "pages")
        for p in (ROOT / folder).rglob("*.py")
    ]
    paths += [ROOT / name for name in ("endpoints.py", "cli.py", "app.py")]
    offenders = [hit for path in paths if path != ROOT / "core" / "csv_safe.py" for hit in _csv_writers(path)]
    assert offenders == [], offenders


async def test_a_username_typed_at_login_reaches_the_audit_export_neutralised(gql, admin):
    _, token = admin
    refused = (await gql(LOGIN, {"u": HYPERLINK, "p": "whatever-1"}))["login"]
    assert refused["token"] is None and refused["errors"]
    assert await AuditEntry.filter(action="login.failed", actor_name=HYPERLINK).exists()

    payload = (await gql(EXPORT, {"input": {"filter": {"action": "login"}}}, token=token))["exportAuditLog"]
    assert payload["errors"] == []
    job = await wait_for_job(gql, token, payload["job"]["id"])
    assert job["status"] == "SUCCEEDED", job["errors"]
    rows = list(csv.reader(io.StringIO(job["result"]["csv"])))
    actors = [r[2] for r in rows[1:] if r[3] == "login.failed"]
    assert actors == ["'" + HYPERLINK]
    assert not any(cell.startswith(DANGEROUS) for row in rows for cell in row)


def test_the_regulators_report_neutralises_its_cells():
    figures = complaint_stats.Figures()
    text, count = complaint_stats.render_report([(("=1+1", "@SUM(A1)"), figures)])
    rows = list(csv.reader(io.StringIO(text.removeprefix(complaint_stats.BOM))))
    assert count == 1
    assert rows[1][0] == "'=1+1" and rows[1][2] == "'@SUM(A1)"
    assert not any(cell.startswith(DANGEROUS) for row in rows for cell in row)
