"""Rules without I/O: the Notification's life, retries, ids, settings, the seal key."""

from __future__ import annotations

import base64
import stat
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from audifi_notify.adapters.rendering import MailTemplates
from audifi_notify.adapters.seal_key import SealedLinkUnreadable, SealKey
from audifi_notify.adapters.smtp import safe_reason
from audifi_notify.config import NotifyConfig, SmtpServer
from audifi_notify.domain import (
    Notification,
    NotificationClosed,
    RetryPolicy,
    Status,
    Template,
    notification_id_for,
)
from nacl.public import PrivateKey, PublicKey, SealedBox

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _notification(expires_at: datetime | None = None) -> Notification:
    return Notification(
        notification_id=uuid.uuid4(),
        account_id="acc-1",
        template="welcome",
        params={},
        queued_at=T0,
        expires_at=expires_at,
    )


def test_a_notification_is_retried_with_backoff_then_fails_with_the_error_kept() -> None:
    n = _notification()
    policy = RetryPolicy((1, 5, 30))
    n.record_failure("421 try later", T0, policy)
    assert (n.status, n.attempts, n.next_attempt_at) == (
        Status.PENDING,
        1,
        T0 + timedelta(1 / 86400),
    )
    n.record_failure("421 try later", T0, policy)
    assert n.next_attempt_at == T0 + timedelta(seconds=5)
    n.record_failure("421 try later", T0, policy)
    assert n.next_attempt_at == T0 + timedelta(seconds=30)
    n.record_failure("550 no such user", T0, policy)
    assert (n.status, n.attempts, n.last_error) == (Status.FAILED, 4, "550 no such user")
    with pytest.raises(NotificationClosed):
        n.mark_sent(T0)


def test_a_sent_notification_cannot_be_sent_again() -> None:
    n = _notification()
    n.mark_sent(T0)
    assert (n.status, n.attempts, n.sent_at) == (Status.SENT, 1, T0)
    with pytest.raises(NotificationClosed):
        n.mark_sent(T0)


def test_a_magic_link_past_its_expiry_is_expired() -> None:
    n = _notification(expires_at=T0 + timedelta(minutes=15))
    assert not n.expired(T0)
    assert n.expired(T0 + timedelta(minutes=15))
    n.abandon("link expired", T0)
    assert n.status is Status.ABANDONED


def test_one_message_gives_one_notification_id_per_template() -> None:
    assert notification_id_for("auth-1", "welcome") == notification_id_for("auth-1", "welcome")
    assert notification_id_for("auth-1", "welcome") != notification_id_for("auth-2", "welcome")


def test_smtp_urls_choose_tls_by_scheme_and_port() -> None:
    plain = SmtpServer.from_url("smtp://mailer:s3cret@mail.example.com")
    assert (plain.port, plain.use_tls, plain.start_tls, plain.username) == (
        25,
        False,
        None,
        "mailer",
    )
    assert "s3cret" not in repr(plain)
    assert SmtpServer.from_url("smtp://h:587").start_tls is True
    assert SmtpServer.from_url("smtp+starttls://h").port == 587
    assert SmtpServer.from_url("smtps://h").use_tls is True
    with pytest.raises(ValueError):
        SmtpServer.from_url("http://h")


def test_settings_default_to_the_local_sink() -> None:
    config = NotifyConfig.from_env({})
    assert config.runs_sink
    assert config.sink_port == 8125
    assert config.mail_from == "AudiFi <no-reply@audifi.local>"
    assert config.retry.max_attempts == 4
    assert not NotifyConfig.from_env({"SMTP_URL": "smtp://h:2525"}).runs_sink


def test_server_answers_never_keep_an_address() -> None:
    import aiosmtplib

    exc = aiosmtplib.SMTPDataError(550, "rejected for ada@example.com")
    assert safe_reason(exc) == "550 rejected for <address>"


def test_the_seal_key_is_generated_once_private_to_its_owner(tmp_path) -> None:
    path = tmp_path / "notify" / "seal_key"
    key = SealKey.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = SealKey.load_or_create(path)
    assert again.key_id == key.key_id and len(key.key_id) == 16
    sealed = SealedBox(PublicKey(base64.b64decode(key.public_b64))).encrypt(b"https://l")
    assert again.open(base64.b64encode(sealed).decode()) == "https://l"
    other = SealedBox(PrivateKey.generate().public_key).encrypt(b"x")
    with pytest.raises(SealedLinkUnreadable):
        key.open(base64.b64encode(other).decode())


def test_the_seal_key_can_come_from_the_environment() -> None:
    raw = PrivateKey.generate()
    key = SealKey.from_b64(base64.b64encode(bytes(raw)).decode())
    assert key.public_bytes == bytes(raw.public_key)


def test_html_parts_escape_what_they_are_given() -> None:
    mail = MailTemplates().render(Template.WELCOME, name="<script>alert(1)</script>")
    assert "<script>" not in mail.html
    assert "&lt;script&gt;" in mail.html
    assert "<script>" in mail.text  # plain text is not HTML
