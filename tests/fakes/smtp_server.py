"""A real SMTP server on 127.0.0.1 (aiosmtpd) that records the mails it receives.

Use it for any test that sends mail::

    from tests.fakes.smtp_server import SMTPServer

    with SMTPServer() as server:
        url = server.apprise_url(to="ops@example.com")
        # mailto://127.0.0.1:PORT?from=hokan@example.com&to=ops@example.com
        ...
        mail = server.messages[0]
        assert mail.subject == "…"      # decoded (RFC 2047), str
        assert "…" in mail.text          # the text/plain part, decoded to str

or the pytest fixture ``smtp_server`` (tests/fakes/fixtures.py).

The server speaks plain SMTP without TLS and without AUTH: for apprise use ``mailto://``
(not ``mailtos://``), no ``user:password@`` (apprise would try to log in and fail), and
``from=`` / ``to=`` in the query, as ``apprise_url`` builds. Django's mail backend reaches it
with EMAIL_HOST=127.0.0.1, EMAIL_PORT=server.port, EMAIL_USE_TLS=False.
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import quote

from aiosmtpd.controller import Controller

from tests.fakes.local_http import ServerLifecycle
from tests.servers import free_port


@dataclass(frozen=True)
class ReceivedMail:
    """One mail as received: envelope sender and recipients, and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        """The Subject header, decoded (``=?utf-8?…?=`` words become text)."""
        return str(self.message["Subject"] or "")

    @property
    def text(self) -> str:
        """The text/plain body (the first text/plain part of a multipart mail), decoded to str,
        line ends as ``\\n`` (SMTP carries CRLF)."""
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content().replace("\r\n", "\n") if part is not None else ""

    @property
    def html(self) -> str:
        """The text/html body, decoded to str; "" when the mail has none."""
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""


class _Handler:
    def __init__(self, server: SMTPServer) -> None:
        self._server = server

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802 (aiosmtpd API)
        raw = envelope.original_content or envelope.content  # type: ignore[attr-defined]
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        mail = ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message)  # type: ignore[attr-defined,arg-type]
        with self._server._lock:
            self._server.messages.append(mail)
        return "250 Message accepted for delivery"


class SMTPServer(ServerLifecycle):
    """An SMTP server on 127.0.0.1 (a free port) recording every mail in ``messages``;
    start/stop or ``with`` (tests/fakes/local_http.py)."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.messages: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port)

    def apprise_url(self, *, to: str = "ops@example.com", sender: str = "hokan@example.com") -> str:
        """The apprise URL that mails ``to`` through this server (plain SMTP, no login)."""
        return f"mailto://{self.host}:{self.port}?from={quote(sender, safe='@')}&to={quote(to, safe='@,')}"

    def start(self) -> SMTPServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


def serve() -> Iterator[SMTPServer]:
    """Generator for fixtures: a started server, stopped afterwards."""
    yield from SMTPServer.serving()
