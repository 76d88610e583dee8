"""Shared pieces of the hostile-input campaign (tests/security/test_fuzz_mutations.py, test_idor.py,
test_tokens.py): a small world of records of every Node type in one branch, hypothesis strategies built from
the live schema's input types, and the checks every hostile response must pass.

Named `campaign.py` (not conftest.py) so that it never clashes with other fixtures of tests/security.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import httpx
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    get_named_type,
)
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from tortoise import Tortoise

from models.audit import AuditEntry
from models.notifications import Notification
from models.surveys import SurveyInvitation, SurveyResponse
from schema.base import from_global_id, to_global_id
from schema.build import build_schema
from tests.customers.helpers import resident_id
from tests.surveys.helpers import NPS_QUESTIONS, TOKEN_IN_LINK

BRANCH_A, BRANCH_B = "A", "B"

# ------------------------------------------------------------------------------------------------ the schema


@cache
def graphql_schema() -> GraphQLSchema:
    """The schema the server runs (not schema.graphql, which may lag a change in the working tree)."""
    return build_schema()._schema


def node_type_names(schema: GraphQLSchema | None = None) -> list[str]:
    schema = schema or graphql_schema()
    return sorted(t.name for t in schema.get_possible_types(schema.get_type("Node")))


def payload_selection(type_: Any, depth: int = 0) -> str:
    """A selection of a mutation payload: its scalars, and the scalars of the objects it holds (one level),
    so that the output of hostile data is serialised too."""
    named = get_named_type(type_)
    if not isinstance(named, GraphQLObjectType):
        return ""
    parts = []
    for name, fld in named.fields.items():
        if any(isinstance(a.type, GraphQLNonNull) for a in fld.args.values()):
            continue
        inner = get_named_type(fld.type)
        if isinstance(inner, GraphQLScalarType | GraphQLEnumType):
            parts.append(name)
        elif isinstance(inner, GraphQLObjectType) and depth == 0 and not inner.name.endswith("Connection"):
            sub = payload_selection(inner, depth + 1)
            if sub:
                parts.append(f"{name} {{ {sub} }}")
    return " ".join(parts)


# ------------------------------------------------------------------------------------------------ strategies

# Strings that break things: empty, blank, control characters, lone surrogates, SQL and LIKE metacharacters, CSV
# formula prefixes, right-to-left and combining marks, very long values. Left out here: NUL, which PostgreSQL
# refuses in text, and lone surrogates (valid escaped in JSON, not encodable as UTF-8): both are a 500 today, in
# every text input (test_fuzz_mutations.test_unencodable_text), and would fail every mutation's case.
NASTY_STRINGS = [
    "",
    " ",
    "\t\n\r",
    "\x1b[31m\x07",
    "'; DROP TABLE customer; --",
    "' OR '1'='1",
    '"; SELECT pg_sleep(5); --',
    "%",
    "_",
    "%_%\\",
    "\\",
    "=1+1",
    "=cmd|' /C calc'!A0",
    "+86 138 1234 5678",
    "-2",
    "@SUM(A1:A9)",
    "\t=1",
    "\r=1",
    "王芳\u202e\u0301\u200b",
    "😀" * 50,
    "ﷺ" * 200,
    "𝕏" * 1000,
    "A" * 10_000,
    "x" * 300_000,  # large, still within the 1 MiB request limit
    "张" * 60_000,  # JSON-escaped: 360 kB
    "${jndi:ldap://x/a}",
    "{{7*7}}",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "null",
    "NaN",
]


# A global id's encoding: URL-safe base64 without padding.
def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# Keys of global ids for no row: past the column's range (2**31 on PostgreSQL, beyond 64 bits), negative,
# fractional, digits that str.isdigit() accepts and int() does not ("²") or reads as another number ("١٢").
CRAFTED_KEYS = [
    "999999", "0", "-1", "1.5", "1e3", "2147483648", "99999999999999999999999", "²", "١٢", "1 ", " 1", "1\x00", "",
]  # fmt: skip


def crafted_ids(type_names: list[str]) -> list[str]:
    # (NUL is not an id: like any text no database stores, it is refused before execution, BAD_USER_INPUT.)
    ids = ["", " ", "x", "null", "0", "-1", "%%%", "a" * 5000, "====", "Q3VzdG9tZXI6MQ==", "😀"]
    for name in [*type_names, "Nope", ""]:
        ids += [_b64(f"{name}:{pk}") for pk in CRAFTED_KEYS]
    ids.append(_b64("Customer:1:2"))
    ids.append(base64.b64encode(b"Customer:1").decode())  # standard base64 with padding
    return ids


INTS = st.one_of(
    st.sampled_from([0, 1, -1, 2, 7, 30, 60, 61, 99, 100, 101, 1000, 1001, 2**31 - 1, -(2**31)]),
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
)
FLOATS = st.one_of(
    st.sampled_from([0.0, -0.0, 0.5, 1.0, -1.0, 5.0, 10.0, 11.0, 1e308, -1e308, 1e-300]),
    st.floats(allow_nan=False, allow_infinity=False),
)
DECIMAL_TEXTS = [
    "0", "-0", "0.00", "-1", "1", "1e3", "1E+999999", "-1e-999999", "NaN", "-NaN", "sNaN", "Infinity", "-Infinity",
    "0.0000000001", "99999999999999999999999999999999.99", "1,000", "", " 1", "abc", "1_000",
]  # fmt: skip
DECIMALS = st.one_of(
    st.sampled_from(DECIMAL_TEXTS),
    st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
)
DATES = st.one_of(
    st.sampled_from(["2026-02-30", "0001-01-01", "9999-12-31", "2026-13-01", "", "today", "2026-1-1", "20260101"]),
    st.dates().map(str),
)
DATETIME_TEXTS = [
    "2026-01-01T00:00:00Z", "2026-01-01T00:00:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59Z", "2026-02-30T00:00:00Z", "", "now", "1e10",
]  # fmt: skip
DATETIMES = st.one_of(st.sampled_from(DATETIME_TEXTS), st.datetimes().map(lambda d: d.isoformat() + "+08:00"))
JSONS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


def strings() -> st.SearchStrategy[str]:
    text = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=40)
    return st.one_of(st.sampled_from(NASTY_STRINGS), text)


# ID fields that name a staff member or a customer by their role in the input.
STAFF_FIELDS = {"handler", "assignee", "approvedBy", "relationshipManager", "actor", "staff"}
CUSTOMER_FIELDS = {"survivor", "duplicate", "customer"}


@dataclass
class Strategies:
    """Hypothesis strategies for the inputs of a schema, given the world's real ids."""

    schema: GraphQLSchema
    real_ids: list[str]
    fake_ids: list[str] = field(default_factory=list)

    def ids(self, hint: str | None = None) -> st.SearchStrategy[str]:
        """Ids of the type the field wants (`hint`) most of the time, so that input gets past the lookup;
        else ids of any other type, crafted ids and nasty strings."""
        choices = [st.sampled_from(self.fake_ids or ["x"]), strings()]
        if self.real_ids:
            choices.insert(0, st.sampled_from(self.real_ids))
        wanted = [i for i in self.real_ids if hint and from_global_id(i)[0] == hint]
        if wanted:
            return st.one_of(st.sampled_from(wanted), st.sampled_from(wanted), st.sampled_from(wanted), *choices)
        return st.one_of(*choices)

    def hint(self, input_name: str, field_name: str) -> str | None:
        """The Node type an ID field of an input names, guessed from the names: `customerId` -> Customer,
        `handlerId` -> Staff, `id` of `EscalateComplaintInput` -> Complaint."""
        types = node_type_names(self.schema)
        base = field_name.removesuffix("Ids").removesuffix("Id")
        if base in STAFF_FIELDS:
            return "Staff"
        if base in CUSTOMER_FIELDS:
            return "Customer"
        if base == "template":
            return "SurveyTemplate"
        for name in sorted(types, key=len, reverse=True):
            if base.lower() == name.lower():
                return name
        if field_name == "id":
            found = [name for name in types if name in input_name]
            if found:
                return max(found, key=len)
            return "Segment" if input_name == "DeleteInput" else None
        if base == "subject":
            return "Customer"
        return None

    def for_type(self, type_: Any, depth: int = 0, hint: str | None = None) -> st.SearchStrategy[Any]:
        if isinstance(type_, GraphQLNonNull):
            return self._for_nullable(type_.of_type, depth, hint)
        return st.one_of(st.none(), self._for_nullable(type_, depth, hint))

    def _for_nullable(self, type_: Any, depth: int, hint: str | None = None) -> st.SearchStrategy[Any]:
        if isinstance(type_, GraphQLList):
            inner = self.for_type(type_.of_type, depth + 1, hint)
            choices = [st.just([]), st.lists(inner, min_size=1, max_size=4)]
            named = get_named_type(type_)
            if isinstance(named, GraphQLEnumType | GraphQLScalarType) and named.name != "Upload":
                # Long lists of small items: past every "at most" of the API (1000 customers, 100 ids).
                small = self.small(named)
                choices.append(
                    st.lists(small, min_size=101, max_size=101) | st.lists(small, min_size=1001, max_size=1001)
                )
            return st.one_of(*choices)
        if isinstance(type_, GraphQLEnumType):
            return st.sampled_from(list(type_.values))
        if isinstance(type_, GraphQLInputObjectType):
            return self.input_object(type_, depth)
        if type_.name == "ID":
            return self.ids(hint)
        return self.scalar(type_.name)

    def small(self, named: Any) -> st.SearchStrategy[Any]:
        """Short values of a scalar or enum, for long lists that stay within the request limit."""
        if isinstance(named, GraphQLEnumType):
            return st.sampled_from(list(named.values))
        if named.name == "ID":
            return st.sampled_from(self.real_ids or self.fake_ids or ["x"])
        if named.name == "String":
            return st.sampled_from(["", "%", "x", "王", "=1", "\x7f"])
        return self.scalar(named.name)

    def scalar(self, name: str) -> st.SearchStrategy[Any]:
        return {
            "String": strings(),
            "ID": self.ids(),
            "Int": INTS,
            "Float": FLOATS,
            "Boolean": st.booleans(),
            "Decimal": DECIMALS,
            "Date": DATES,
            "DateTime": DATETIMES,
            "JSON": JSONS,
            "Upload": UPLOADS,
        }.get(name, strings())

    def input_object(self, type_: GraphQLInputObjectType, depth: int = 0) -> st.SearchStrategy[dict]:
        if depth > 3:
            return st.just({})
        required, optional = {}, {}
        for name, fld in type_.fields.items():
            hint = self.hint(type_.name, name) if get_named_type(fld.type).name == "ID" else None
            strategy = self.for_type(fld.type, depth + 1, hint)
            if isinstance(fld.type, GraphQLNonNull):
                required[name] = strategy
            else:
                optional[name] = strategy  # left out, null, or a value
        return st.fixed_dictionaries(required, optional=optional)


class UploadFile(bytes):
    """The bytes of a file to send as a multipart upload."""


UPLOADS = st.sampled_from(
    [
        b"",
        b"\x00\x01\x02\xff\xfe",
        "name,kind\n王芳,INDIVIDUAL\n".encode("gbk"),
        b"\xef\xbb\xbfname,kind,phone\n=cmd|' /C calc'!A0,INDIVIDUAL,+1\n@SUM(1),CORPORATE,-1\n",
        b"name,kind\n" + b'"unterminated,INDIVIDUAL\n',
        b"kind\n" + b"INDIVIDUAL\n" * 2000,
        b"name,kind," + b",".join(b"c%d" % i for i in range(500)) + b"\nx,INDIVIDUAL\n",
        b"name,kind\n" + b"x" * 200_000 + b",INDIVIDUAL\n",
        b"name,name,kind\na,b,INDIVIDUAL\n",
        b"customer_no,name,kind,id_number\n%_%,a\x00b,INDIVIDUAL,'; DROP TABLE customer; --\n",
    ]
).map(UploadFile)


def collect(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """Up to `n` examples of a strategy, the same ones on every run (derandomised), drawn before the async test
    sends them: hypothesis runs synchronously, the app lives on the session's event loop."""
    found: list[Any] = []

    @hypothesis_settings(
        max_examples=n,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def draw(value: Any) -> None:
        found.append(value)

    draw()
    return found[:n]


# ------------------------------------------------------------------------------------------------ the requests


def uploads_in(value: Any, path: str = "variables") -> list[tuple[str, UploadFile]]:
    if isinstance(value, UploadFile):
        return [(path, value)]
    if isinstance(value, dict):
        return [u for k, v in value.items() for u in uploads_in(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [u for i, v in enumerate(value) for u in uploads_in(v, f"{path}.{i}")]
    return []


def _without_uploads(value: Any) -> Any:
    if isinstance(value, UploadFile):
        return None
    if isinstance(value, dict):
        return {k: _without_uploads(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_uploads(v) for v in value]
    return value


async def post(http: httpx.AsyncClient, query: str, variables: dict, token: str | None) -> httpx.Response:
    """A GraphQL request; a multipart one (GraphQL multipart request spec) when the variables hold files."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    files = uploads_in(variables)
    if not files:
        # Encoded here, ASCII-only: httpx's own encoder refuses lone surrogates, which JSON can carry escaped.
        body = json.dumps({"query": query, "variables": variables})
        return await http.post("/graphql", content=body, headers={**headers, "content-type": "application/json"})
    operations = json.dumps({"query": query, "variables": _without_uploads(variables)})
    mapping = json.dumps({str(i): [p] for i, (p, _) in enumerate(files)})
    parts = {str(i): (f"upload{i}.csv", bytes(f), "text/csv") for i, (_, f) in enumerate(files)}
    return await http.post("/graphql", data={"operations": operations, "map": mapping}, files=parts, headers=headers)


def problems_of(response: httpx.Response, field_name: str | None = None) -> list[str]:
    """What is wrong with the answer to a hostile request (empty: nothing). Allowed answers: any status below
    500; a JSON body whose errors each carry extensions.code other than INTERNAL_SERVER_ERROR; no traceback;
    and, when the mutation ran, a payload with its `errors` list (UserErrors)."""
    problems = []
    if response.status_code >= 500:
        problems.append(f"HTTP {response.status_code}")
    text = response.text
    for marker in ("Traceback (most recent call last)", 'File "/', "INTERNAL_SERVER_ERROR"):
        if marker in text:
            problems.append(f"response contains {marker!r}")
    try:
        body = response.json()
    except ValueError:
        if response.status_code < 400:
            problems.append(f"not JSON: {text[:200]!r}")
        return problems
    bodies = body if isinstance(body, list) else [body]
    for one in bodies:
        for error in one.get("errors") or []:
            code = (error.get("extensions") or {}).get("code")
            if not code:
                problems.append(f"error without extensions.code: {error.get('message', '')[:300]!r}")
        data = one.get("data") or {}
        if field_name and data.get(field_name) is not None:
            payload = data[field_name]
            if not isinstance(payload.get("errors"), list):
                problems.append(f"payload without an errors list: {str(payload)[:200]}")
    return problems


def reported_failure(response: httpx.Response, field_name: str) -> bool:
    """Did the mutation say it failed (UserErrors, or a GraphQL error and no payload)?"""
    try:
        body = response.json()
    except ValueError:
        return True
    if isinstance(body, list):
        return True
    payload = (body.get("data") or {}).get(field_name)
    if payload is None:
        return True
    return bool(payload.get("errors"))


# ------------------------------------------------------------------------------------------------ row counts

# Written on purpose by a refused mutation: its audit entry (".rejected") and the rate-limit windows.
NOT_COUNTED = {AuditEntry}


async def row_counts() -> dict[str, int]:
    """Rows of every table but the audit trail and rate windows, in one statement."""
    tables = sorted(
        {model._meta.db_table for app in Tortoise.apps.values() for model in app.values() if model not in NOT_COUNTED}
    )
    sql = "SELECT " + ", ".join(f'(SELECT COUNT(*) FROM "{t}") AS "{t}"' for t in tables)
    rows = await Tortoise.get_connection("default").execute_query_dict(sql)
    return {t: int(rows[0][t]) for t in tables}


# ------------------------------------------------------------------------------------------------ the world


@dataclass
class World:
    """Records of every Node type, all hanging off a customer of branch A, made by an ADMIN."""

    admin_token: str
    ids: dict[str, list[str]] = field(default_factory=dict)
    customer: dict = field(default_factory=dict)

    def add(self, type_name: str, global_id: str | None) -> None:
        if global_id:
            self.ids.setdefault(type_name, []).append(global_id)

    def all_ids(self) -> list[str]:
        return [i for ids in self.ids.values() for i in ids]


async def _ok(gql, query: str, variables: dict, token: str, name: str, key: str) -> dict:
    result = (await gql(query, variables, token=token))[name]
    assert result["errors"] == [], (name, result["errors"])
    return result[key]


async def build_world(gql, admin_token: str, branch: str = BRANCH_A, seq: int = 301) -> World:
    world = World(admin_token)
    t = admin_token
    customer = await _ok(
        gql,
        """mutation($input: CreateCustomerInput!) { createCustomer(input: $input) {
          customer { id customerNo name phone email idNumber } errors { code message } } }""",
        {
            "input": {
                "kind": "INDIVIDUAL",
                "name": f"秘密客户{branch}",
                "idType": "RESIDENT_ID",
                "idNumber": resident_id(sequence=f"{seq:03d}"),
                "phone": f"+86 139 0000 {seq:04d}",
                "email": f"secret.{branch.lower()}{seq}@example.com",
                "address": "北京市朝阳区建国路88号",
                "branch": branch,
                "consents": [{"purpose": "SURVEY", "granted": True}, {"purpose": "MARKETING", "granted": True}],
            }
        },
        t,
        "createCustomer",
        "customer",
    )
    world.customer = customer
    cid = customer["id"]
    world.add("Customer", cid)
    holding = await _ok(
        gql,
        """mutation($input: UpsertHoldingInput!) { upsertHolding(input: $input) { holding { id } errors { code
          message } } }""",
        {
            "input": {
                "customerId": cid,
                "accountNo": f"6222020{seq:09d}",
                "product": "TIME_DEPOSIT",
                "balance": "50000.00",
                "openedAt": "2025-01-01",
            }
        },
        t,
        "upsertHolding",
        "holding",
    )
    world.add("ProductHolding", holding["id"])
    interaction = await _ok(
        gql,
        """mutation($input: LogInteractionInput!) { logInteraction(input: $input) { interaction { id } errors {
          code message } } }""",
        {
            "input": {
                "customerId": cid,
                "channel": "PHONE",
                "direction": "INBOUND",
                "kind": "INQUIRY",
                "subject": "咨询定期存款",
                "status": "OPEN",
            }
        },
        t,
        "logInteraction",
        "interaction",
    )
    world.add("Interaction", interaction["id"])
    follow_up_query = """mutation($input: CreateFollowUpInput!) { createFollowUp(input: $input) {
      followUp { id } errors { code message } } }"""
    follow_up = await _ok(
        gql,
        follow_up_query,
        {"input": {"title": "回电", "customerId": cid, "department": "BRANCH"}},
        t,
        "createFollowUp",
        "followUp",
    )
    world.add("FollowUp", follow_up["id"])
    note_query = """mutation($input: AddNoteInput!) { addNote(input: $input) { note { id } errors { code message }
      } }"""
    note = await _ok(
        gql, note_query, {"input": {"subjectId": cid, "body": "客户电话 13900001234"}}, t, "addNote", "note"
    )
    world.add("Note", note["id"])
    complaint = await _ok(
        gql,
        """mutation($input: FileComplaintInput!) { fileComplaint(input: $input) { complaint { id referenceNo }
          errors { code message } } }""",
        {
            "input": {
                "customerId": cid,
                "channel": "PHONE",
                "summary": "信用卡年费争议",
                "description": "客户称未被告知信用卡年费，要求退还。",
            }
        },
        t,
        "fileComplaint",
        "complaint",
    )
    world.add("Complaint", complaint["id"])
    complaint_note = await _ok(
        gql, note_query, {"input": {"subjectId": complaint["id"], "body": "已致电客户"}}, t, "addNote", "note"
    )
    world.add("Note", complaint_note["id"])
    # A follow-up of the complaint only (no customerId given): it still hangs off the customer.
    complaint_follow_up = await _ok(
        gql,
        follow_up_query,
        {"input": {"title": "核实年费", "complaintId": complaint["id"], "department": "COMPLAINTS"}},
        t,
        "createFollowUp",
        "followUp",
    )
    world.add("FollowUp", complaint_follow_up["id"])
    template = await _ok(
        gql,
        """mutation($input: CreateSurveyTemplateInput!) { createSurveyTemplate(input: $input) { template { id }
          errors { code message } } }""",
        {"input": {"name": f"推荐度{branch}{seq}", "kind": "NPS", "questions": NPS_QUESTIONS}},
        t,
        "createSurveyTemplate",
        "template",
    )
    world.add("SurveyTemplate", template["id"])
    invitation = await _ok(
        gql,
        """mutation($input: SendSurveyInput!) { sendSurvey(input: $input) { invitation { id status } errors {
          code message } } }""",
        {"input": {"templateId": template["id"], "customerId": cid, "channel": "EMAIL"}},
        t,
        "sendSurvey",
        "invitation",
    )
    world.add("SurveyInvitation", invitation["id"])
    stored = await SurveyInvitation.get(id=int(from_global_id(invitation["id"])[1]))
    if stored.notification_id:
        world.add("Notification", to_global_id("Notification", stored.notification_id))
        notification = await Notification.get(id=stored.notification_id)
        link = TOKEN_IN_LINK.search(notification.body)
        if link:
            submitted = (
                await gql(
                    """mutation($input: SubmitSurveyResponseInput!) { submitSurveyResponse(input: $input) {
                      accepted errors { code message } } }""",
                    {"input": {"token": link.group(1), "answers": [{"questionKey": "nps", "number": 2}]}},
                )
            )["submitSurveyResponse"]
            assert submitted["accepted"], submitted
            answer = await SurveyResponse.filter(invitation_id=stored.id).first()
            world.add("SurveyResponse", to_global_id("SurveyResponse", answer.id))
            if answer.follow_up_id:  # the recovery follow-up of a detractor
                world.add("FollowUp", to_global_id("FollowUp", answer.follow_up_id))
    segment = await _ok(
        gql,
        """mutation($input: CreateSegmentInput!) { createSegment(input: $input) { segment { id } errors { code
          message } } }""",
        {"input": {"name": f"分行{branch}{seq}", "filter": {"branch": branch}}},
        t,
        "createSegment",
        "segment",
    )
    world.add("Segment", segment["id"])
    job = await _ok(
        gql,
        """mutation($input: ExportAuditLogInput!) { exportAuditLog(input: $input) { job { id } errors { code
          message } } }""",
        {"input": {}},
        t,
        "exportAuditLog",
        "job",
    )
    world.add("Job", job["id"])
    me = (await gql("{ me { id } }", token=t))["me"]
    world.add("Staff", me["id"])
    entry = await AuditEntry.filter(action="customer.create").order_by("-id").first()
    world.add("AuditEntry", to_global_id("AuditEntry", entry.id))
    return world
