"""Surveys (docs/DOMAIN.md "Surveys and notifications"): templates, invitations with their suppression rules, the
customer's answer through the link, and what an answer sets off.

Templates
- `create_template` validates everything at once (DomainErrors with paths such as ["questions", "2", "key"]):
  a name (≤ 200), 1..30 questions with unique keys (letters, digits, "_", starting with a letter, ≤ 40; unique
  ignoring case), a text (≤ 500) each; SINGLE_CHOICE and MULTI_CHOICE need 2..20 unique, non-empty options
  (≤ 100 each), other types take none; the ranges are the types' own (NPS 0..10, RATING 1..5). At most one NPS
  question (a response has one npsScore); kind NPS needs it, kind CSAT needs a RATING question. validDays
  1..365, default 14. The questions never change afterwards (`update_template`: name, active, validDays).
- `ready_made()` (run by `crm migrate`) ships an NPS survey and the post-complaint CSAT survey (trigger
  COMPLAINT_CLOSED), once each by their `ready_made` key: renaming or retiring one sticks.

Invitations (`invite` for one customer, `invite_many` for a campaign's batch; both go through `plan`)
- An inactive template sends nothing (INVALID); a requested channel other than EMAIL or SMS is INVALID (only
  they carry a link).
- Channel: the requested one; else the first of (the customer's preferred channel when it is EMAIL or SMS,
  EMAIL, SMS) that has an address and SURVEY consent; when none has both, the first with consent (the
  invitation is suppressed: no address) or else the first with an address (suppressed: no consent).
- SUPPRESSED, with `suppressed_reason`, checked in this order: the customer is CLOSED or ERASED; SURVEY consent
  is revoked for the channel (services.consents); the channel has no address (no e-mail, no phone); the
  customer got another invitation in the last 30 days. The 30-day rule counts every invitation created less
  than 30 days (`RECENT`) before now that was not SUPPRESSED (sent, pending, failed, expired or answered)
  and is not a complaint survey. A complaint survey (an invitation with a complaint) is never suppressed by
  the rule and never counts against it; the other rules apply to it as to any survey. A suppressed
  invitation is kept (it says why nobody was asked) and has no token.
- Not suppressed: a token of 256 random bits (`secrets.token_urlsafe(32)`) of which only the SHA-256 is
  stored, `expires_at` = now + the template's validDays, and the notification (services.notifications) with
  the link `CRM_PUBLIC_SURVEY_URL` + token, written in the same transaction as the invitation. The outbox
  row needs the link until it is sent: once the notification is SENT the token is cut out of its stored body,
  so that afterwards no column holds it (a FAILED one keeps it for `retryNotification`).
- The notification's outcome sets the invitation SENT (`sent_at`) or DELIVERY_FAILED, with its attempts and
  last error. Shown status (`effective_status`, and the `status` filter in SQL): an invitation with a link
  (PENDING, SENT, DELIVERY_FAILED) is EXPIRED from its `expires_at` on; RESPONDED and SUPPRESSED stay.
- The post-complaint survey: when a complaint is CLOSED (services.complaints.on_closed, inside the closing
  transaction), the newest active COMPLAINT_CLOSED template is sent, once per complaint ever: the
  complaint's `survey_sent` flag is claimed first and the invitation's one-to-one complaint key backs it up,
  so closing it again after a reopen sends nothing. With no such template nothing happens (and nothing is
  claimed). A failure of the survey never stops the complaint from closing (it is logged).
- The post-consultation survey: when a consultation (an INQUIRY interaction) is resolved, or logged resolved
  with its outcome (services.interactions.on_resolved, inside that transaction), the newest active
  INTERACTION_RESOLVED template is sent to its customer, under every rule of any survey (the 30-day rule
  included: a customer who consults often is asked at most once a month). A consultation is resolved once, so
  it is asked about once. With no such template nothing happens; a failure never stops the resolving.

The customer's side (public, rate-limited per IP and per token with services.limits)
- `public_survey(token, ip=...)`: what the link shows, or None for an unknown token.
- `submit(token, answers, comment, ip=...)`: validates every answer (paths ["answers", <questionKey>]),
  stores the response once (a second one is DUPLICATE, also when two arrive at once: the one-to-one
  invitation key), computes the NPS score and category and CSAT (the mean of the RATING answers), opens the
  recovery follow-up for a detractor (NPS ≤ 6) or any rating ≤ 2 (the customer's relationship manager, else
  the CALL_CENTER department, due in 2 days), marks the invitation RESPONDED and the portrait stale. It runs
  its own transaction, after the rate limits have counted the attempt (their counts survive a rejection).

Settings: CRM_PUBLIC_SURVEY_URL (`SurveySettings`), the base of the link. The default is the app's own survey
page on a developer's machine, http://127.0.0.1:8000/s/: the service does not know the host it is reached
at, so production must set it (e.g. https://crm.bank.example/s/). A service reads it with `current_settings()`:
from the settings the process runs with (core.settings.active: the app's, a worker's, the command line's).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q, Subquery
from tortoise.queryset import QuerySet

from core.db import atomic
from core.settings import SettingsError, active, section
from core.sql import insert_returning_ids, update_each
from models.complaints import Complaint
from models.customers import Channel, ConsentPurpose, Customer, CustomerKind, CustomerStatus, Gender
from models.follow_ups import FollowUp, Priority
from models.interactions import Interaction
from models.notifications import Notification, NotificationStatus
from models.staff import Department, Staff
from models.surveys import (
    InvitationStatus,
    NpsCategory,
    QuestionType,
    SurveyInvitation,
    SurveyKind,
    SurveyResponse,
    SurveyTemplate,
    SurveyTrigger,
)
from services import (
    access,
    clock,
    complaints,
    consents,
    customer_relations,
    customers,
    follow_ups,
    interactions,
    limits,
    notifications,
    portraits,
    timeline,
)
from services.access import Caller, require_role
from services.complaint_rules import BANK_TIME
from services.errors import DomainError, DomainErrors, ErrorCode, invalid, not_found
from services.filters import FilterParams

log = logging.getLogger(__name__)

MAX_NAME, MAX_QUESTION_TEXT, MAX_QUESTIONS = 200, 500, 30
MAX_OPTIONS, MAX_OPTION = 20, 100
MAX_TEXT_ANSWER, MAX_COMMENT = 2_000, 2_000
MIN_VALID_DAYS, MAX_VALID_DAYS, DEFAULT_VALID_DAYS = 1, 365, 14
KEY_SHAPE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
CHOICE_TYPES = frozenset({QuestionType.SINGLE_CHOICE, QuestionType.MULTI_CHOICE})
SCALES = {QuestionType.NPS: (0, 10), QuestionType.RATING: (1, 5)}

LINK_CHANNELS = (Channel.EMAIL, Channel.SMS)  # the channels that carry a link
RECENT = timedelta(days=30)  # one survey per customer per 30 days, complaint surveys excepted
LINKED = (InvitationStatus.PENDING, InvitationStatus.SENT, InvitationStatus.DELIVERY_FAILED)

# A token as handed out (token_urlsafe(32): 43 characters); anything else is not looked up.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,128}")
TOKEN_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")
TOKEN_REMOVED = "[link removed after sending]"

# Rate limits of the public side: (hits, window) per key.

DETRACTOR_MAX, PASSIVE_MAX = 6, 8  # NPS 0-6 detractor, 7-8 passive, 9-10 promoter
LOW_RATING = 2  # a rating of 2 or less opens the recovery follow-up, as a detractor does
RECOVERY_DUE = timedelta(days=2)
RECOVERY_DEPARTMENT = Department.CALL_CENTER

# Compound surnames, for the polite form of a name ("欧阳先生", not "欧先生").
COMPOUND_SURNAMES = frozenset(
    {
        "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙",
        "宇文", "司徒", "令狐", "夏侯", "轩辕", "端木", "独孤", "南宫", "西门", "呼延",
    }
)  # fmt: skip


# ---------------------------------------------------------------- settings


@section
@dataclass(frozen=True)
class SurveySettings:
    # CRM_PUBLIC_SURVEY_URL: the link in an invitation is this + the token. The default is the app's own page
    # on a developer's machine; production must set the address customers reach it at.
    public_survey_url: str = "http://127.0.0.1:8000/s/"

    def check(self) -> None:
        url = urlparse(self.public_survey_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise SettingsError("CRM_PUBLIC_SURVEY_URL must be an http:// or https:// URL, e.g. https://crm.example/s/")

    def link(self, token: str) -> str:
        base = self.public_survey_url
        return base + token if base.endswith(("/", "=")) else f"{base}/{token}"


def current_settings() -> SurveySettings:
    """The process's survey settings (CRM_PUBLIC_SURVEY_URL)."""
    return active().of(SurveySettings)


# ---------------------------------------------------------------- templates


@dataclass(frozen=True)
class Question:
    key: str
    text: str
    type: QuestionType
    required: bool
    options: tuple[str, ...]


def questions_of(template: SurveyTemplate) -> list[Question]:
    return [
        Question(q["key"], q["text"], QuestionType(q["type"]), bool(q["required"]), tuple(q.get("options") or ()))
        for q in template.questions
    ]


def _clean_name(name: str | None, errors: list[DomainError]) -> str | None:
    text = (name or "").strip()
    if not text:
        errors.append(DomainError(ErrorCode.REQUIRED, "name is required", "name"))
        return None
    if len(text) > MAX_NAME:
        errors.append(invalid("name", f"name must be at most {MAX_NAME} characters"))
        return None
    return text


def _check_valid_days(valid_days: int, errors: list[DomainError]) -> None:
    if not MIN_VALID_DAYS <= valid_days <= MAX_VALID_DAYS:
        errors.append(invalid("validDays", f"validDays must be between {MIN_VALID_DAYS} and {MAX_VALID_DAYS}"))


def _check_options(options: Sequence[Any] | None, path: list[str], errors: list[DomainError]) -> list[str]:
    cleaned = [str(o).strip() for o in options or []]
    if len(cleaned) < 2:
        errors.append(DomainError(ErrorCode.REQUIRED, "A choice question needs at least 2 options", path))
    elif len(cleaned) > MAX_OPTIONS:
        errors.append(invalid(path, f"A question may have at most {MAX_OPTIONS} options"))
    if any(not o for o in cleaned):
        errors.append(invalid(path, "Options must not be empty"))
    if any(len(o) > MAX_OPTION for o in cleaned):
        errors.append(invalid(path, f"Each option must be at most {MAX_OPTION} characters"))
    if len(set(cleaned)) != len(cleaned):
        errors.append(DomainError(ErrorCode.DUPLICATE, "Each option may appear once", path))
    return cleaned


def check_questions(questions: Sequence[dict], kind: SurveyKind, errors: list[DomainError]) -> list[dict]:
    """The questions as stored ({key, text, type, required, options}); problems go to `errors`."""
    if not questions:
        errors.append(DomainError(ErrorCode.REQUIRED, "A survey needs at least one question", "questions"))
        return []
    if len(questions) > MAX_QUESTIONS:
        errors.append(invalid("questions", f"A survey may have at most {MAX_QUESTIONS} questions"))
        return []
    cleaned: list[dict] = []
    seen: set[str] = set()
    for index, question in enumerate(questions):
        path = ["questions", str(index)]
        key = (question.get("key") or "").strip()
        if not key:
            errors.append(DomainError(ErrorCode.REQUIRED, "Every question needs a key", [*path, "key"]))
        elif not KEY_SHAPE.fullmatch(key):
            errors.append(
                invalid(
                    [*path, "key"],
                    "A question key is 1 to 40 letters, digits or _ and starts with a letter, e.g. nps or speed_2",
                )
            )
        elif key.lower() in seen:
            errors.append(DomainError(ErrorCode.DUPLICATE, f"The question key {key} appears twice", [*path, "key"]))
        seen.add(key.lower())
        text = (question.get("text") or "").strip()
        if not text:
            errors.append(DomainError(ErrorCode.REQUIRED, "Every question needs a text", [*path, "text"]))
        elif len(text) > MAX_QUESTION_TEXT:
            errors.append(invalid([*path, "text"], f"A question's text must be at most {MAX_QUESTION_TEXT} characters"))
        question_type = QuestionType(question["type"])
        options: list[str] = []
        if question_type in CHOICE_TYPES:
            options = _check_options(question.get("options"), [*path, "options"], errors)
        elif question.get("options"):
            errors.append(invalid([*path, "options"], f"A {question_type.value} question has no options"))
        required = question.get("required")
        cleaned.append(
            {
                "key": key,
                "text": text,
                "type": question_type.value,
                "required": True if required is None else bool(required),
                "options": options,
            }
        )
    types = [q["type"] for q in cleaned]
    if types.count(QuestionType.NPS.value) > 1:
        errors.append(invalid("questions", "A survey may have one NPS question (a response has one NPS score)"))
    if kind == SurveyKind.NPS and QuestionType.NPS.value not in types:
        errors.append(invalid("questions", "An NPS survey needs an NPS question (0 to 10)"))
    if kind == SurveyKind.CSAT and QuestionType.RATING.value not in types:
        errors.append(invalid("questions", "A CSAT survey needs a RATING question (1 to 5)"))
    return cleaned


def templates(caller: Caller) -> QuerySet[SurveyTemplate]:
    require_role(caller, access.SURVEY_READERS)
    return SurveyTemplate.all()


def may_read(caller: Caller) -> bool:
    return caller.operator or caller.role in access.SURVEY_READERS


async def get_template(caller: Caller, template_id: int, field: str | list[str] = "id") -> SurveyTemplate:
    template = await templates(caller).get_or_none(id=template_id)
    if template is None:
        raise not_found("Survey template", field)
    return template


async def create_template(
    caller: Caller,
    *,
    name: str,
    kind: SurveyKind,
    questions: Sequence[dict],
    trigger: SurveyTrigger | None = None,
    valid_days: int | None = None,
) -> SurveyTemplate:
    """`questions`: [{key, text, type, required?, options?}]."""
    staff = require_role(caller, access.SURVEY_TEMPLATE_EDITORS)
    errors: list[DomainError] = []
    clean_name = _clean_name(name, errors)
    days = DEFAULT_VALID_DAYS if valid_days is None else valid_days
    _check_valid_days(days, errors)
    cleaned = check_questions(questions, kind, errors)
    if errors:
        raise DomainErrors(errors)
    return await SurveyTemplate.create(
        name=clean_name,
        kind=kind,
        trigger=trigger or SurveyTrigger.MANUAL,
        questions=cleaned,
        valid_days=days,
        created_by=staff,
        created_at=clock.now(),
    )


async def update_template(
    caller: Caller,
    template_id: int,
    *,
    name: str | None = None,
    active: bool | None = None,
    valid_days: int | None = None,
) -> SurveyTemplate:
    """Name, active and validDays (None: unchanged); never the questions, so that answers stay comparable."""
    require_role(caller, access.SURVEY_TEMPLATE_EDITORS)
    template = await get_template(caller, template_id)
    errors: list[DomainError] = []
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = _clean_name(name, errors)
    if valid_days is not None:
        _check_valid_days(valid_days, errors)
        changes["valid_days"] = valid_days
    if active is not None:
        changes["active"] = active
    if errors:
        raise DomainErrors(errors)
    if changes:
        await SurveyTemplate.filter(id=template.id).update(**changes)
    return await SurveyTemplate.get(id=template.id)


async def trigger_template(trigger: SurveyTrigger) -> SurveyTemplate | None:
    """The template an event sends: the newest active one with that trigger."""
    return await SurveyTemplate.filter(trigger=trigger, active=True).order_by("-created_at", "-id").first()


READY_MADE = {
    "nps": {
        "name": "客户推荐度调查（NPS）",
        "kind": SurveyKind.NPS,
        "trigger": SurveyTrigger.MANUAL,
        "questions": [
            {"key": "nps", "text": "您有多大可能向亲友推荐我行？", "type": "NPS", "required": True},
            {"key": "reason", "text": "您给出这个分数的主要原因是什么？", "type": "TEXT", "required": False},
        ],
    },
    "complaint_csat": {
        "name": "投诉处理满意度调查",
        "kind": SurveyKind.CSAT,
        "trigger": SurveyTrigger.COMPLAINT_CLOSED,
        "questions": [
            {"key": "satisfaction", "text": "您对本次投诉的处理结果是否满意？", "type": "RATING", "required": True},
            {"key": "speed", "text": "您对投诉的处理速度是否满意？", "type": "RATING", "required": True},
            {
                "key": "resolved",
                "text": "问题是否已解决？",
                "type": "SINGLE_CHOICE",
                "required": True,
                "options": ["已解决", "部分解决", "未解决"],
            },
            {"key": "suggestion", "text": "您对我们还有什么意见或建议？", "type": "TEXT", "required": False},
        ],
    },
}


async def ready_made() -> list[SurveyTemplate]:
    """The templates the service ships, created once each (by their `ready_made` key; `crm migrate` runs this
    every time): a template renamed or retired since stays as it is. Returns the ones created now."""
    created = []
    for key, spec in READY_MADE.items():
        if await SurveyTemplate.exists(ready_made=key):
            continue
        errors: list[DomainError] = []
        questions = check_questions(spec["questions"], spec["kind"], errors)
        if errors:  # our own data: a mistake here is a bug
            raise DomainErrors(errors)
        try:
            async with atomic():
                template = await SurveyTemplate.create(
                    name=spec["name"],
                    kind=spec["kind"],
                    trigger=spec["trigger"],
                    questions=questions,
                    valid_days=DEFAULT_VALID_DAYS,
                    ready_made=key,
                    created_at=clock.now(),
                )
        except IntegrityError:  # another migrate made it meanwhile
            continue
        created.append(template)
    return created


# ---------------------------------------------------------------- invitations: who is asked, on which channel


@dataclass(frozen=True)
class Plan:
    """What inviting one customer comes to: the channel and address, or why nobody is asked."""

    customer_id: int
    channel: Channel
    recipient: str | None
    reason: str | None  # None: send; else the suppressedReason


def _address(customer: Customer, channel: Channel) -> str | None:
    value = customer.email if channel == Channel.EMAIL else customer.phone
    return (value or "").strip() or None


def _no_address(channel: Channel) -> str:
    what = "e-mail address" if channel == Channel.EMAIL else "mobile number"
    return f"No {what} on file for {channel.value}"


def _no_consent(channel: Channel) -> str:
    return f"SURVEY consent is revoked for {channel.value}"


def _candidates(customer: Customer) -> list[Channel]:
    preferred = [customer.preferred_channel] if customer.preferred_channel in LINK_CHANNELS else []
    return list(dict.fromkeys([*preferred, *LINK_CHANNELS]))


def _choose(customer: Customer, requested: Channel | None, consented: dict[Channel, set[int]]) -> Plan:
    def plan(channel: Channel, reason: str | None = None) -> Plan:
        return Plan(customer.id, channel, None if reason else _address(customer, channel), reason)

    if customer.status in (CustomerStatus.CLOSED, CustomerStatus.ERASED):
        return plan(requested or _candidates(customer)[0], f"The customer is {customer.status.value}")
    if requested is not None:
        if customer.id not in consented[requested]:
            return plan(requested, _no_consent(requested))
        if _address(customer, requested) is None:
            return plan(requested, _no_address(requested))
        return plan(requested)
    candidates = _candidates(customer)
    allowed = [c for c in candidates if customer.id in consented[c]]
    if not allowed:
        reachable = [c for c in candidates if _address(customer, c)]
        channel = (reachable or candidates)[0]
        return plan(channel, _no_consent(channel))
    usable = [c for c in allowed if _address(customer, c)]
    if not usable:
        reason = _no_address(allowed[0]) if len(allowed) == 1 else "No e-mail address or mobile number on file"
        return plan(allowed[0], reason)
    return plan(usable[0])


async def recently_surveyed(customer_ids: Iterable[int], now: datetime | None = None) -> dict[int, datetime]:
    """Customer id -> the time of their latest invitation that counts for the 30-day rule (see the module
    docstring), for those that have one; one query."""
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    since = (now or clock.now()) - RECENT
    rows = await (
        SurveyInvitation.filter(customer_id__in=ids, complaint_id__isnull=True, created_at__gt=since)
        .exclude(status=InvitationStatus.SUPPRESSED)
        .values_list("customer_id", "created_at")
    )
    latest: dict[int, datetime] = {}
    for customer_id, at in rows:
        if customer_id not in latest or at > latest[customer_id]:
            latest[customer_id] = at
    return latest


def _check_channel(channel: Channel | None) -> None:
    if channel is not None and channel not in LINK_CHANNELS:
        raise invalid("channel", f"A survey goes by EMAIL or SMS (they carry its link), not {channel.value}")


def _check_template(template: SurveyTemplate) -> None:
    if not template.active:
        raise invalid("templateId", f"The survey template {template.name} is inactive: it sends nothing")


async def plan(
    template: SurveyTemplate,
    customers_: Sequence[Customer],
    channel: Channel | None = None,
    *,
    complaint_survey: bool = False,
) -> dict[int, Plan]:
    """The channel, address and suppression of each customer, in a constant number of queries (consents: one
    per candidate channel; the 30-day rule: one). `complaint_survey`: the 30-day rule does not apply."""
    _check_template(template)
    _check_channel(channel)
    ids = [c.id for c in customers_]
    consented = {
        c: await consents.granted_for(ids, ConsentPurpose.SURVEY, c) for c in ([channel] if channel else LINK_CHANNELS)
    }
    recent = {} if complaint_survey else await recently_surveyed(ids)
    plans: dict[int, Plan] = {}
    for customer in customers_:
        chosen = _choose(customer, channel, consented)
        if chosen.reason is None and customer.id in recent:
            at = recent[customer.id].astimezone(BANK_TIME)
            reason = f"Got another survey on {at:%Y-%m-%d} (one per {RECENT.days} days)"
            chosen = Plan(customer.id, chosen.channel, None, reason)
        plans[customer.id] = chosen
    return plans


async def suppression_reasons(
    template: SurveyTemplate, customers_: Sequence[Customer], channel: Channel | None = None
) -> dict[int, str | None]:
    """Customer id -> why they would not be asked (None: they would be), as `plan`."""
    return {pk: p.reason for pk, p in (await plan(template, customers_, channel)).items()}


# ---------------------------------------------------------------- invitations: writing them


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def display_name(customer: Customer) -> str:
    """A polite form that never shows the whole name: 王先生, 欧阳女士, 王** (gender unknown), 北京****
    (an organisation), S*** (a Latin name); 尊敬的客户 when there is nothing to go on."""
    name = (customer.name or "").strip()
    if not name or customer.status == CustomerStatus.ERASED:
        return "尊敬的客户"
    if customer.kind == CustomerKind.CORPORATE:
        return name[:2] + "****"
    if not re.match(r"[\u4e00-\u9fff]", name):
        return name[0].upper() + "***"
    surname = name[:2] if name[:2] in COMPOUND_SURNAMES and len(name) > 2 else name[0]
    if customer.gender == Gender.MALE:
        return surname + "先生"
    if customer.gender == Gender.FEMALE:
        return surname + "女士"
    return surname + "*" * max(1, len(name) - len(surname))


def _message(
    template: SurveyTemplate, customer: Customer, channel: Channel, link: str, expires_at: datetime, complaint
) -> tuple[str | None, str]:
    """(subject, body) of the invitation, in Chinese."""
    until = expires_at.astimezone(BANK_TIME)
    about = f"关于您的投诉（{complaint.reference_no}）的处理，" if complaint is not None else ""
    if channel == Channel.SMS:
        body = f"{display_name(customer)}您好，{about}诚邀您参加「{template.name}」：{link} （{until:%m月%d日}前有效）"
        return None, body
    body = (
        f"{display_name(customer)}您好：\n\n"
        f"感谢您选择我行。{about}诚邀您参加「{template.name}」，只需一两分钟，您的意见对我们很重要。\n\n"
        f"请点击以下链接作答（{until:%Y年%m月%d日 %H:%M}前有效）：\n{link}\n\n"
        "此链接仅供您本人使用，请勿转发。"
    )
    return f"诚邀您参加{template.name}", body


async def _write(
    template: SurveyTemplate,
    invited: Sequence[tuple[Customer, Plan]],
    *,
    complaint: Complaint | None,
    campaign_id: int | None,
    sender: Staff | None,
    settings: SurveySettings,
) -> list[SurveyInvitation]:
    """The invitations (and the notifications of those not suppressed) of these customers, in a savepoint, in a
    constant number of statements: a unique key that another writer took first (the complaint's survey, the
    campaign's customer) raises IntegrityError with nothing written."""
    now = clock.now()
    expires_at = now + timedelta(days=template.valid_days)
    invitations: list[SurveyInvitation] = []
    drafts: list[tuple[SurveyInvitation, Notification]] = []
    for customer, chosen in invited:
        invitation = SurveyInvitation(
            template=template,
            customer=customer,
            complaint=complaint,
            campaign_id=campaign_id,
            channel=chosen.channel,
            expires_at=expires_at,
            created_by=sender,
            created_at=now,
        )
        if chosen.reason is not None:
            invitation.status, invitation.suppressed_reason = InvitationStatus.SUPPRESSED, chosen.reason[:200]
        else:
            token = secrets.token_urlsafe(32)
            invitation.status, invitation.token_hash = InvitationStatus.PENDING, hash_token(token)
            subject, body = _message(template, customer, chosen.channel, settings.link(token), expires_at, complaint)
            notification = notifications.draft(
                chosen.channel,
                chosen.recipient or "",
                body,
                subject=subject,
                customer_id=customer.id,
                complaint_id=complaint.id if complaint is not None else None,
            )
            drafts.append((invitation, notification))
        invitations.append(invitation)
    written = [notification for _, notification in drafts]
    async with atomic():
        await notifications.write_many(written)
        for invitation, notification in drafts:
            invitation.notification_id = notification.id
        await insert_returning_ids(invitations)
    notifications.announce(written)  # only once nothing was refused: a refused write leaves nothing to send
    return invitations


async def invite(
    template: SurveyTemplate,
    customer: Customer,
    *,
    channel: Channel | None = None,
    complaint: Complaint | None = None,
    campaign_id: int | None = None,
    sender: Staff | None = None,
) -> SurveyInvitation:
    """Invite one customer (or record why not: SUPPRESSED). No role or visibility check: the caller's. INVALID
    for an inactive template or a channel without links; DUPLICATE when the complaint already has its survey
    or the campaign already invited the customer. Joins the surrounding transaction."""
    if complaint is not None and complaint.customer_id != customer.id:
        raise invalid("complaintId", "The complaint is another customer's")
    chosen = (await plan(template, [customer], channel, complaint_survey=complaint is not None))[customer.id]
    try:
        [invitation] = await _write(
            template,
            [(customer, chosen)],
            complaint=complaint,
            campaign_id=campaign_id,
            sender=sender,
            settings=current_settings(),
        )
    except IntegrityError:
        if complaint is not None and await SurveyInvitation.exists(complaint_id=complaint.id):
            raise DomainError(ErrorCode.DUPLICATE, "This complaint has had its survey already", "complaintId") from None
        if campaign_id is not None:
            raise DomainError(
                ErrorCode.DUPLICATE, "This campaign has invited the customer already", "customerId"
            ) from None
        raise
    return invitation


async def invite_many(
    template: SurveyTemplate,
    customers_: Sequence[Customer],
    *,
    campaign_id: int,
    channel: Channel | None = None,
    sender: Staff | None = None,
) -> list[SurveyInvitation]:
    """A campaign's batch: every customer passes the same rules as `invite`, planned in a constant number of
    queries and written with a constant number of statements. Customers this campaign invited already (a
    re-delivered batch, or two workers on one batch) are skipped, found first in one query and, in a race, by
    the (campaign, customer) unique key: then the batch is written again one customer at a time, skipping
    those taken. Nobody is invited twice. Returns the invitations written now (suppressed ones included).
    Joins the surrounding transaction."""
    _check_template(template)
    _check_channel(channel)
    unique = list({c.id: c for c in customers_}.values())
    done = set(
        await SurveyInvitation.filter(campaign_id=campaign_id, customer_id__in=[c.id for c in unique]).values_list(
            "customer_id", flat=True
        )
    )
    todo = [c for c in unique if c.id not in done]
    plans = await plan(template, todo, channel)
    settings = current_settings()
    invited = [(customer, plans[customer.id]) for customer in todo]
    write = functools.partial(
        _write, template, complaint=None, campaign_id=campaign_id, sender=sender, settings=settings
    )
    try:
        return await write(invited)
    except IntegrityError:
        pass  # another delivery of this batch invited some of them first
    written = []
    for one in invited:
        try:
            written += await write([one])
        except IntegrityError:
            continue
    return written


async def send(
    caller: Caller,
    template_id: int,
    customer_id: int,
    *,
    channel: Channel | None = None,
    complaint_id: int | None = None,
) -> SurveyInvitation:
    """`sendSurvey`: one customer the caller may see, optionally about one of their complaints."""
    staff = require_role(caller, access.SURVEY_SENDERS)
    template = await get_template(caller, template_id, "templateId")
    _check_template(template)
    _check_channel(channel)
    customer = await customers.get(caller, customer_id, "customerId")
    complaint = None
    if complaint_id is not None:
        complaint = await complaints.get(caller, complaint_id, "complaintId")
        if complaint.customer_id != customer.id:
            raise invalid("complaintId", "The complaint is another customer's")
        if complaint.survey_sent or await SurveyInvitation.exists(complaint_id=complaint.id):
            raise DomainError(ErrorCode.DUPLICATE, "This complaint has had its survey already", "complaintId")
    invitation = await invite(template, customer, channel=channel, complaint=complaint, sender=staff)
    if complaint is not None:
        await Complaint.filter(id=complaint.id).update(survey_sent=True)
    return invitation


async def _after_complaint_closed(complaint: Complaint) -> None:
    """The post-complaint survey, once per complaint ever (see the module docstring)."""
    if complaint.survey_sent:
        return
    template = await trigger_template(SurveyTrigger.COMPLAINT_CLOSED)
    if template is None:
        return
    try:
        async with atomic():
            if not await Complaint.filter(id=complaint.id, survey_sent=False).update(survey_sent=True):
                return
            customer = await Customer.get(id=complaint.customer_id)
            await invite(template, customer, complaint=complaint)
    except (DomainError, IntegrityError) as error:  # the complaint closes all the same
        log.warning("no survey for complaint %s: %s", complaint.reference_no, error)


complaints.on_closed(_after_complaint_closed)


async def _after_consultation_resolved(interaction: Interaction) -> None:
    """The post-consultation survey (see the module docstring)."""
    template = await trigger_template(SurveyTrigger.INTERACTION_RESOLVED)
    if template is None:
        return
    try:
        async with atomic():
            customer = await Customer.get(id=interaction.customer_id)
            await invite(template, customer)
    except (DomainError, IntegrityError) as error:  # the consultation is resolved all the same
        log.warning("no survey for consultation %s: %s", interaction.id, error)


interactions.on_resolved(_after_consultation_resolved)


# ---------------------------------------------------------------- invitations: delivery and status


def effective_status(invitation: SurveyInvitation, now: datetime | None = None) -> InvitationStatus:
    """The status shown: one with a link is EXPIRED from its expires_at on (agrees with `status_condition`)."""
    if invitation.status in LINKED and invitation.expires_at <= (now or clock.now()):
        return InvitationStatus.EXPIRED
    return invitation.status


def status_condition(status: InvitationStatus, now: datetime) -> Q:
    """The SQL form of `effective_status(...) == status`."""
    if status == InvitationStatus.EXPIRED:
        return Q(status__in=list(LINKED), expires_at__lte=now)
    if status in LINKED:
        return Q(status=status, expires_at__gt=now)
    return Q(status=status)


def _without_token(body: str, token_hash: str) -> str:
    return TOKEN_IN_TEXT.sub(lambda m: TOKEN_REMOVED if hash_token(m.group(0)) == token_hash else m.group(0), body)


async def _notification_outcomes(recorded: Sequence[Notification]) -> None:
    """Surveys' notifications were SENT or FAILED (services.notifications.on_outcome, in their transaction): their
    invitations follow, with a statement per outcome; a sent link's token is cut out of the stored body."""
    by_notification = {n.id: n for n in recorded}
    invitations = await SurveyInvitation.filter(notification_id__in=list(by_notification))
    groups: dict[tuple[bool, int, str | None, datetime | None], list[int]] = {}
    scrubbed: list[Notification] = []
    for invitation in invitations:
        notification = by_notification[invitation.notification_id]
        sent = notification.status == NotificationStatus.SENT
        key = (
            sent,
            notification.attempts,
            None if sent else notification.last_error,
            (notification.sent_at or clock.now()) if sent else None,
        )
        groups.setdefault(key, []).append(invitation.id)
        if sent and invitation.token_hash:
            body = _without_token(notification.body, invitation.token_hash)
            if body != notification.body:
                notification.body = body
                scrubbed.append(notification)
    for (sent, attempts, last_error, sent_at), ids in groups.items():
        changes: dict[str, Any] = {"attempts": attempts, "last_error": last_error}
        if sent:
            changes["sent_at"] = sent_at
        new_status = InvitationStatus.SENT if sent else InvitationStatus.DELIVERY_FAILED
        linked = await SurveyInvitation.filter(id__in=ids, status__in=list(LINKED)).update(**changes, status=new_status)
        if linked < len(ids):  # answered (or suppressed) meanwhile: the status stays, the delivery facts are kept
            await SurveyInvitation.filter(id__in=ids).exclude(status__in=list(LINKED)).update(**changes)
    await update_each(Notification, "body", {n.id: n.body for n in scrubbed})


notifications.on_outcome(_notification_outcomes)
notifications.hide_in_body(TOKEN_IN_TEXT)


# ---------------------------------------------------------------- reading


def visible_invitations(caller: Caller) -> QuerySet[SurveyInvitation]:
    require_role(caller, access.SURVEY_READERS)
    if customers.home_branch(caller) is None:
        return SurveyInvitation.all()
    return SurveyInvitation.filter(customer_id__in=Subquery(customers.visible(caller).values("id")))


def visible_responses(caller: Caller) -> QuerySet[SurveyResponse]:
    require_role(caller, access.SURVEY_READERS)
    if customers.home_branch(caller) is None:
        return SurveyResponse.all()
    return SurveyResponse.filter(customer_id__in=Subquery(customers.visible(caller).values("id")))


@dataclass
class InvitationFilter(FilterParams):
    template_id: int | None = None
    customer_id: int | None = None
    campaign_id: int | None = None
    status: list[InvitationStatus] | None = None


def apply_filter(
    qs: QuerySet[SurveyInvitation], f: InvitationFilter, now: datetime | None = None
) -> QuerySet[SurveyInvitation]:
    if f.template_id is not None:
        qs = qs.filter(template_id=f.template_id)
    if f.customer_id is not None:
        qs = qs.filter(customer_id=f.customer_id)
    if f.campaign_id is not None:
        qs = qs.filter(campaign_id=f.campaign_id)
    if f.status:
        at = now or clock.now()
        qs = qs.filter(Q(*[status_condition(s, at) for s in f.status], join_type=Q.OR))
    return qs


# ---------------------------------------------------------------- the customer's side


@dataclass(frozen=True)
class PublicSurvey:
    """What the link shows. `expired` and `already_answered` say why it can no longer be answered."""

    title: str
    questions: list[Question]
    customer_display_name: str
    expires_at: datetime
    already_answered: bool
    expired: bool


@dataclass(frozen=True)
class Answer:
    """One answer as a form or the API gives it; only the field of the question's type is read: `number` for
    NPS and RATING (a whole number; "7" is accepted), `choices` for SINGLE_CHOICE and MULTI_CHOICE, `text` for
    TEXT. A dict with the same keys ("question_key" or "questionKey") is accepted too."""

    question_key: str
    number: float | int | str | None = None
    text: str | None = None
    choices: Sequence[str] | None = None

    @classmethod
    def of(cls, value: Answer | dict) -> Answer:
        if isinstance(value, Answer):
            return value
        key = value.get("question_key", value.get("questionKey"))
        return cls(str(key or ""), value.get("number"), value.get("text"), value.get("choices"))


def _well_formed(token: Any) -> bool:
    return isinstance(token, str) and TOKEN_SHAPE.fullmatch(token) is not None


async def _by_token(token: Any) -> SurveyInvitation | None:
    if not _well_formed(token):
        return None
    return await SurveyInvitation.get_or_none(token_hash=hash_token(token))


async def public_survey(token: str, *, ip: str | None) -> PublicSurvey | None:
    """The survey behind a link, or None for a token that is not one (unknown, suppressed, erased). Rate
    limited per address and per link (services/limits.py: SURVEY_READ_IP, SURVEY_READ_TOKEN; LIMIT_EXCEEDED)."""
    if ip:
        await limits.take(limits.SURVEY_READ_IP, ip)
    invitation = await _by_token(token)
    if invitation is None:
        return None
    await limits.take(limits.SURVEY_READ_TOKEN, token)
    template = await SurveyTemplate.get(id=invitation.template_id)
    customer = await Customer.get(id=invitation.customer_id)
    answered = invitation.status == InvitationStatus.RESPONDED
    return PublicSurvey(
        title=template.name,
        questions=questions_of(template),
        customer_display_name=display_name(customer),
        expires_at=invitation.expires_at,
        already_answered=answered,
        expired=not answered and invitation.expires_at <= clock.now(),
    )


def _whole_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        return int(value) if re.fullmatch(r"[+-]?\d{1,3}", value) else None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _blank(question: Question, answer: Answer) -> bool:
    if question.type in SCALES:
        return answer.number is None or (isinstance(answer.number, str) and not answer.number.strip())
    if question.type in CHOICE_TYPES:
        return not answer.choices
    return not (answer.text or "").strip()


def check_answers(template: SurveyTemplate, given: Sequence[Answer | dict]) -> list[dict]:
    """The answers as stored ({questionKey, number, text, choices}, in the template's order), or DomainErrors
    with one error per question (["answers", <questionKey>]), messages in Chinese and English."""
    questions = {q.key: q for q in questions_of(template)}
    answers: dict[str, Answer] = {}
    errors: list[DomainError] = []
    for raw in given:
        answer = Answer.of(raw)
        path = ["answers", answer.question_key]
        if answer.question_key not in questions:
            errors.append(invalid(path, f"没有这个问题 / There is no question {answer.question_key!r}"))
        elif answer.question_key in answers:
            errors.append(
                DomainError(ErrorCode.DUPLICATE, "这个问题回答了两次 / This question is answered twice", path)
            )
        else:
            answers[answer.question_key] = answer
    stored = []
    for key, question in questions.items():
        path = ["answers", key]
        answer = answers.get(key)
        if answer is None or _blank(question, answer):
            if question.required:
                errors.append(DomainError(ErrorCode.REQUIRED, "请回答这个问题 / This question needs an answer", path))
            continue
        row: dict[str, Any] = {"questionKey": key, "number": None, "text": None, "choices": None}
        if question.type in SCALES:
            low, high = SCALES[question.type]
            number = _whole_number(answer.number)
            if number is None or not low <= number <= high:
                errors.append(
                    invalid(path, f"请选择 {low} 到 {high} 之间的整数 / Give a whole number from {low} to {high}")
                )
                continue
            row["number"] = number
        elif question.type in CHOICE_TYPES:
            choices = [str(c) for c in answer.choices or []]
            if question.type == QuestionType.SINGLE_CHOICE and len(choices) != 1:
                errors.append(invalid(path, "请只选一项 / Choose exactly one option"))
                continue
            if any(c not in question.options for c in choices):
                errors.append(invalid(path, "请从给出的选项中选择 / Choose among the options given"))
                continue
            if len(set(choices)) != len(choices):
                errors.append(invalid(path, "每个选项只能选一次 / Choose each option once"))
                continue
            row["choices"] = choices
        else:
            text = (answer.text or "").strip()
            if len(text) > MAX_TEXT_ANSWER:
                errors.append(
                    invalid(path, f"回答不能超过 {MAX_TEXT_ANSWER} 字 / At most {MAX_TEXT_ANSWER} characters")
                )
                continue
            row["text"] = text
        stored.append(row)
    if errors:
        raise DomainErrors(errors)
    return stored


def nps_category(score: int) -> NpsCategory:
    if score <= DETRACTOR_MAX:
        return NpsCategory.DETRACTOR
    return NpsCategory.PASSIVE if score <= PASSIVE_MAX else NpsCategory.PROMOTER


def _scores(template: SurveyTemplate, answers: list[dict]) -> tuple[int | None, float | None, list[tuple[str, int]]]:
    """(NPS score, CSAT = the mean of the RATING answers, the ratings of LOW_RATING or less)."""
    types = {q.key: q.type for q in questions_of(template)}
    nps = next((a["number"] for a in answers if types[a["questionKey"]] == QuestionType.NPS), None)
    ratings = [(a["questionKey"], a["number"]) for a in answers if types[a["questionKey"]] == QuestionType.RATING]
    csat = round(sum(n for _, n in ratings) / len(ratings), 2) if ratings else None
    return nps, csat, [(k, n) for k, n in ratings if n <= LOW_RATING]


async def _recovery(
    invitation: SurveyInvitation, template: SurveyTemplate, nps: int | None, low: list[tuple[str, int]]
) -> FollowUp | None:
    """The recovery call for a detractor or a low rating: the relationship manager, else the CALL_CENTER."""
    if (nps is None or nps > DETRACTOR_MAX) and not low:
        return None
    customer = await Customer.get(id=invitation.customer_id)
    why = []
    if nps is not None and nps <= DETRACTOR_MAX:
        why.append(f"NPS {nps} 分（贬损者）")
    why += [f"{key} 评分 {n} 分" for key, n in low]
    return await follow_ups.open_for_system(
        title=f"满意度回访：{customer.customer_no}",
        description=f"问卷「{template.name}」：{'；'.join(why)}。请在两天内联系客户了解情况并跟进。",
        customer_id=customer.id,
        complaint_id=invitation.complaint_id,
        assignee_id=customer.relationship_manager_id,
        department=RECOVERY_DEPARTMENT,
        priority=Priority.HIGH,
        due_at=clock.now() + RECOVERY_DUE,
    )


def _already_answered() -> DomainError:
    return DomainError(ErrorCode.DUPLICATE, "此问卷已提交，感谢您的参与 / This survey was answered already", "token")


async def submit(
    token: str, answers: Sequence[Answer | dict], comment: str | None = None, *, ip: str | None
) -> SurveyResponse:
    """The customer's answer. Rate limits first (per IP and per token: LIMIT_EXCEEDED; they count even a
    rejected attempt), then in one transaction: NOT_FOUND ["token"] for an unknown link, DUPLICATE ["token"]
    when it was answered already, INVALID ["token"] when it expired, the answers' errors
    (["answers", <questionKey>]) and the comment's (["comment"]) all at once."""
    well_formed = _well_formed(token)
    digest = hash_token(token if well_formed else str(token)[:200])
    if ip:
        await limits.take(limits.SURVEY_SUBMIT_IP, ip)
    await limits.take(limits.SURVEY_SUBMIT_TOKEN, digest)
    async with atomic():
        invitation = await SurveyInvitation.get_or_none(token_hash=digest) if well_formed else None
        if invitation is None:
            raise DomainError(ErrorCode.NOT_FOUND, "此问卷链接无效 / This survey link is not valid", "token")
        if invitation.status == InvitationStatus.RESPONDED or await SurveyResponse.exists(invitation_id=invitation.id):
            raise _already_answered()
        now = clock.now()
        if invitation.expires_at <= now:
            raise invalid("token", "此问卷链接已过期 / This survey link has expired")
        template = await SurveyTemplate.get(id=invitation.template_id)
        errors: list[DomainError] = []
        try:
            stored = check_answers(template, answers)
        except DomainError as error:
            errors += error.errors
            stored = []
        note = (comment or "").strip() or None
        if note is not None and len(note) > MAX_COMMENT:
            errors.append(invalid("comment", f"留言不能超过 {MAX_COMMENT} 字 / At most {MAX_COMMENT} characters"))
        if errors:
            raise DomainErrors(errors)
        nps, csat, low = _scores(template, stored)
        try:
            async with atomic():
                response = await SurveyResponse.create(
                    invitation=invitation,
                    customer_id=invitation.customer_id,
                    answers=stored,
                    nps_score=nps,
                    nps_category=nps_category(nps) if nps is not None else None,
                    csat_score=csat,
                    comment=note,
                    submitted_at=now,
                )
        except IntegrityError:  # another submission of this link won the race
            raise _already_answered() from None
        await SurveyInvitation.filter(id=invitation.id).update(status=InvitationStatus.RESPONDED, responded_at=now)
        follow_up = await _recovery(invitation, template, nps, low)
        if follow_up is not None:
            await SurveyResponse.filter(id=response.id).update(follow_up_id=follow_up.id)
            response.follow_up_id = follow_up.id
        if invitation.complaint_id is not None and csat is not None:
            await complaints.record_satisfaction(invitation.complaint_id, csat)
        await portraits.mark_stale([invitation.customer_id])
    return response


# ---------------------------------------------------------------- the customer record: timeline, erasure, merge


def _describe_invitation(row: SurveyInvitation) -> tuple[str, str | None]:
    status = effective_status(row)
    detail = status.value + (f": {row.suppressed_reason}" if row.suppressed_reason else "")
    return f"Survey invitation by {row.channel.value}", detail


def _describe_response(row: SurveyResponse) -> tuple[str, str | None]:
    scores = []
    if row.nps_score is not None:
        scores.append(f"NPS {row.nps_score} ({row.nps_category.value if row.nps_category else ''})")
    if row.csat_score is not None:
        scores.append(f"CSAT {row.csat_score:g}")
    return "Survey answered" + (f": {', '.join(scores)}" if scores else ""), timeline.short(row.comment)


timeline.register(
    timeline.Source("SURVEY_INVITATION", SurveyInvitation, "created_at", _describe_invitation, node="SurveyInvitation")
)
timeline.register(
    timeline.Source("SURVEY_RESPONSE", SurveyResponse, "submitted_at", _describe_response, node="SurveyResponse")
)


async def _scrub_responses(relation: customer_relations.Relation, customer_ids: list[int]) -> None:
    # Scores and choices stay (statistics); what the person wrote goes.
    for response in await SurveyResponse.filter(**relation.lookup(customer_ids)):
        answers = [{**a, "text": None} for a in response.answers]
        await SurveyResponse.filter(id=response.id).update(comment=None, answers=answers)


async def _scrub_invitations(relation: customer_relations.Relation, customer_ids: list[int]) -> None:
    # The link stops working: an erased customer's survey can no longer be opened or answered.
    await SurveyInvitation.filter(**relation.lookup(customer_ids)).update(token_hash=None)


async def _merge_count(relation: customer_relations.Relation, duplicate_id: int, survivor_id: int) -> int:
    return await relation.rows(duplicate_id).count()


async def _merge_move(relation: customer_relations.Relation, duplicate_id: int, survivor_id: int) -> int:
    # A campaign invites a customer once: where both records were invited by the same campaign, the
    # duplicate's invitation is kept but no longer counts as that campaign's.
    both = Subquery(SurveyInvitation.filter(customer_id=survivor_id, campaign_id__isnull=False).values("campaign_id"))
    await SurveyInvitation.filter(customer_id=duplicate_id, campaign_id__in=both).update(campaign_id=None)
    return await relation.rows(duplicate_id).update(customer_id=survivor_id)


customer_relations.register_scrubber(SurveyResponse, _scrub_responses)
customer_relations.register_scrubber(SurveyInvitation, _scrub_invitations)
customer_relations.register_merge_resolver(SurveyInvitation, _merge_count, _merge_move)
