"""JSON logs, each line carrying the request id of the request that wrote it."""

from __future__ import annotations

import contextvars
import logging
import sys

from pythonjsonlogger.json import JsonFormatter

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class OutageWithoutTraceback(logging.Filter):
    """A line logged with the traceback of an outage (the database or Redis out of reach: core.db.is_unavailable,
    core.pubsub.broker_unreachable), by us or a library (asyncpg's pool "retrying", Dramatiq's consumer), keeps
    its line and names the error instead: while a dependency is down, the log says so once a try, not in pages."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None:
            from core.db import is_unavailable
            from core.pubsub import broker_unreachable

            if is_unavailable(error) or broker_unreachable(error):
                record.msg = f"{record.msg} ({type(error).__name__}: outage, traceback left out)"
                record.exc_info, record.exc_text = None, None
        return True


def configure_logging(level: str = "INFO", json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(OutageWithoutTraceback())
    if json_lines:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # apscheduler.executors: two INFO lines per scheduled send, every 2 s for the portrait sweep.
    for noisy in ("tortoise", "aiosqlite", "asyncio", "apscheduler.executors"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # uvicorn's access log is replaced by our own request log line (with the request id).
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False
    for name in ("uvicorn", "uvicorn.error", "dramatiq"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


graphql_log = logging.getLogger("crm.graphql")


def log_graphql_errors(errors: list, execution_context: object | None = None) -> None:
    """Replaces strawberry's `Schema.process_errors`, which logs every error at ERROR with the query text (and
    so the values written into it) and a traceback. Here an expected client error (UNAUTHENTICATED, FORBIDDEN,
    BAD_USER_INPUT, GRAPHQL_PARSE_FAILED, ...) is one INFO line; only an unexpected one is ERROR, with its
    traceback; SERVICE_UNAVAILABLE (the database out of reach) is one WARNING line
    for the request. No line holds the query text, the variables' values or the error message (a coercion
    error's message quotes the value it refused)."""
    from schema.protection import _code_for

    operation = getattr(execution_context, "operation_name", None)
    unavailable = False
    for error in errors:
        code = (error.extensions or {}).get("code") or _code_for(error)
        extra = {
            "code": code,
            "path": ".".join(str(p) for p in error.path) if error.path else None,
            "operation": operation,
            "request_id": request_id_var.get(),
        }
        path = extra["path"] or "-"
        if code == "SERVICE_UNAVAILABLE":  # the database is out of reach: one line, no traceback, no socket text
            if not unavailable:
                original = error.original_error
                graphql_log.warning(
                    "GraphQL SERVICE_UNAVAILABLE (%s) at %s in %s",
                    type(original).__name__ if original is not None else "-",
                    path,
                    operation or "(anonymous)",
                    extra=extra,
                )
            unavailable = True  # one line for the request, however many fields failed
        elif code == "INTERNAL_SERVER_ERROR":
            original = error.original_error
            graphql_log.error(
                "unexpected GraphQL error %s at %s in %s",
                type(original).__name__,
                path,
                operation or "(anonymous)",
                exc_info=(type(original), original, original.__traceback__) if original is not None else None,
                extra=extra,
            )
        else:
            graphql_log.info("GraphQL client error %s at %s in %s", code, path, operation or "(anonymous)", extra=extra)
