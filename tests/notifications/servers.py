"""Real servers for the channel adapters to talk to, on 127.0.0.1 with a free port: an SMTP server (aiosmtpd,
on the test's event loop, where the embedded worker runs the actors too) and an SMS gateway (a threaded HTTP
server) that checks each request's signature the way the real gateway does."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.smtp import SMTP, Envelope, Session

GATEWAY_SECRET = "gateway-secret-for-the-tests"


class SmtpServer:
    """Accepts every message (kept in `messages`), except that each RCPT is first answered with the next
    reply in `replies`, if any (e.g. "451 4.3.0 try again later"); counts the connections made to it."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.replies: list[str] = []
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._connected, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def _connected(self) -> SMTP:
        self.connections += 1
        return SMTP(self, hostname="smtp.test")

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.replies:
            return self.replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


class SmsGateway:
    """Accepts a JSON POST signed with `secret` (kept in `accepted`); answers 401 to a bad signature (counted in
    `bad_signatures`); each request is first answered with the next status in `statuses`, if any."""

    def __init__(self, secret: str = GATEWAY_SECRET) -> None:
        self.secret = secret
        self.accepted: list[dict] = []
        self.bad_signatures = 0
        self.statuses: list[int] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/messages"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, body: bytes, signature: str | None) -> int:
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        if signature is None or not hmac.compare_digest(signature, expected):
            self.bad_signatures += 1
            return 401
        if self.statuses:
            return self.statuses.pop(0)
        self.accepted.append(json.loads(body))
        return 202

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = gateway._answer(body, self.headers.get("X-Signature"))
                reply = json.dumps({"status": status}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:  # quiet
                return None

        return Handler
