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
from email.header import Header
from email.mime.text import MIMEText
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
    """Sends the messages of one delivery batch (one connection for them all where the channel has one)."""

    async def send(self, message: Message) -> None:
        """Hand the message over, or raise SendFailed."""

    async def aclose(self) -> None:
        """The batch is done: let go of the connection."""


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


def email_message(message: Message, mail_from: str) -> MIMEText:
    """The e-mail as it goes out (and as the mail drop keeps it): UTF-8 text, base64, the subject RFC 2047
    encoded. The Message-ID names the notification, so a receiving system can recognise the same notification.
    Built with the `email` package's compat32 classes: a quarter of the cost of `EmailMessage` with the default
    policy, which matters when a campaign sends thousands."""
    email = MIMEText(message.body, "plain", "utf-8")
    email["From"] = mail_from
    email["To"] = message.recipient
    email["Subject"] = Header(message.subject or "", "utf-8")
    email["Date"] = format_datetime(clock.now())
    email["Message-ID"] = f"<notification-{message.notification_id}@{mail_from.rpartition('@')[2]}>"
    return email


class SmtpSender:
    """One SMTP connection for a batch, opened by the first message. A message the server refuses leaves the
    connection open for the next one. A server that cannot be reached, or that drops the connection, fails the
    rest of the batch at once with the same transient error (each would wait for the same timeout); they are
    tried again after the backoff."""

    def __init__(self, url: str, mail_from: str) -> None:
        self.server = parse_smtp_url(url)
        self.mail_from = mail_from
        self._smtp: aiosmtplib.SMTP | None = None
        self._unreachable: SendFailed | None = None

    async def send(self, message: Message) -> None:
        if self._unreachable is not None:
            raise self._unreachable
        smtp = await self._connected()
        try:
            await smtp.sendmail(self.mail_from, [message.recipient], email_message(message, self.mail_from).as_bytes())
        except aiosmtplib.SMTPRecipientsRefused as refused:
            codes = [r.code for r in refused.recipients]
            text = "; ".join(f"{r.code} {r.message}" for r in refused.recipients)
            transient = all(400 <= code < 500 for code in codes)
            raise SendFailed(f"SMTP refused the recipient: {text}", transient=transient) from None
        except aiosmtplib.SMTPResponseException as reply:
            failure = SendFailed(f"SMTP replied {reply.code} {reply.message}", transient=400 <= reply.code < 500)
            if reply.code == 421 or not smtp.is_connected:  # the server is closing the connection
                self._give_up(failure)
            raise failure from None
        except (aiosmtplib.SMTPException, OSError) as error:  # disconnected, timed out
            self._give_up(SendFailed(f"SMTP server {self._where()}: {_describe(error)}", transient=True))
            raise self._unreachable from None
        log.debug("notification %s sent by e-mail to %s", message.notification_id, message.masked_recipient)

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        server = self.server
        smtp = aiosmtplib.SMTP(
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.implicit_tls,
            start_tls=server.starttls,
            timeout=SMTP_TIMEOUT_SECONDS,
        )
        try:
            await smtp.connect()
        except aiosmtplib.SMTPResponseException as reply:  # e.g. a wrong password (535) or a busy server (421)
            reason = f"SMTP server {self._where()} replied {reply.code} {reply.message}"
            self._give_up(SendFailed(reason, transient=400 <= reply.code < 500))
        except aiosmtplib.SMTPNotSupported as error:  # e.g. STARTTLS asked of a server without it
            self._give_up(SendFailed(f"SMTP server {self._where()}: {_describe(error)}", transient=False))
        except (aiosmtplib.SMTPException, OSError) as error:  # refused, unreachable, timed out
            self._give_up(SendFailed(f"SMTP server {self._where()} unreachable: {_describe(error)}", transient=True))
        if self._unreachable is not None:
            raise self._unreachable
        self._smtp = smtp
        return smtp

    def _give_up(self, failure: SendFailed) -> None:
        """This failure for the rest of the batch; the connection, if any, is closed."""
        self._unreachable = failure
        smtp, self._smtp = self._smtp, None
        if smtp is not None and smtp.is_connected:
            smtp.close()

    async def aclose(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None or not smtp.is_connected:
            return
        try:
            await smtp.quit()
        except (aiosmtplib.SMTPException, OSError):  # every message is recorded already; a rude goodbye is fine
            smtp.close()

    def _where(self) -> str:
        return f"{self.server.host}:{self.server.port}"


# ---------------------------------------------------------------- SMS through the HTTP gateway


def signature(body: bytes, secret: str) -> str:
    """The X-Signature header value: ``sha256=`` and the hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class SmsGateway:
    """One HTTP client (its connections kept alive) for a batch. A gateway that cannot be reached fails the rest
    of the batch at once with the same transient error."""

    def __init__(self, url: str, secret: str, timeout: float = GATEWAY_TIMEOUT_SECONDS) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._unreachable: SendFailed | None = None

    async def send(self, message: Message) -> None:
        # The reference lets the gateway recognise a notification it has seen.
        payload = {
            "to": message.recipient,
            "text": message.body,
            "reference": f"notification-{message.notification_id}",
        }
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Signature": signature(body, self.secret)}
        if self._unreachable is not None:
            raise self._unreachable
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
        except httpx.TransportError as error:  # refused, unreachable, timed out
            self._unreachable = SendFailed(f"SMS gateway unreachable: {_describe(error)}", transient=True)
            raise self._unreachable from None
        if not response.is_success:
            status = response.status_code
            raise SendFailed(
                f"SMS gateway answered HTTP {status}: {response.text[:200]}",
                transient=status >= 500 or status == 429,
            )
        log.debug("notification %s sent by SMS to %s", message.notification_id, message.masked_recipient)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


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

    async def aclose(self) -> None:
        """Nothing to let go of."""

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

    async def aclose(self) -> None:
        """Nothing to let go of."""


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__
