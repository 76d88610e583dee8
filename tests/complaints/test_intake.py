"""Complaint intake and tracking through HTTP -> GraphQL -> the database: classification, default priority,
reference numbers (also under concurrency), bad input, permissions per role, the `complaints` list with every
filter and order, the customer's view (complaints, timeline, notes, follow-ups) and branch scoping."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from models.complaints import Complaint as ComplaintModel, ComplaintDaySequence
from models.customers import Customer as CustomerModel
from models.staff import Role
from schema.base import to_global_id
from services import clock
from tests.complaints.helpers import (
    codes,
    do,
    fetch,
    file,
    file_raw,
    new_customer,
    pk,
    staff_gid,
)
from tests.conftest import with_overrides

SHANGHAI = ZoneInfo("Asia/Shanghai")
RULES = json.loads(
    (Path(__file__).resolve().parents[2] / "services" / "data" / "complaint_rules.json").read_text(encoding="utf-8")
)
REFERENCE = re.compile(r"^CMP-(\d{8})-(\d{6})$")

LIST = """query($filter: ComplaintFilter, $order: ComplaintOrder, $first: Int, $after: String) {
  complaints(filter: $filter, orderBy: $order, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { id referenceNo priority } } } }"""
BY_REFERENCE = "query($ref: String!) { complaint(referenceNo: $ref) { id referenceNo } }"
NODE = "query($id: ID!) { node(id: $id) { id ... on Complaint { referenceNo } } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
ADD_NOTE = """mutation($input: AddNoteInput!) { addNote(input: $input) {
  note { id body visibility author { username } } errors { field code } } }"""
CREATE_FOLLOW_UP = """mutation($input: CreateFollowUpInput!) { createFollowUp(input: $input) {
  followUp { id title department priority customer { id } complaint { id } } errors { field code } } }"""
TRACKING = """query($id: ID!) { complaint(id: $id) {
  events { type actor { username } message }
  notes { id body visibility author { username } }
  followUps { id title department complaint { id } customer { id } } } }"""
CUSTOMER_VIEW = """query($id: ID!) { customer(id: $id) {
  complaints(first: 50) { totalCount edges { node { id referenceNo } } }
  notes { id body }
  timeline(first: 100) { totalCount edges { node { kind title subject { id } } } } } }"""

BEIJING, SHANGHAI_BRANCH = "北京朝阳支行", "上海浦东支行"


@pytest.fixture
def settings(settings):
    # Tokens outlive the trips in time below.
    return with_overrides(settings, token_ttl_minutes=200 * 24 * 60)


@pytest.fixture(autouse=True)
def _real_time():
    clock.reset()
    try:
        yield
    finally:
        clock.reset()


@pytest.fixture
async def admin_token(admin) -> str:
    return admin[1]


@pytest.fixture
async def customer(gql, admin_token) -> dict:
    return await new_customer(gql, admin_token)


# ---------------------------------------------------------------- classification

EXAMPLES = [
    # (summary, description, category, reason)
    ("我的信用卡被盗刷了", "客户发现多笔陌生消费", "CREDIT_CARD", "FUNDS_SECURITY"),
    ("credit card annual fee", "The customer disputes it.", "CREDIT_CARD", "FEES_AND_PRICING"),
    ("app crashes on login", "Since the last update.", "E_BANKING", "SYSTEM_FAILURE"),
    ("信用卡逾期遭暴力催收", "催收人员多次致电家人", "CREDIT_CARD", "DEBT_COLLECTION"),
    ("理财产品销售时误导客户", "承诺保本保收益", "WEALTH_MANAGEMENT", "MARKETING_PRACTICE"),
    (
        "Wealth management product risk not disclosed",
        "No risk warning was given.",
        "WEALTH_MANAGEMENT",
        "INFORMATION_DISCLOSURE",
    ),
    ("房贷利率上调未告知", "银行单方面调整", "LOAN", "INFORMATION_DISCLOSURE"),
    ("办理贷款被捆绑购买保险", "不买就不放款", "LOAN", "FREE_CHOICE"),
    ("Mortgage contract terms changed", "Without my consent.", "LOAN", "CONTRACT_TERMS"),
    ("ATM机器故障吞卡", "周末无人处理", "BANK_CARD", "SERVICE_FACILITIES"),
    ("Stolen debit card used for fraud", "Three purchases abroad.", "BANK_CARD", "FUNDS_SECURITY"),
    ("定期存款提前支取手续繁琐", "要求本人到场多次", "DEPOSIT", "RULES_AND_PROCESS"),
    ("Rude attitude at the deposit desk", "The clerk shouted.", "DEPOSIT", "SERVICE_ATTITUDE"),
    ("跨行转账三天未到账", "疑似系统故障", "PAYMENT_SETTLEMENT", "SYSTEM_FAILURE"),
    ("Transfer stuck in the bank's process", "Nobody helps.", "PAYMENT_SETTLEMENT", "RULES_AND_PROCESS"),
    ("银行代理销售的保险合同条款与说明不一致", "销售人员解释不清", "AGENCY_SALES", "CONTRACT_TERMS"),
    ("Insurance mis-selling", "Sold to me as savings.", "AGENCY_SALES", "MARKETING_PRACTICE"),
    ("网点拒绝兑换残币", "柜员态度恶劣", "RMB_CASH", "SERVICE_ATTITUDE"),
    ("Cash machine facility broken", "Out of order for days.", "RMB_CASH", "SERVICE_FACILITIES"),
    ("我的个人信息被泄露", "经常接到骚扰电话", "PERSONAL_INFORMATION", "INFORMATION_SECURITY"),
    ("Personal information leak", "My data was sold.", "PERSONAL_INFORMATION", "INFORMATION_SECURITY"),
    ("手机银行闪退无法登录", "重装也不行", "E_BANKING", "SYSTEM_FAILURE"),
    ("Online banking outage", "All morning.", "E_BANKING", "SYSTEM_FAILURE"),
    ("Forced to buy a bundled product", "Against my will.", "OTHER", "FREE_CHOICE"),
    ("希望网点增加停车位", "停车很难", "OTHER", "OTHER"),
    ("Question about opening hours", "Saturday?", "OTHER", "OTHER"),
    # In the description only; any letter case; the rule with the most hits wins; ties go to the earlier rule.
    ("客户来电", "信用卡年费太高", "CREDIT_CARD", "FEES_AND_PRICING"),
    ("CREDIT CARD ANNUAL FEE", "PLEASE REFUND", "CREDIT_CARD", "FEES_AND_PRICING"),
    ("基金净值暴跌，信用卡", "基金经理失联", "WEALTH_MANAGEMENT", "OTHER"),
    ("信用卡和理财", "都有问题", "CREDIT_CARD", "OTHER"),
]


def test_the_examples_cover_every_category_and_reason_of_the_rules():
    categories = {rule["value"] for rule in RULES["category"]} | {"OTHER"}
    reasons = {rule["value"] for rule in RULES["reason"]} | {"OTHER"}
    assert categories <= {e[2] for e in EXAMPLES}
    assert reasons <= {e[3] for e in EXAMPLES}
    assert any(re.search(r"[\u4e00-\u9fff]", e[0]) for e in EXAMPLES)
    assert any(re.fullmatch(r"[ -~]+", e[0]) for e in EXAMPLES)


@pytest.mark.parametrize(("summary", "description", "category", "reason"), EXAMPLES, ids=[e[0][:24] for e in EXAMPLES])
async def test_classification(gql, admin_token, customer, summary, description, category, reason):
    filed = await file(gql, admin_token, customer["id"], summary=summary, description=description)
    assert (filed["category"], filed["reason"]) == (category, reason)
    assert (filed["suggestedCategory"], filed["suggestedReason"]) == (category, reason)


@pytest.mark.parametrize(
    ("summary", "wrong_category", "wrong_reason"),
    [
        ("I want a refund of the wrong transfer", "WEALTH_MANAGEMENT", None),
        ("Disappointed with the branch manager", "E_BANKING", None),
        ("My feedback about the teller was ignored", None, "FEES_AND_PRICING"),
        ("Unfair treatment at the branch", None, "SERVICE_FACILITIES"),
        ("Cashback promised but never came", "RMB_CASH", None),
    ],
)
async def test_english_keywords_match_whole_words_only(
    gql, admin_token, customer, summary, wrong_category, wrong_reason
):
    filed = await file(gql, admin_token, customer["id"], summary=summary, description="Please look into it.")
    assert filed["suggestedCategory"] != wrong_category
    assert filed["suggestedReason"] != wrong_reason


async def test_a_given_category_and_reason_win_but_suggestions_are_always_filled(gql, admin_token, customer):
    both = await file(
        gql, admin_token, customer["id"], summary="我的信用卡被盗刷了", category="LOAN", reason="SERVICE_ATTITUDE"
    )
    assert (both["category"], both["reason"]) == ("LOAN", "SERVICE_ATTITUDE")
    assert (both["suggestedCategory"], both["suggestedReason"]) == ("CREDIT_CARD", "FUNDS_SECURITY")
    assert both["priority"] == "NORMAL"  # the given reason counts, not the suggested one

    only_category = await file(
        gql, admin_token, customer["id"], summary="credit card annual fee", description="-", category="DEPOSIT"
    )
    assert (only_category["category"], only_category["reason"]) == ("DEPOSIT", "FEES_AND_PRICING")
    assert only_category["suggestedCategory"] == "CREDIT_CARD"

    only_reason = await file(
        gql, admin_token, customer["id"], summary="希望增加停车位", description="-", reason="FUNDS_SECURITY"
    )
    assert (only_reason["category"], only_reason["reason"]) == ("OTHER", "FUNDS_SECURITY")
    assert (only_reason["suggestedCategory"], only_reason["suggestedReason"]) == ("OTHER", "OTHER")
    assert only_reason["priority"] == "URGENT"


# ---------------------------------------------------------------- default priority


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"summary": "我的信用卡被盗刷了"}, "URGENT"),
        ({"summary": "希望增加停车位", "description": "-", "reason": "FUNDS_SECURITY"}, "URGENT"),
        ({"channel": "REGULATOR"}, "URGENT"),
        ({"amountInDispute": "50000"}, "URGENT"),
        ({"amountInDispute": "50000.00"}, "URGENT"),
        ({"amountInDispute": "1250000.50"}, "URGENT"),
        ({"amountInDispute": "49999.99"}, "NORMAL"),
        ({"amountInDispute": "0"}, "NORMAL"),
        ({}, "NORMAL"),
        ({"summary": "我的信用卡被盗刷了", "priority": "LOW"}, "LOW"),
        ({"channel": "REGULATOR", "priority": "NORMAL"}, "NORMAL"),
        ({"amountInDispute": "90000", "priority": "HIGH"}, "HIGH"),
        ({"priority": "URGENT"}, "URGENT"),
    ],
    ids=lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else v,
)
async def test_default_priority(gql, admin_token, customer, overrides, expected):
    assert (await file(gql, admin_token, customer["id"], **overrides))["priority"] == expected


async def test_a_customer_with_two_complaints_in_90_days_is_high(gql, admin_token, customer):
    other = await new_customer(gql, admin_token)
    first = await file(gql, admin_token, customer["id"])
    second = await file(gql, admin_token, customer["id"])
    third = await file(gql, admin_token, customer["id"])
    assert [c["priority"] for c in (first, second, third)] == ["NORMAL", "NORMAL", "HIGH"]
    assert (await file(gql, admin_token, other["id"]))["priority"] == "NORMAL"  # others' complaints do not count
    # Urgent reasons still win; an explicit priority still wins.
    assert (await file(gql, admin_token, customer["id"], summary="我的信用卡被盗刷了"))["priority"] == "URGENT"
    assert (await file(gql, admin_token, customer["id"], priority="LOW"))["priority"] == "LOW"


async def test_complaints_older_than_90_days_do_not_make_it_high(gql, admin_token, customer):
    await file(gql, admin_token, customer["id"])
    await file(gql, admin_token, customer["id"])
    clock.travel(timedelta(days=89))
    assert (await file(gql, admin_token, customer["id"]))["priority"] == "HIGH"
    clock.travel(timedelta(days=2))  # the first two are 91 days old now; the third is 2 days old
    assert (await file(gql, admin_token, customer["id"]))["priority"] == "NORMAL"


async def test_recent_complaints_count_from_received_at(gql, admin_token, customer):
    await file(gql, admin_token, customer["id"], receivedAt=(clock.now() - timedelta(days=50)).isoformat())
    await file(gql, admin_token, customer["id"], receivedAt=(clock.now() - timedelta(days=40)).isoformat())
    assert (await file(gql, admin_token, customer["id"]))["priority"] == "HIGH"


# ---------------------------------------------------------------- reference numbers


def bank_day(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y%m%d")


async def test_reference_numbers_follow_the_bank_day_in_shanghai(gql, admin_token, customer):
    # 23:58 in Shanghai, 15:58 UTC: the same UTC day continues after Shanghai's midnight.
    evening = datetime.now(UTC).replace(hour=15, minute=58, second=0, microsecond=0)
    with clock.freeze(evening):
        today = bank_day(evening)
        numbers = [(await file(gql, admin_token, customer["id"]))["referenceNo"] for _ in range(3)]
        assert numbers == [f"CMP-{today}-00000{n}" for n in (1, 2, 3)]
        clock.travel(timedelta(minutes=3))  # 00:01 the next day in Shanghai, still the same day in UTC
        tomorrow = bank_day(evening + timedelta(days=1))
        assert clock.now().date() == evening.date() and tomorrow != today
        numbers = [(await file(gql, admin_token, customer["id"]))["referenceNo"] for _ in range(2)]
        assert numbers == [f"CMP-{tomorrow}-000001", f"CMP-{tomorrow}-000002"]
        clock.travel(timedelta(days=1))
        day_after = bank_day(evening + timedelta(days=2))
        assert (await file(gql, admin_token, customer["id"]))["referenceNo"] == f"CMP-{day_after}-000001"


async def test_the_reference_number_format(gql, admin_token, customer):
    filed = await file(gql, admin_token, customer["id"])
    match = REFERENCE.match(filed["referenceNo"])
    assert match and match.group(1) == bank_day(clock.now()) and match.group(2) == "000001"


async def test_rejected_filings_use_no_number(gql, admin_token, customer):
    assert codes(await file_raw(gql, admin_token, customer["id"], summary=" ")) == ["REQUIRED"]
    assert codes(await file_raw(gql, admin_token, customer["id"], amountInDispute="-1")) == ["INVALID"]
    filed = await file(gql, admin_token, customer["id"])
    assert filed["referenceNo"].endswith("-000001")


async def test_fifty_concurrent_filings_get_fifty_gap_free_numbers(gql, admin_token, customer):
    others = [await new_customer(gql, admin_token) for _ in range(4)]
    owners = [customer["id"]] + [c["id"] for c in others]
    results = await asyncio.gather(
        *[file_raw(gql, admin_token, owners[i % len(owners)], summary=f"并发投诉 {i}") for i in range(50)]
    )
    assert [r["errors"] for r in results] == [[]] * 50
    references = [r["complaint"]["referenceNo"] for r in results]
    assert len(set(references)) == 50
    days = {REFERENCE.match(ref).group(1) for ref in references}
    assert len(days) == 1
    assert sorted(int(REFERENCE.match(ref).group(2)) for ref in references) == list(range(1, 51))
    assert await ComplaintModel.all().count() == 50
    [sequence] = await ComplaintDaySequence.all()
    assert sequence.last_number == 50
    # The next one continues the day's sequence.
    assert (await file(gql, admin_token, customer["id"]))["referenceNo"].endswith("-000051")


# ---------------------------------------------------------------- bad input


async def test_an_unknown_customer_is_not_found(gql, admin_token):
    for customer_id in (to_global_id("Customer", 999999), to_global_id("Staff", 1), "not-an-id"):
        result = await file_raw(gql, admin_token, customer_id)
        assert codes(result) == ["NOT_FOUND"] and result["errors"][0]["field"] == ["customerId"], customer_id
    assert await ComplaintModel.all().count() == 0


@pytest.mark.parametrize("role", [Role.RELATIONSHIP_MANAGER, Role.SERVICE_AGENT])
async def test_a_customer_of_another_branch_is_not_found_for_branch_bound_staff(gql, admin_token, staff_factory, role):
    _, token = await staff_factory(role, branch=BEIJING)
    theirs = await new_customer(gql, admin_token, branch=SHANGHAI_BRANCH)
    ours = await new_customer(gql, admin_token, branch=BEIJING)
    result = await file_raw(gql, token, theirs["id"])
    assert codes(result) == ["NOT_FOUND"] and result["errors"][0]["field"] == ["customerId"]
    assert (await file_raw(gql, token, ours["id"]))["errors"] == []
    assert await ComplaintModel.filter(customer_id=pk(theirs["id"])).count() == 0


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"summary": ""}, "REQUIRED", "summary"),
        ({"summary": "   "}, "REQUIRED", "summary"),
        ({"description": ""}, "REQUIRED", "description"),
        ({"summary": "长" * 201}, "INVALID", "summary"),
        ({"amountInDispute": "-0.01"}, "INVALID", "amountInDispute"),
        ({"amountInDispute": "-100"}, "INVALID", "amountInDispute"),
        ({"amountInDispute": "1.234"}, "INVALID", "amountInDispute"),
    ],
)
async def test_bad_input_is_rejected(gql, admin_token, customer, overrides, code, field):
    result = await file_raw(gql, admin_token, customer["id"], **overrides)
    assert result["complaint"] is None
    assert codes(result) == [code] and result["errors"][0]["field"] == [field]
    assert await ComplaintModel.all().count() == 0


@pytest.mark.parametrize("ahead", [timedelta(hours=1), timedelta(days=1), timedelta(days=400)])
async def test_received_in_the_future_is_invalid(gql, admin_token, customer, ahead):
    result = await file_raw(gql, admin_token, customer["id"], receivedAt=(clock.now() + ahead).isoformat())
    assert codes(result) == ["INVALID"] and result["errors"][0]["field"] == ["receivedAt"]
    assert await ComplaintModel.all().count() == 0


async def test_received_at_in_another_offset_is_the_same_instant(gql, admin_token, customer):
    moment = (clock.now() - timedelta(days=2)).replace(microsecond=0)
    filed = await file(gql, admin_token, customer["id"], receivedAt=moment.astimezone(SHANGHAI).isoformat())
    assert datetime.fromisoformat(filed["receivedAt"]) == moment
    assert datetime.fromisoformat(filed["dueAt"]) == moment + timedelta(days=15)


async def test_filing_marks_the_portrait_stale(gql, admin_token, customer):
    await CustomerModel.filter(id=pk(customer["id"])).update(portrait_stale_since=None)
    before = clock.now()
    await file(gql, admin_token, customer["id"])
    stale = (await CustomerModel.get(id=pk(customer["id"]))).portrait_stale_since
    assert stale is not None and before - timedelta(seconds=1) <= stale <= clock.now() + timedelta(seconds=1)


# ---------------------------------------------------------------- permissions (docs/DOMAIN.md role table)

HANDLER_MOVES = ["acknowledge", "assign", "start", "escalate", "extend", "resolve", "close", "reopen"]


@pytest.mark.parametrize("role", [Role.ANALYST, Role.AUDITOR])
async def test_read_only_roles_cannot_file_but_can_read(gql, admin_token, staff_factory, customer, role):
    _, token = await staff_factory(role)
    result = await file_raw(gql, token, customer["id"])
    assert codes(result) == ["FORBIDDEN"] and result["complaint"] is None
    assert await ComplaintModel.all().count() == 0
    filed = await file(gql, admin_token, customer["id"])
    assert (await fetch(gql, token, filed["id"]))["referenceNo"] == filed["referenceNo"]
    listed = (await gql(LIST, {}, token=token))["complaints"]
    assert listed["totalCount"] == 1
    for name in [*HANDLER_MOVES, "withdraw"]:
        assert codes(await do(gql, token, name, **_inputs(name, filed))) == ["FORBIDDEN"], name
    note = (await gql(ADD_NOTE, {"input": {"subjectId": filed["id"], "body": "看一下"}}, token=token))["addNote"]
    assert codes(note) == ["FORBIDDEN"]


def _inputs(name: str, complaint: dict, **extra) -> dict:
    base = {"id": complaint["id"]}
    more = {
        "assign": {"department": "COMPLAINTS"},
        "escalate": {"reason": "r"},
        "extend": {"reason": "r"},
        "resolve": {"version": complaint["version"], "resolution": "r"},
        "close": {"customerAccepted": True},
        "reopen": {"reason": "r"},
        "withdraw": {"reason": "r"},
    }.get(name, {})
    return {**base, **more, **extra}


@pytest.mark.parametrize("role", [Role.RELATIONSHIP_MANAGER, Role.SERVICE_AGENT])
async def test_front_line_staff_file_and_note_but_do_not_handle(gql, staff_factory, admin_token, customer, role):
    member, token = await staff_factory(role)
    filed = await file_raw(gql, token, customer["id"])
    assert filed["errors"] == []
    complaint = filed["complaint"]
    assert complaint["events"][0]["actor"] == {"username": member.username}
    acknowledged = await do(gql, token, "acknowledge", id=complaint["id"])
    assert codes(acknowledged) == ["FORBIDDEN"] and acknowledged["complaint"] is None
    for name in HANDLER_MOVES:
        assert codes(await do(gql, token, name, **_inputs(name, complaint))) == ["FORBIDDEN"], name
    after = await fetch(gql, admin_token, complaint["id"])
    assert (after["status"], after["version"], len(after["events"])) == ("RECEIVED", 1, 1)
    note = (await gql(ADD_NOTE, {"input": {"subjectId": complaint["id"], "body": "客户补充材料"}}, token=token))[
        "addNote"
    ]
    assert note["errors"] == [] and note["note"]["author"] == {"username": member.username}


@pytest.mark.parametrize("role", [Role.COMPLAINT_HANDLER, Role.MANAGER, Role.ADMIN])
async def test_handlers_managers_and_admins_run_the_whole_workflow(gql, staff_factory, admin_token, customer, role):
    member, token = await staff_factory(role)
    manager, manager_token = await staff_factory(Role.MANAGER)
    # The second extension is made by a MANAGER or ADMIN themselves: a handler's desk asks a manager.
    approver, approver_token = (manager, manager_token) if role == Role.COMPLAINT_HANDLER else (member, token)
    complaint = (await file_raw(gql, token, customer["id"]))["complaint"]
    steps = [
        ("acknowledge", {}),
        ("assign", {"handlerId": staff_gid(member)}),
        ("extend", {}),
        ("extend", {"approvedById": staff_gid(approver)}),
        ("escalate", {}),
        ("start", {}),
        ("resolve", {}),
        ("close", {}),
        ("reopen", {}),
        ("start", {}),
        ("resolve", {}),
        ("close", {}),
    ]
    for name, extra in steps:
        who = approver_token if "approvedById" in extra else token
        result = await do(gql, who, name, **_inputs(name, complaint, **extra))
        assert result["errors"] == [], (name, result["errors"])
        complaint = result["complaint"]
    assert complaint["status"] == "CLOSED" and complaint["extensionCount"] == 2
    assert {e["actor"]["username"] for e in complaint["events"] if e["actor"]} == {member.username, approver.username}
    withdrawn = (await file_raw(gql, token, customer["id"]))["complaint"]
    assert (await do(gql, token, "withdraw", **_inputs("withdraw", withdrawn)))["complaint"]["status"] == "WITHDRAWN"


async def test_without_a_token_it_is_unauthenticated(gql, admin_token, customer):
    filed = await file(gql, admin_token, customer["id"])
    body = (await gql.raw(LIST, {})).json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    body = (
        await gql.raw(
            """mutation($input: FileComplaintInput!) { fileComplaint(input: $input) {
        complaint { id } errors { code } } }""",
            {"input": {"customerId": customer["id"], "channel": "PHONE", "summary": "s", "description": "d"}},
        )
    ).json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    body = (await gql.raw("query($id: ID!) { complaint(id: $id) { id } }", {"id": filed["id"]})).json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


# ---------------------------------------------------------------- the complaints list: every filter, every order


async def _ids(gql, token: str, filter: dict | None = None, order: dict | None = None) -> list[str]:
    data = (await gql(LIST, {"filter": filter, "order": order, "first": 100}, token=token))["complaints"]
    assert data["totalCount"] == len(data["edges"])
    return [e["node"]["id"] for e in data["edges"]]


@pytest.fixture
async def book(gql, admin_token, staff_factory) -> dict:
    """Four complaints, each different in everything a filter or an order looks at:

        c1 Beijing customer A, received 10 days ago, CREDIT_CARD/FUNDS_SECURITY, URGENT, COMPLAINTS/h1, ESCALATED
        c2 Beijing customer A, received  2 days ago, LOAN/INFORMATION_DISCLOSURE, NORMAL, COMPLIANCE/h2,
           IN_PROGRESS, extended (due in 28 days)
        c3 Shanghai customer B, received 20 days ago, E_BANKING/SYSTEM_FAILURE, LOW, RECEIVED (BREACHED)
        c4 Shanghai customer B, received now, CREDIT_CARD/FEES_AND_PRICING, HIGH, RESOLVED (MET)
    Last changed, oldest first: c2, c3, c4, c1.
    """
    h1, token = await staff_factory(Role.COMPLAINT_HANDLER, department="COMPLAINTS")
    h2, _ = await staff_factory(Role.COMPLAINT_HANDLER, department="COMPLIANCE")
    a = await new_customer(gql, admin_token, branch=BEIJING)
    b = await new_customer(gql, admin_token, branch=SHANGHAI_BRANCH)
    now = clock.now().replace(microsecond=0)

    def ago(days: int) -> str:
        return (now - timedelta(days=days)).isoformat()

    c1 = await file(
        gql, admin_token, a["id"], summary="我的信用卡被盗刷了", description="多笔陌生消费", receivedAt=ago(10)
    )
    c2 = await file(
        gql, admin_token, a["id"], summary="房贷利率上调未告知", description="银行单方面调整", receivedAt=ago(2)
    )
    c3 = await file(
        gql,
        admin_token,
        b["id"],
        summary="手机银行闪退无法登录",
        description="重装也不行",
        receivedAt=ago(20),
        priority="LOW",
    )
    c4 = await file(
        gql, admin_token, b["id"], summary="credit card annual fee", description="Refund it please", priority="HIGH"
    )
    await do(gql, token, "acknowledge", id=c1["id"])
    await do(gql, token, "assign", id=c1["id"], department="COMPLAINTS", handlerId=staff_gid(h1))
    await do(gql, token, "assign", id=c2["id"], department="COMPLIANCE", handlerId=staff_gid(h2))
    await do(gql, token, "acknowledge", id=c2["id"])
    await do(gql, token, "extend", id=c2["id"], reason="复杂")
    await do(gql, token, "start", id=c2["id"])
    await asyncio.sleep(0.01)
    await ComplaintModel.filter(id=pk(c3["id"])).update(updated_at=clock.now())  # touched after c2
    await asyncio.sleep(0.01)
    escalated4 = (await do(gql, token, "escalate", id=c4["id"], reason="急"))["complaint"]
    await do(gql, token, "resolve", id=c4["id"], version=escalated4["version"], resolution="已退")
    await asyncio.sleep(0.01)
    await do(gql, token, "escalate", id=c1["id"], reason="客户要求")
    return {
        "token": token,
        "h1": h1,
        "h2": h2,
        "a": a,
        "b": b,
        "now": now,
        "c1": c1["id"],
        "c2": c2["id"],
        "c3": c3["id"],
        "c4": c4["id"],
        "refs": {k: c["referenceNo"] for k, c in (("c1", c1), ("c2", c2), ("c3", c3), ("c4", c4))},
    }


async def test_every_filter_field(gql, admin_token, book):
    c1, c2, c3, c4 = book["c1"], book["c2"], book["c3"], book["c4"]
    now = book["now"]

    async def only(filter: dict) -> set[str]:
        return set(await _ids(gql, admin_token, filter))

    assert await only({}) == {c1, c2, c3, c4}
    assert await only({"customerId": book["a"]["id"]}) == {c1, c2}
    assert await only({"customerId": book["b"]["id"]}) == {c3, c4}
    assert await only({"status": ["ESCALATED"]}) == {c1}
    assert await only({"status": ["RECEIVED", "RESOLVED"]}) == {c3, c4}
    assert await only({"status": ["CLOSED"]}) == set()
    assert await only({"category": ["CREDIT_CARD"]}) == {c1, c4}
    assert await only({"category": ["LOAN", "E_BANKING"]}) == {c2, c3}
    assert await only({"reason": ["FUNDS_SECURITY", "SYSTEM_FAILURE"]}) == {c1, c3}
    assert await only({"reason": ["INFORMATION_DISCLOSURE"]}) == {c2}
    assert await only({"priority": ["URGENT"]}) == {c1}
    assert await only({"priority": ["LOW", "HIGH"]}) == {c3, c4}
    assert await only({"priority": ["NORMAL"]}) == {c2}
    assert await only({"slaState": ["BREACHED"]}) == {c3}
    assert await only({"slaState": ["ON_TRACK"]}) == {c1, c2}
    assert await only({"slaState": ["MET", "MISSED"]}) == {c4}
    assert await only({"department": "COMPLAINTS"}) == {c1}
    assert await only({"department": "COMPLIANCE"}) == {c2}
    assert await only({"handlerId": staff_gid(book["h1"])}) == {c1}
    assert await only({"handlerId": staff_gid(book["h2"])}) == {c2}
    assert await only({"branch": BEIJING}) == {c1, c2}
    assert await only({"branch": SHANGHAI_BRANCH}) == {c3, c4}
    assert await only({"branch": "深圳南山支行"}) == set()
    assert await only({"receivedAfter": (now - timedelta(days=5)).isoformat()}) == {c2, c4}
    assert await only({"receivedBefore": (now - timedelta(days=5)).isoformat()}) == {c1, c3}
    assert await only(
        {
            "receivedAfter": (now - timedelta(days=15)).isoformat(),
            "receivedBefore": (now - timedelta(days=1)).isoformat(),
        }
    ) == {c1, c2}
    # The same instants written in Beijing time select the same rows.
    assert await only({"receivedAfter": (now - timedelta(days=5)).astimezone(SHANGHAI).isoformat()}) == {c2, c4}
    assert await only({"receivedBefore": (now - timedelta(days=15)).astimezone(SHANGHAI).isoformat()}) == {c3}
    assert await only({"search": "盗刷"}) == {c1}
    assert await only({"search": "重装"}) == {c3}  # the description
    assert await only({"search": "ANNUAL"}) == {c4}  # any letter case
    assert await only({"search": book["refs"]["c2"].lower()}) == {c2}  # the reference number
    assert await only({"search": "   "}) == {c1, c2, c3, c4}
    # Fields combine with AND.
    assert await only({"category": ["CREDIT_CARD"], "branch": SHANGHAI_BRANCH}) == {c4}
    assert await only({"customerId": book["a"]["id"], "slaState": ["BREACHED"]}) == set()


@pytest.mark.parametrize(
    ("field", "ascending"),
    [
        ("RECEIVED_AT", ["c3", "c1", "c2", "c4"]),
        ("DUE_AT", ["c3", "c1", "c4", "c2"]),
        ("PRIORITY", ["c3", "c2", "c4", "c1"]),  # LOW < NORMAL < HIGH < URGENT, not the alphabet
        ("UPDATED_AT", ["c2", "c3", "c4", "c1"]),
    ],
)
async def test_every_order_field_both_ways(gql, admin_token, book, field, ascending):
    expected = [book[k] for k in ascending]
    assert await _ids(gql, admin_token, order={"field": field, "direction": "ASC"}) == expected
    assert await _ids(gql, admin_token, order={"field": field, "direction": "DESC"}) == expected[::-1]
    # Paging keeps the order.
    pages, after = [], None
    while True:
        data = (
            await gql(
                LIST, {"order": {"field": field, "direction": "DESC"}, "first": 3, "after": after}, token=admin_token
            )
        )["complaints"]
        pages += [e["node"]["id"] for e in data["edges"]]
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
    assert pages == expected[::-1]


async def test_the_default_order_is_newest_received_first(gql, admin_token, book):
    assert await _ids(gql, admin_token) == [book[k] for k in ("c4", "c2", "c1", "c3")]


async def test_priority_order_breaks_ties_consistently_across_pages(gql, admin_token, customer):
    filed = [
        await file(gql, admin_token, customer["id"], priority=p)
        for p in ("NORMAL", "URGENT", "LOW", "URGENT", "HIGH", "NORMAL", "LOW", "HIGH")
    ]
    rank = {"LOW": 1, "NORMAL": 2, "HIGH": 3, "URGENT": 4}
    everything = await _ids(gql, admin_token, order={"field": "PRIORITY", "direction": "DESC"})
    priorities = {c["id"]: c["priority"] for c in filed}
    assert [rank[priorities[i]] for i in everything] == sorted((rank[c["priority"]] for c in filed), reverse=True)
    paged, after = [], None
    for _ in range(5):
        data = (
            await gql(
                LIST,
                {"order": {"field": "PRIORITY", "direction": "DESC"}, "first": 3, "after": after},
                token=admin_token,
            )
        )["complaints"]
        paged += [e["node"]["id"] for e in data["edges"]]
        after = data["pageInfo"]["endCursor"]
        if not data["pageInfo"]["hasNextPage"]:
            break
    assert paged == everything


async def test_a_complaint_by_reference_number(gql, admin_token, book):
    ref = book["refs"]["c3"]
    for given in (ref, ref.lower(), f"  {ref} "):
        assert (await gql(BY_REFERENCE, {"ref": given}, token=admin_token))["complaint"] == {
            "id": book["c3"],
            "referenceNo": ref,
        }
    assert (await gql(BY_REFERENCE, {"ref": "CMP-19990101-000001"}, token=admin_token))["complaint"] is None
    errors = await gql.errors(
        "query($id: ID!, $ref: String!) { complaint(id: $id, referenceNo: $ref) { id } }",
        {"id": book["c3"], "ref": ref},
        token=admin_token,
    )
    assert errors[0]["extensions"]["code"] == "INVALID"
    errors = await gql.errors("{ complaint { id } }", token=admin_token)
    assert errors[0]["extensions"]["code"] == "INVALID"
    assert (await gql("query($id: ID!) { complaint(id: $id) { id } }", {"id": book["a"]["id"]}, token=admin_token))[
        "complaint"
    ] is None  # a customer's id is not a complaint's


# ---------------------------------------------------------------- the customer's view, notes, follow-ups


async def test_customer_complaints_and_timeline(gql, admin_token, staff_factory, customer):
    _, token = await staff_factory(Role.COMPLAINT_HANDLER)
    other = await new_customer(gql, admin_token)
    first = await file(gql, admin_token, customer["id"], receivedAt=(clock.now() - timedelta(days=3)).isoformat())
    second = await file(gql, admin_token, customer["id"], summary="手机银行闪退", description="无法登录")
    await file(gql, admin_token, other["id"])
    await do(gql, token, "acknowledge", id=first["id"])
    await do(gql, token, "extend", id=first["id"], reason="复杂")

    view = (await gql(CUSTOMER_VIEW, {"id": customer["id"]}, token=admin_token))["customer"]
    assert view["complaints"]["totalCount"] == 2
    assert [e["node"]["id"] for e in view["complaints"]["edges"]] == [second["id"], first["id"]]  # newest first
    items = [e["node"] for e in view["timeline"]["edges"]]
    complaints = [i for i in items if i["kind"] == "COMPLAINT"]
    events = [i for i in items if i["kind"] == "COMPLAINT_EVENT"]
    assert {i["subject"]["id"] for i in complaints} == {first["id"], second["id"]}
    assert any(first["referenceNo"] in i["title"] for i in complaints)
    # RECEIVED x2, ACKNOWLEDGED, DEADLINE_EXTENDED, CUSTOMER_NOTIFIED: the other customer's are not here.
    assert len(events) == 5
    assert view["timeline"]["totalCount"] == len(items)


async def test_a_note_on_a_complaint(gql, admin_token, staff_factory, customer):
    handler, token = await staff_factory(Role.COMPLAINT_HANDLER)
    complaint = await file(gql, admin_token, customer["id"])
    added = (
        await gql(
            ADD_NOTE,
            {"input": {"subjectId": complaint["id"], "body": "已致电客户说明情况", "visibility": "CUSTOMER"}},
            token=token,
        )
    )["addNote"]
    assert added["errors"] == []
    note = added["note"]
    assert (note["body"], note["visibility"], note["author"]) == (
        "已致电客户说明情况",
        "CUSTOMER",
        {"username": handler.username},
    )
    tracked = (await gql(TRACKING, {"id": complaint["id"]}, token=token))["complaint"]
    assert [n["id"] for n in tracked["notes"]] == [note["id"]]
    assert tracked["events"][-1]["type"] == "NOTE_ADDED"
    assert tracked["events"][-1]["actor"] == {"username": handler.username}
    # It is the customer's note too.
    view = (await gql(CUSTOMER_VIEW, {"id": customer["id"]}, token=admin_token))["customer"]
    assert note["id"] in [n["id"] for n in view["notes"]]
    # A note does not move the complaint.
    after = await fetch(gql, token, complaint["id"])
    assert (after["status"], after["version"]) == ("RECEIVED", complaint["version"])
    blank = (await gql(ADD_NOTE, {"input": {"subjectId": complaint["id"], "body": "  "}}, token=token))["addNote"]
    assert codes(blank) == ["REQUIRED"]
    unknown = (
        await gql(ADD_NOTE, {"input": {"subjectId": to_global_id("Complaint", 999999), "body": "x"}}, token=token)
    )["addNote"]
    assert codes(unknown) == ["NOT_FOUND"]


async def test_a_follow_up_about_a_complaint(gql, admin_token, staff_factory, customer):
    _, token = await staff_factory(Role.COMPLAINT_HANDLER)
    complaint = await file(gql, admin_token, customer["id"])
    created = (
        await gql(
            CREATE_FOLLOW_UP,
            {
                "input": {
                    "title": "调取交易录音",
                    "complaintId": complaint["id"],
                    "department": "RISK",
                    "priority": "HIGH",
                }
            },
            token=token,
        )
    )["createFollowUp"]
    assert created["errors"] == []
    follow_up = created["followUp"]
    assert follow_up["complaint"] == {"id": complaint["id"]}
    assert follow_up["customer"] == {"id": customer["id"]}  # taken from the complaint
    tracked = (await gql(TRACKING, {"id": complaint["id"]}, token=token))["complaint"]
    assert [f["id"] for f in tracked["followUps"]] == [follow_up["id"]]
    assert tracked["followUps"][0]["department"] == "RISK"
    other = await new_customer(gql, admin_token)
    mismatch = (
        await gql(
            CREATE_FOLLOW_UP,
            {"input": {"title": "x", "complaintId": complaint["id"], "customerId": other["id"], "department": "RISK"}},
            token=token,
        )
    )["createFollowUp"]
    assert codes(mismatch) == ["INVALID"]


# ---------------------------------------------------------------- branch scoping


@pytest.mark.parametrize("role", [Role.RELATIONSHIP_MANAGER, Role.SERVICE_AGENT])
async def test_branch_bound_staff_do_not_see_other_branches_complaints(gql, admin_token, staff_factory, role):
    _, token = await staff_factory(role, branch=BEIJING)
    ours_customer = await new_customer(gql, admin_token, branch=BEIJING)
    theirs_customer = await new_customer(gql, admin_token, branch=SHANGHAI_BRANCH)
    ours = await file(gql, admin_token, ours_customer["id"])
    theirs = await file(gql, admin_token, theirs_customer["id"])

    assert (await fetch(gql, token, ours["id"]))["id"] == ours["id"]
    assert await fetch(gql, token, theirs["id"]) is None
    assert (await gql(BY_REFERENCE, {"ref": theirs["referenceNo"]}, token=token))["complaint"] is None
    assert await _ids(gql, token) == [ours["id"]]
    assert await _ids(gql, token, {"branch": SHANGHAI_BRANCH}) == []
    assert await _ids(gql, token, {"customerId": theirs_customer["id"]}) == []
    assert await _ids(gql, token, {"search": theirs["referenceNo"]}) == []
    assert (await gql(NODE, {"id": theirs["id"]}, token=token))["node"] is None
    assert (await gql(NODE, {"id": ours["id"]}, token=token))["node"]["referenceNo"] == ours["referenceNo"]
    assert (await gql(NODES, {"ids": [ours["id"], theirs["id"]]}, token=token))["nodes"] == [{"id": ours["id"]}, None]

    note = (await gql(ADD_NOTE, {"input": {"subjectId": theirs["id"], "body": "看看"}}, token=token))["addNote"]
    assert codes(note) == ["NOT_FOUND"]
    follow_up = (
        await gql(
            CREATE_FOLLOW_UP,
            {"input": {"title": "x", "complaintId": theirs["id"], "department": "COMPLAINTS"}},
            token=token,
        )
    )["createFollowUp"]
    assert codes(follow_up) == ["NOT_FOUND"]
    assert codes(await do(gql, token, "acknowledge", id=theirs["id"])) == ["FORBIDDEN"]  # not a handler anyway
    withdraw = await do(gql, token, "withdraw", **_inputs("withdraw", theirs))
    assert codes(withdraw) == ["FORBIDDEN"]  # withdrawing is part of the workflow, as docs/DOMAIN.md's role table says
    # Nothing happened to it.
    assert (await fetch(gql, admin_token, theirs["id"]))["version"] == theirs["version"]


async def test_bank_wide_roles_see_every_branch(gql, admin_token, staff_factory):
    a = await new_customer(gql, admin_token, branch=BEIJING)
    b = await new_customer(gql, admin_token, branch=SHANGHAI_BRANCH)
    one, two = await file(gql, admin_token, a["id"]), await file(gql, admin_token, b["id"])
    for role in (Role.COMPLAINT_HANDLER, Role.ANALYST, Role.AUDITOR, Role.MANAGER):
        _, token = await staff_factory(role, branch=BEIJING)  # a branch does not bind these roles
        assert set(await _ids(gql, token)) == {one["id"], two["id"]}, role
