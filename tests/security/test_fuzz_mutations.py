"""Hostile input to every mutation, built from the schema's own input types (hypothesis, derandomised): nasty
strings, numbers at and past their bounds, ids of the right type, of other types and garbage, long lists and
nulls, sent through HTTP by an ADMIN and by a masked role. Every answer is a clean refusal or a success: never
HTTP 500, INTERNAL_SERVER_ERROR or a traceback, every error carries extensions.code, a payload carries its
UserErrors; and a mutation that reports errors wrote nothing (no partial write).

Run: .venv/bin/python -m pytest -q tests/security/test_fuzz_mutations.py -p no:cacheprovider
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
from hypothesis import strategies as st

from models.staff import Role
from services import dispatch
from tests.customers.helpers import create
from tests.security.campaign import (
    BRANCH_A,
    Strategies,
    build_world,
    collect,
    crafted_ids,
    graphql_schema,
    node_type_names,
    payload_selection,
    post,
    problems_of,
    reported_failure,
    row_counts,
)

SCHEMA = graphql_schema()
MUTATIONS = SCHEMA.mutation_type.fields
# Per mutation; each is sent twice (an ADMIN, a masked role). 4 keeps `.ci/run` under its time budget; a deeper
# campaign: CRM_TEST_FUZZ_EXAMPLES=50 .venv/bin/python -m pytest tests/security/test_fuzz_mutations.py
EXAMPLES = int(os.environ.get("CRM_TEST_FUZZ_EXAMPLES", "4"))
# The masked roles take turns: a branch-bound service agent of the world's branch, and a bank-wide analyst.
MASKED = [(Role.SERVICE_AGENT, BRANCH_A), (Role.ANALYST, None)]

# Mutations whose hostile input still breaks the server, with what breaks it (see docs/SECURITY.md, the
# hostile-input campaign). strict: the day it is fixed, the mark must go.
KNOWN_FAILURES: dict[str, str] = {}
# CRM_FUZZ_REPORT=1 (with -s): print, per mutation, how the answers split (ok, UserError codes, GraphQL codes),
# to see how deep the generated input reaches.
REPORT = os.environ.get("CRM_FUZZ_REPORT") == "1"


def _operation(name: str) -> str:
    field = MUTATIONS[name]
    declared = ", ".join(f"${arg}: {a.type}" for arg, a in field.args.items())
    passed = ", ".join(f"{arg}: ${arg}" for arg in field.args)
    head = f"mutation({declared})" if declared else "mutation"
    call = f"{name}({passed})" if passed else name
    return f"{head} {{ {call} {{ {payload_selection(field.type)} }} }}"


def _variables(strategies: Strategies, name: str):
    """The strategy of a mutation's variables: each argument from its type (usually one `input`)."""
    args = MUTATIONS[name].args
    return st.fixed_dictionaries({arg: strategies.for_type(a.type) for arg, a in args.items()})


def _params():
    for name in sorted(MUTATIONS):
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[name])] if name in KNOWN_FAILURES else []
        yield pytest.param(name, marks=marks, id=name)


@pytest.fixture
def no_workers(app):
    """Work a mutation hands to the workers stays queued: nothing writes behind a test's back, so row counts
    before and after a refused mutation compare exactly."""
    queue = app.runtime.queue
    original = queue.send
    queue.send = lambda *args, **kwargs: None
    dispatch.bind(lambda *args: None)
    yield
    queue.send = original
    dispatch.bind(original)


@pytest.mark.parametrize("name", list(_params()))
async def test_hostile_input(name, gql, admin, staff_factory, no_workers):
    world = await build_world(gql, admin[1])
    # The callers are not in the world: a fuzzed updateStaff may deactivate the world's admin, not them.
    callers = [(await staff_factory(Role.ADMIN))[1]]
    callers += [(await staff_factory(role, branch=branch))[1] for role, branch in MASKED]
    strategies = Strategies(SCHEMA, world.all_ids(), crafted_ids(node_type_names(SCHEMA)))
    examples = collect(_variables(strategies, name), EXAMPLES if MUTATIONS[name].args else 1)
    query = _operation(name)
    wrong = []
    outcomes: Counter[str] = Counter()
    for i, example in enumerate(examples):
        for token in (callers[0], callers[1 + i % len(MASKED)]):
            before = await row_counts()
            response = await post(gql.http, query, example, token)
            problems = problems_of(response, name)
            if not problems and reported_failure(response, name):
                after = await row_counts()
                changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
                if changed:
                    problems.append(f"reported errors but wrote rows {changed}")
            if REPORT:
                outcomes[_outcome(response, name)] += 1
            if problems:
                wrong.append(f"{name} input={_short(example)}: {problems}; answer={response.text[:600]}")
    if REPORT:
        print(f"\n{name}: {len(examples)} inputs, {dict(outcomes)}")
    assert wrong == [], "\n".join(wrong)


def _outcome(response, name: str) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    codes = [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]
    if codes:
        return "/".join(sorted(set(codes)))
    payload = (body.get("data") or {}).get(name) or {}
    user = sorted({e["code"] for e in payload.get("errors") or []})
    return "user:" + "/".join(user) if user else "ok"


def _short(value, limit: int = 400) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


# Text inputs of each kind, and searches, with `{}` where the unencodable text goes; the rest is valid.
TEXT_CASES = {
    "createCustomer": ("mutation($v: CreateCustomerInput!) { createCustomer(input: $v) { errors { code } } }",
                       lambda c, x: {"kind": "INDIVIDUAL", "name": f"王{x}芳"}),
    "addNote": ("mutation($v: AddNoteInput!) { addNote(input: $v) { errors { code } } }",
                lambda c, x: {"subjectId": c, "body": f"a{x}b"}),
    "fileComplaint": ("mutation($v: FileComplaintInput!) { fileComplaint(input: $v) { errors { code } } }",
                      lambda c, x: {"customerId": c, "channel": "PHONE", "summary": x, "description": "d"}),
    "createSegment": ("mutation($v: CreateSegmentInput!) { createSegment(input: $v) { errors { code } } }",
                      lambda c, x: {"name": f"seg{x}", "filter": {}}),
    "submitSurveyResponse": ("""mutation($v: SubmitSurveyResponseInput!) { submitSurveyResponse(input: $v) {
                               errors { code } } }""", lambda c, x: {"token": x, "answers": []}),
    "customers(search)": ("query($v: String!) { customers(filter: {search: $v}) { totalCount } }",
                          lambda c, x: f"张{x}"),
    "complaints(search)": ("query($v: String!) { complaints(filter: {search: $v}) { totalCount } }",
                           lambda c, x: x),
}  # fmt: skip
# Text no database stores: NUL (PostgreSQL's text refuses it) and a lone surrogate (no UTF-8 at all).
UNENCODABLE = {"nul": "\x00", "surrogate": "\ud800"}


@pytest.mark.parametrize("case", list(TEXT_CASES))
@pytest.mark.parametrize("kind", list(UNENCODABLE))
async def test_unencodable_text(kind, case, gql, admin):
    """Text the database cannot hold (NUL) or that is no UTF-8 at all (a lone surrogate) is refused before
    execution with BAD_USER_INPUT on every database, never a 500."""
    customer = await create(gql, admin[1])
    query, make = TEXT_CASES[case]
    response = await post(gql.http, query, {"v": make(customer["id"], UNENCODABLE[kind])}, admin[1])
    assert problems_of(response) == [], response.text[:600]
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["BAD_USER_INPUT"]
