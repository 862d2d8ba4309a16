"""Notify's own settings, from the environment (ARCHITECTURE.md §9), parsed once.

| variable | default | meaning |
|---|---|---|
| SMTP_URL | unset | `smtp://user:pass@host:port` (STARTTLS when the server offers it; port 25 when
  none given), `smtp+starttls://` (STARTTLS required, port 587), `smtps://` (implicit TLS, port
  465). Unset: a local SMTP sink is started and mail is readable at `GET /dev/mail`. |
| MAIL_FROM | `AudiFi <no-reply@audifi.local>` | the From header and envelope sender |
| AUDIFI_SMTP_SINK_PORT | 8125 | the sink's port on 127.0.0.1 (0: any free port) |
| NOTIFY_SEAL_KEY | unset | base64 of notify's 32-byte X25519 private key; unset: generated once
  under `<AUDIFI_VAR_DIR>/notify/seal_key` |
| NOTIFY_RETRY_DELAYS | `1,5,30` | seconds between delivery attempts; attempts = delays + 1 |
| NOTIFY_SMTP_TIMEOUT | 10 | seconds per SMTP conversation |
| AUDIFI_PUBLIC_URL | `http://127.0.0.1:8080` | where people open AudiFi: mails link to its pages
  (a subscription's renewal failure links to `/account/billing`) |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from audifi_notify.domain import RetryPolicy

DEFAULT_MAIL_FROM = "AudiFi <no-reply@audifi.local>"
DEFAULT_SINK_PORT = 8125
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8080"


@dataclass(frozen=True, slots=True)
class SmtpServer:
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    use_tls: bool = False
    # None: STARTTLS when the server offers it (aiosmtplib's default); True: required.
    start_tls: bool | None = None

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "smtp+starttls", "smtps"):
            raise ValueError("SMTP_URL must start with smtp://, smtp+starttls:// or smtps://")
        default_port = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}[scheme]
        port = parts.port or default_port
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=scheme == "smtps",
            start_tls=True if scheme == "smtp+starttls" or port == 587 else None,
        )

    def __repr__(self) -> str:  # a secret never reaches a log line
        return f"SmtpServer(host={self.host!r}, port={self.port}, user={self.username!r})"


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    smtp: SmtpServer | None = None
    mail_from: str = DEFAULT_MAIL_FROM
    sink_port: int = DEFAULT_SINK_PORT
    seal_key: str | None = field(default=None, repr=False)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    smtp_timeout: float = 10.0
    public_url: str = DEFAULT_PUBLIC_URL

    @property
    def runs_sink(self) -> bool:
        return self.smtp is None

    @property
    def billing_url(self) -> str:
        """The page where a fan manages their subscriptions: it opens payment's customer portal
        (`POST /payments/portal`) for the signed-in fan, so a mail never holds a portal session."""
        return f"{self.public_url.rstrip('/')}/account/billing"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> NotifyConfig:
        env = os.environ if environ is None else environ

        def opt(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        delays = opt("NOTIFY_RETRY_DELAYS")
        smtp_url = opt("SMTP_URL")
        return cls(
            smtp=SmtpServer.from_url(smtp_url) if smtp_url else None,
            mail_from=opt("MAIL_FROM") or DEFAULT_MAIL_FROM,
            sink_port=int(opt("AUDIFI_SMTP_SINK_PORT") or DEFAULT_SINK_PORT),
            seal_key=opt("NOTIFY_SEAL_KEY"),
            retry=RetryPolicy(tuple(float(d) for d in delays.split(",")))
            if delays
            else RetryPolicy(),
            smtp_timeout=float(opt("NOTIFY_SMTP_TIMEOUT") or 10.0),
            public_url=opt("AUDIFI_PUBLIC_URL") or DEFAULT_PUBLIC_URL,
        )
