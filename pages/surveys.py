"""The customer's survey page, `GET /s/{token}`: server-rendered HTML that works without JavaScript (a plain
form post to `POST /s/{token}`), Chinese, mobile first, with its stylesheet served by the app. The token is
in the URL, so every answer says `Referrer-Policy: no-referrer` and `Cache-Control: no-store`."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from core.settings import Settings
from services import limits, surveys
from services.complaint_rules import BANK_TIME
from services.errors import DomainError, ErrorCode

HERE = Path(__file__).resolve().parent
TEMPLATES = Jinja2Templates(env=Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True))
HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'",
}
MAX_FORM_BYTES = 64 * 1024


def routes(settings: Settings) -> list[BaseRoute]:
    return [
        Mount("/s/static", StaticFiles(directory=HERE / "static"), name="survey-static"),
        Route("/s/{token}", show, methods=["GET"]),
        Route("/s/{token}", answer, methods=["POST"]),
        Route("/s/{token}/thanks", thanks, methods=["GET"]),
    ]


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _page(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status, headers=HEADERS)


def _message(request: Request, kind: str, heading: str, *lines: str, status: int = 200) -> HTMLResponse:
    return _page(request, "survey_message.html", status, kind=kind, heading=heading, lines=lines)


def _not_found(request: Request) -> HTMLResponse:
    return _message(
        request, "missing", "链接无效", "这个问卷链接不存在或已失效。如有疑问，请联系您的客户经理。", status=404
    )


def _limited(request: Request, error: DomainError) -> HTMLResponse:
    page = _message(request, "limited", "请稍后再试", "访问过于频繁，请过几分钟再打开此链接。", status=429)
    page.headers["Retry-After"] = str(error.retry_after if isinstance(error, limits.RateLimited) else 60)
    return page


async def _survey(request: Request, token: str):
    """The survey behind the token, or the response to show instead (unknown, limited)."""
    try:
        survey = await surveys.public_survey(token, ip=_ip(request))  # limited per address and per link
    except DomainError as error:
        if error.errors[0].code == ErrorCode.LIMIT_EXCEEDED:
            return None, _limited(request, error)
        raise
    if survey is None:
        return None, _not_found(request)
    return survey, None


def _closed(request: Request, survey) -> HTMLResponse | None:
    """The page for a survey that cannot be answered any more, if it cannot."""
    if survey.already_answered:
        return _message(request, "answered", "您已提交过本问卷", "感谢您的反馈，我们已收到您的回答。")
    if survey.expired:
        return _message(
            request, "expired", "问卷已过期", f"这份问卷的有效期已于 {_local(survey.expires_at)} 结束，无法再提交。"
        )
    return None


def _local(moment) -> str:
    return moment.astimezone(BANK_TIME).strftime("%Y年%m月%d日 %H:%M")


def _form(request: Request, token: str, survey, *, values=None, comment="", errors=None, status=200) -> HTMLResponse:
    return _page(
        request,
        "survey_form.html",
        status,
        survey=survey,
        token=token,
        expires=_local(survey.expires_at),
        values=values or {},
        comment=comment,
        errors=errors or {},
        question_keys={q.key for q in survey.questions},
    )


async def show(request: Request) -> Response:
    token = request.path_params["token"]
    survey, other = await _survey(request, token)
    if other is not None:
        return other
    return _closed(request, survey) or _form(request, token, survey)


async def thanks(request: Request) -> Response:
    token = request.path_params["token"]
    survey, other = await _survey(request, token)
    if other is not None:
        return other
    if not survey.already_answered:
        return RedirectResponse(f"/s/{token}", status_code=303, headers=HEADERS)
    return _message(request, "thanks", "感谢您的反馈！", "您的回答已提交成功。", "我们会认真对待您的每一条意见。")


def _answers(form: FormData, questions) -> tuple[dict[str, list[str]], list[dict]]:
    """The form's values per question, and the answers as the service takes them."""
    values: dict[str, list[str]] = {}
    answers: list[dict] = []
    for question in questions:
        given = [v.strip() for v in form.getlist(f"q_{question.key}") if isinstance(v, str) and v.strip()]
        values[question.key] = given
        if not given:
            continue
        answer: dict = {"question_key": question.key}
        if question.type in ("NPS", "RATING"):
            answer["number"] = given[0]  # the service checks it is a whole number in the question's range
        elif question.type == "TEXT":
            answer["text"] = given[0]
        else:
            answer["choices"] = given
        answers.append(answer)
    return values, answers


async def answer(request: Request) -> Response:
    token = request.path_params["token"]
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        return _message(request, "invalid", "内容过长", "提交的内容过长，请精简后再试。", status=413)
    survey, other = await _survey(request, token)
    if other is not None:
        return other
    closed = _closed(request, survey)
    if closed is not None:
        return closed
    form = await request.form(max_files=0, max_fields=200)
    values, answers = _answers(form, survey.questions)
    comment = str(form.get("comment") or "").strip()
    try:
        await surveys.submit(token, answers, comment or None, ip=_ip(request))
    except DomainError as error:
        codes = {e.code for e in error.errors}
        if ErrorCode.LIMIT_EXCEEDED in codes:
            return _limited(request, error)
        refreshed, _ = await _survey(request, token)
        closed = _closed(request, refreshed) if refreshed is not None else None
        if closed is not None:  # answered meanwhile, or expired
            return closed
        # The page speaks Chinese: of a bilingual message ("中文 / English") it shows the Chinese part.
        errors = {(e.field[-1] if e.field else "_form"): e.message.split(" / ")[0] for e in error.errors}
        return _form(request, token, survey, values=values, comment=comment, errors=errors, status=422)
    return RedirectResponse(f"/s/{token}/thanks", status_code=303, headers=HEADERS)
