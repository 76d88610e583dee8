"""The channel adapters of the outbox (services.notifications): how one message leaves the bank.

- `SmtpSender`: EMAIL over SMTP (aiosmtplib), `smtp://[user:pass@]host:port[?starttls=true]` or `smtps://`
  for implicit TLS.
- `SmsGateway`: SMS through the HTTP gateway, a JSON POST signed with
  ``X-Signature: sha256=<hex HMAC-SHA256 of the body>``.
- `MailDrop`: development, when a channel has no server configured: one file per notification in a folder
  (like Django's file-based e-mail backend); the log gets one line that names the file, never the body,
  since a body may carry a secret (a survey link's token).
- `NoSender`: a channel the bank has no sender for (LETTER, BRANCH, ...): a permanent failure that says
  what to do by hand.

Every adapter raises `SendFailed` when the message did not go out, saying whether trying again later may
help (`transient`): a refused connection, a timeout, an SMTP 4xx reply, a gateway 5xx or 429 may pass; an
SMTP 5xx reply or another gateway 4xx will not.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlparse

import aiosmtplib
import httpx

from models.customers import Channel
from services import clock

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 30
GATEWAY_TIMEOUT_SECONDS = 10
SMTP_DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
BY_HAND = {
    Channel.LETTER: "print and post it by hand",
    Channel.BRANCH: "hand it over at the branch",
    Channel.PHONE: "call the customer",
}


class SendFailed(Exception):
    """The message did not go out; `transient`: trying again later may succeed."""

    def __init__(self, reason: str, *, transient: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


@dataclass(frozen=True)
class Message:
    """One notification as the adapters see it."""

    notification_id: int
    channel: Channel
    recipient: str
    masked_recipient: str  # what the log may show
    subject: str | None
    body: str


class Sender(Protocol):
    async def send(self, message: Message) -> None:
        """Hand the message over, or raise SendFailed."""


# ---------------------------------------------------------------- EMAIL over SMTP


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    implicit_tls: bool = False  # smtps://
    starttls: bool = False  # smtp://...?starttls=true


def parse_smtp_url(url: str) -> SmtpServer:
    """`smtp://[user:pass@]host:port[?starttls=true]` or `smtps://...`; ValueError (without the password) if not."""
    parsed = urlparse(url)
    if parsed.scheme not in SMTP_DEFAULT_PORTS or not parsed.hostname:
        raise ValueError("must be smtp://[user:pass@]host:port[?starttls=true] or smtps://[user:pass@]host:port")
    try:
        port = parsed.port or SMTP_DEFAULT_PORTS[parsed.scheme]
    except ValueError:
        raise ValueError("has a port that is not a number between 0 and 65535") from None
    options = parse_qs(parsed.query)
    unknown = set(options) - {"starttls"}
    if unknown:
        raise ValueError(f"has unknown options: {', '.join(sorted(unknown))} (only starttls=true is known)")
    starttls = options.get("starttls", ["false"])[-1].lower()
    if starttls not in ("true", "false"):
        raise ValueError("starttls must be true or false")
    if starttls == "true" and parsed.scheme == "smtps":
        raise ValueError("smtps:// is TLS from the start: starttls=true applies to smtp:// only")
    if (parsed.username is None) != (parsed.password is None):
        raise ValueError("needs both a user and a password, or neither")
    return SmtpServer(
        host=parsed.hostname,
        port=port,
        username=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password else None,
        implicit_tls=parsed.scheme == "smtps",
        starttls=starttls == "true",
    )


def email_message(message: Message, mail_from: str) -> EmailMessage:
    """The e-mail as it goes out (and as the mail drop keeps it). The Message-ID names the notification, so
    a receiving system can recognise the same notification."""
    email = EmailMessage()
    email["From"] = mail_from
    email["To"] = message.recipient
    email["Subject"] = message.subject or ""
    email["Date"] = format_datetime(clock.now())
    email["Message-ID"] = f"<notification-{message.notification_id}@{mail_from.rpartition('@')[2]}>"
    email.set_content(message.body)
    return email


class SmtpSender:
    def __init__(self, url: str, mail_from: str) -> None:
        self.server = parse_smtp_url(url)
        self.mail_from = mail_from

    async def send(self, message: Message) -> None:
        server = self.server
        try:
            await aiosmtplib.send(
                email_message(message, self.mail_from),
                hostname=server.host,
                port=server.port,
                username=server.username,
                password=server.password,
                use_tls=server.implicit_tls,
                start_tls=server.starttls,
                timeout=SMTP_TIMEOUT_SECONDS,
            )
        except aiosmtplib.SMTPRecipientsRefused as refused:
            codes = [r.code for r in refused.recipients]
            text = "; ".join(f"{r.code} {r.message}" for r in refused.recipients)
            transient = all(400 <= code < 500 for code in codes)
            raise SendFailed(f"SMTP refused the recipient: {text}", transient=transient) from None
        except aiosmtplib.SMTPResponseException as reply:
            transient = 400 <= reply.code < 500
            raise SendFailed(f"SMTP replied {reply.code} {reply.message}", transient=transient) from None
        except aiosmtplib.SMTPNotSupported as error:  # e.g. STARTTLS asked of a server without it
            raise SendFailed(f"SMTP server {server.host}:{server.port}: {_describe(error)}", transient=False) from None
        except (aiosmtplib.SMTPException, OSError) as error:  # refused, unreachable, timed out, disconnected
            reason = f"SMTP server {server.host}:{server.port} unreachable: {_describe(error)}"
            raise SendFailed(reason, transient=True) from None
        log.info("notification %s sent by e-mail to %s", message.notification_id, message.masked_recipient)


# ---------------------------------------------------------------- SMS through the HTTP gateway


def signature(body: bytes, secret: str) -> str:
    """The X-Signature header value: ``sha256=`` and the hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class SmsGateway:
    def __init__(self, url: str, secret: str, timeout: float = GATEWAY_TIMEOUT_SECONDS) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout

    async def send(self, message: Message) -> None:
        # The reference lets the gateway recognise a notification it has seen.
        payload = {
            "to": message.recipient,
            "text": message.body,
            "reference": f"notification-{message.notification_id}",
        }
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Signature": signature(body, self.secret)}
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(self.url, content=body, headers=headers)
        except httpx.TransportError as error:  # refused, unreachable, timed out
            raise SendFailed(f"SMS gateway unreachable: {_describe(error)}", transient=True) from None
        if not response.is_success:
            status = response.status_code
            raise SendFailed(
                f"SMS gateway answered HTTP {status}: {response.text[:200]}",
                transient=status >= 500 or status == 429,
            )
        log.info("notification %s sent by SMS to %s", message.notification_id, message.masked_recipient)


# ---------------------------------------------------------------- development: the mail drop


class MailDrop:
    """Writes each message to `<directory>/notification-<id>.eml` (EMAIL) or `.txt` (anything else)."""

    def __init__(self, directory: str, mail_from: str) -> None:
        self.directory = Path(directory)
        self.mail_from = mail_from

    def path_of(self, message: Message) -> Path:
        suffix = "eml" if message.channel == Channel.EMAIL else "txt"
        return self.directory / f"notification-{message.notification_id}.{suffix}"

    async def send(self, message: Message) -> None:
        path = self.path_of(message)
        try:
            await asyncio.to_thread(_write_atomically, path, self._content(message))
        except OSError as error:
            raise SendFailed(f"mail drop {self.directory} not writable: {_describe(error)}", transient=True) from None
        log.info(
            "notification %s (%s to %s) dropped in %s: no %s server is configured",
            message.notification_id,
            message.channel.value,
            message.masked_recipient,
            path.name,
            message.channel.value,
        )

    def _content(self, message: Message) -> bytes:
        if message.channel == Channel.EMAIL:
            return email_message(message, self.mail_from).as_bytes()
        lines = [f"Channel: {message.channel.value}", f"To: {message.recipient}"]
        if message.subject:
            lines.append(f"Subject: {message.subject}")
        return ("\n".join(lines) + "\n\n" + message.body + "\n").encode()


def _write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(content)
    os.replace(partial, path)


# ---------------------------------------------------------------- channels nobody sends through


class NoSender:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    async def send(self, message: Message) -> None:
        what_to_do = BY_HAND.get(self.channel, "reach the customer another way")
        raise SendFailed(f"no sender for {self.channel.value}: {what_to_do}", transient=False)


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__
