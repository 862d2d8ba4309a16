"""Sending one e-mail over SMTP with aiosmtplib, its failure reduced to a safe, short reason.

The reason is kept in the Notification's events, so it must never carry an address: an SMTP
server's answer often quotes the recipient, so every address in it is masked.
"""

from __future__ import annotations

import re
from email.message import EmailMessage

import aiosmtplib

from audifi_notify.application import DeliveryRefused
from audifi_notify.config import SmtpServer

_ADDRESS = re.compile(r"[^\s<>\"'@,;:]+@[^\s<>\"',;:]+")


def safe_reason(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        first = exc.recipients[0]
        text = f"{first.code} {first.message}"
    elif isinstance(exc, aiosmtplib.SMTPResponseException):
        text = f"{exc.code} {exc.message}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return _ADDRESS.sub("<address>", " ".join(text.split()))[:300]


class SmtpTransport:
    def __init__(self, server: SmtpServer, *, timeout: float = 10.0) -> None:
        self.server = server
        self.timeout = timeout

    async def send(self, message: EmailMessage) -> None:
        s = self.server
        try:
            await aiosmtplib.send(
                message,
                hostname=s.host,
                port=s.port,
                username=s.username,
                password=s.password,
                use_tls=s.use_tls,
                start_tls=s.start_tls,
                timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryRefused(safe_reason(exc)) from None


class InMemoryTransport:
    """Keeps every mail it is handed; refuses each with `refusal` while that is set."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.refusal: str | None = None

    async def send(self, message: EmailMessage) -> None:
        if self.refusal is not None:
            raise DeliveryRefused(self.refusal)
        self.sent.append(message)
