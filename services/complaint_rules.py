"""Pure rules of complaint handling (after the 2020 CBIRC complaint-handling measures): the state machine,
the SLA clock, classification and default priority. No I/O but reading the keyword rules once."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from models.complaints import ComplaintCategory, ComplaintEventType, ComplaintReason, ComplaintStatus
from models.customers import Channel
from models.follow_ups import Priority

BANK_TIME = ZoneInfo("Asia/Shanghai")  # reference numbers follow the bank's calendar day
RULES_FILE = Path(__file__).resolve().parent / "data" / "complaint_rules.json"

OPEN = frozenset(
    {
        ComplaintStatus.RECEIVED,
        ComplaintStatus.ACKNOWLEDGED,
        ComplaintStatus.IN_PROGRESS,
        ComplaintStatus.ESCALATED,
        ComplaintStatus.REOPENED,
    }
)
ENDED = frozenset({ComplaintStatus.RESOLVED, ComplaintStatus.CLOSED, ComplaintStatus.WITHDRAWN})
RESOLVED = frozenset({ComplaintStatus.RESOLVED, ComplaintStatus.CLOSED})  # ended with an SLA outcome: MET or MISSED
S = ComplaintStatus


@dataclass(frozen=True)
class Move:
    allowed_from: frozenset[ComplaintStatus]
    to: ComplaintStatus | None  # None: the status stays (assign)
    event: ComplaintEventType


# The only allowed moves; anything else is INVALID_TRANSITION (docs/DOMAIN.md).
MOVES: dict[str, Move] = {
    "acknowledge": Move(frozenset({S.RECEIVED}), S.ACKNOWLEDGED, ComplaintEventType.ACKNOWLEDGED),
    "assign": Move(OPEN, None, ComplaintEventType.ASSIGNED),
    "start": Move(frozenset({S.ACKNOWLEDGED, S.ESCALATED, S.REOPENED}), S.IN_PROGRESS, ComplaintEventType.STARTED),
    "escalate": Move(OPEN, S.ESCALATED, ComplaintEventType.ESCALATED),
    "extend": Move(OPEN, None, ComplaintEventType.DEADLINE_EXTENDED),
    "resolve": Move(frozenset({S.IN_PROGRESS, S.ESCALATED}), S.RESOLVED, ComplaintEventType.RESOLVED),
    "close": Move(frozenset({S.RESOLVED}), S.CLOSED, ComplaintEventType.CLOSED),
    "reopen": Move(frozenset({S.RESOLVED, S.CLOSED}), S.REOPENED, ComplaintEventType.REOPENED),
    "withdraw": Move(OPEN, S.WITHDRAWN, ComplaintEventType.WITHDRAWN),
}

# The past participle of each move, for messages ("A CLOSED complaint cannot be started"): English verbs are
# not all "+d" (reopen, withdraw), so each form is written out.
DONE: dict[str, str] = {
    "acknowledge": "acknowledged",
    "assign": "assigned",
    "start": "started",
    "escalate": "escalated",
    "extend": "extended",
    "resolve": "resolved",
    "close": "closed",
    "reopen": "reopened",
    "withdraw": "withdrawn",
}

BASE_DAYS, EXTENDED_DAYS, MAX_DAYS = 15, 30, 60
AT_RISK_WITHIN = timedelta(days=3)
URGENT_AMOUNT = Decimal(50_000)
RECENT = timedelta(days=90)
SlaStateName = Literal["ON_TRACK", "AT_RISK", "BREACHED", "MET", "MISSED"]  # what sla_state answers


def allowed(move: str, status: ComplaintStatus) -> bool:
    return status in MOVES[move].allowed_from


def refusal(move: str, status: ComplaintStatus) -> str:
    """The INVALID_TRANSITION message of `move` from `status`."""
    return f"A {status.value} complaint cannot be {DONE[move]}"


def due_after(received_at: datetime, extension_count: int) -> datetime:
    days = (BASE_DAYS, EXTENDED_DAYS, MAX_DAYS)[extension_count]
    return received_at + timedelta(days=days)


def sla_state(status: ComplaintStatus, due_at: datetime, ended_at: datetime | None, now: datetime) -> str:
    """ON_TRACK / AT_RISK / BREACHED while open; MET / MISSED once resolved or closed (`ended_at`: when it was
    resolved). A WITHDRAWN complaint was never resolved, so it has no outcome (neither MET nor MISSED, and it
    counts in neither statistic): its clock stopped when it was withdrawn (`ended_at`), and it keeps saying
    whether the deadline had passed by then: BREACHED if so, else ON_TRACK. (The API's `slaState` is non-null
    and has no value for "no outcome", so these two say it.)"""
    if status in OPEN:
        if now > due_at:
            return "BREACHED"
        return "AT_RISK" if due_at - now <= AT_RISK_WITHIN else "ON_TRACK"
    if status == ComplaintStatus.WITHDRAWN:
        return "BREACHED" if ended_at is not None and ended_at > due_at else "ON_TRACK"
    return "MET" if ended_at is not None and ended_at <= due_at else "MISSED"


def reference_no(day_in_bank_time, number: int) -> str:
    return f"CMP-{day_in_bank_time:%Y%m%d}-{number:06d}"


@cache
def _rules() -> dict[str, list[dict]]:
    return json.loads(RULES_FILE.read_text(encoding="utf-8"))


@cache
def _pattern(keyword: str) -> re.Pattern[str]:
    """Latin keywords match whole words and their inflections ("fund" is not in "refund", "fee" not in
    "feedback", but "crash" is in "crashes"); Chinese ones match anywhere."""
    escaped = re.escape(keyword.lower())
    if not keyword.isascii():
        return re.compile(escaped)
    return re.compile(rf"(?<![a-z0-9]){escaped}(?:s|es|ed|d|ing)?(?![a-z0-9])")


def _best(rules: list[dict], text: str) -> str | None:
    best, best_hits = None, 0
    for rule in rules:
        hits = sum(len(_pattern(keyword).findall(text)) for keyword in rule["keywords"])
        if hits > best_hits:
            best, best_hits = rule["value"], hits
    return best


def classify(summary: str, description: str) -> tuple[ComplaintCategory, ComplaintReason]:
    text = f"{summary}\n{description}".lower()
    rules = _rules()
    return (
        ComplaintCategory(_best(rules["category"], text) or "OTHER"),
        ComplaintReason(_best(rules["reason"], text) or "OTHER"),
    )


PRIORITY_RANK = {Priority.LOW: 1, Priority.NORMAL: 2, Priority.HIGH: 3, Priority.URGENT: 4}


def default_priority(
    reason: ComplaintReason, channel: Channel, amount: Decimal | None, recent_complaints: int
) -> Priority:
    if (
        reason == ComplaintReason.FUNDS_SECURITY
        or channel == Channel.REGULATOR
        or (amount is not None and amount >= URGENT_AMOUNT)
    ):
        return Priority.URGENT
    return Priority.HIGH if recent_complaints >= 2 else Priority.NORMAL
