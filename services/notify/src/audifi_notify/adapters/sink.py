"""The embedded mode's mail server: an aiosmtpd SMTP sink on 127.0.0.1 keeping mail in memory.

Runs only when SMTP_URL is unset; `GET /dev/mail` reads what it received, newest first.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import structlog
from aiosmtpd.controller import Controller

from audifi_notify.config import SmtpServer

log = structlog.get_logger("audifi.notify.sink")


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    to: list[str]
    sender: str
    subject: str
    text: str
    html: str
    received_at: datetime


def _parse(envelope: Any) -> ReceivedMail:
    raw = envelope.content if isinstance(envelope.content, bytes) else envelope.original_content
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    text_part = msg.get_body(preferencelist=("plain",))
    html_part = msg.get_body(preferencelist=("html",))
    return ReceivedMail(
        to=list(envelope.rcpt_tos),
        sender=str(envelope.mail_from),
        subject=str(msg.get("Subject", "")),
        text=text_part.get_content() if text_part is not None else "",
        html=html_part.get_content() if html_part is not None else "",
        received_at=datetime.now(UTC),
    )


class _Keeper:
    """aiosmtpd handler: accepts every mail and keeps it (on the controller's own thread)."""

    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.sink.keep(_parse(envelope))
        return "250 Message accepted for delivery"


class MailSink:
    def __init__(self, port: int = 0, *, limit: int = 1000) -> None:
        self.requested_port = port
        self.limit = limit
        self.port = 0
        self._mail: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def server(self) -> SmtpServer:
        return SmtpServer(host="127.0.0.1", port=self.port)

    def keep(self, mail: ReceivedMail) -> None:
        with self._lock:
            self._mail.append(mail)
            del self._mail[: -self.limit]

    def received(self, to: str | None = None) -> list[ReceivedMail]:
        """Newest first; `to` keeps the mail addressed to that address (case-insensitive)."""
        with self._lock:
            mail = list(reversed(self._mail))
        if to is not None:
            wanted = to.strip().lower()
            mail = [m for m in mail if wanted in (r.lower() for r in m.to)]
        return mail

    async def start(self) -> None:
        # aiosmtpd's controller probes its own port once started, so it needs a real one.
        try:
            await self._start_on(self.requested_port or _free_port())
        except OSError as exc:
            if not self.requested_port:
                raise
            # Mail is read at /dev/mail, not over this port: a busy one (another platform
            # on this machine) must not keep the service from starting.
            log.warning(
                "SMTP sink port unavailable; using a free one", port=self.port, error=str(exc)
            )
            await self._start_on(_free_port())
        log.info("SMTP sink listening", host="127.0.0.1", port=self.port)

    async def _start_on(self, port: int) -> None:
        self.port = port
        controller = Controller(_Keeper(self), hostname="127.0.0.1", port=port)
        await asyncio.to_thread(controller.start)
        self._controller = controller

    async def stop(self) -> None:
        if self._controller is not None:
            await asyncio.to_thread(self._controller.stop)
            self._controller = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
