"""The sender: sends every due notification, records what happened, retries with backoff.

It follows the `notification_history` read model (woken whenever it moves, or when the next
retry is due) and, for each due notification, checks the aggregate itself, claims the attempt,
looks the address up, renders the template and hands the mail to SMTP. An erased account is
never written to; a magic link that expired before it could go out is abandoned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

import asyncpg
from audifi_kit.eventstore import ConcurrencyConflict, EventStore, run_command
from audifi_kit.projections import ProjectionRunner

from audifi_notify import claims, recipients, sealed_links
from audifi_notify.application import NotifyApplication
from audifi_notify.config import NotifyConfig
from audifi_notify.domain import Notification, NotificationClosed, Template
from audifi_notify.projections.history import TABLE
from audifi_notify.rendering import MailTemplates
from audifi_notify.seal_key import SealedLinkUnreadable, SealKey
from audifi_notify.smtp import DeliveryRefused

log = logging.getLogger(__name__)

ACCOUNT_ERASED = "account erased"
LINK_EXPIRED = "link expired before it could be sent"


class Transport(Protocol):
    async def send(self, message: Any) -> None: ...


def _now() -> datetime:
    return datetime.now(UTC)


class Sender:
    def __init__(
        self,
        store: EventStore[NotifyApplication],
        pool: asyncpg.Pool,
        history: ProjectionRunner,
        transport: Transport,
        seal_key: SealKey,
        config: NotifyConfig,
        *,
        templates: MailTemplates | None = None,
        batch: int = 50,
        concurrency: int = 4,
        poll_interval: float = 1.0,
        claim_lease: float = 120.0,
    ) -> None:
        self.store = store
        self.pool = pool
        self.history = history
        self.transport = transport
        self.seal_key = seal_key
        self.config = config
        self.templates = templates or MailTemplates()
        self.batch = batch
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.claim_lease = claim_lease
        self.sent = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notify-sender")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                seen = self.history.position
                await self.send_due()
                await self._wait(seen)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notify sender failed; going on")
                await asyncio.sleep(self.poll_interval)

    async def _wait(self, seen: int) -> None:
        """Until the read model moves or the next retry is due (the poll interval at most)."""
        timeout = self.poll_interval
        next_due = await self.pool.fetchval(
            f"SELECT min(next_attempt_at) FROM {TABLE} "
            "WHERE status = 'pending' AND next_attempt_at > now()"
        )
        if next_due is not None:
            timeout = max(0.01, min(timeout, (next_due - _now()).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await self.history.wait(seen + 1, timeout=timeout)

    async def send_due(self) -> int:
        """Send what is due now; returns how many notifications were handled."""
        rows = await self.pool.fetch(
            f"SELECT id FROM {TABLE} WHERE status = 'pending' AND next_attempt_at <= now() "
            "ORDER BY next_attempt_at LIMIT $1",
            self.batch,
        )
        slots = asyncio.Semaphore(self.concurrency)

        async def attempt(notification_id: UUID) -> None:
            async with slots:
                await self._attempt(notification_id)

        await asyncio.gather(*(attempt(row["id"]) for row in rows))
        return len(rows)

    async def _attempt(self, notification_id: UUID) -> None:
        try:
            await self.deliver(notification_id)
        except (ConcurrencyConflict, NotificationClosed):
            pass  # another sender recorded this attempt first
        except Exception as exc:
            # A fault of ours (a template, the key): counted as an attempt, so a
            # notification that can never be sent ends as failed instead of looping.
            log.exception("notification %s: delivery attempt broke", notification_id)
            with contextlib.suppress(ConcurrencyConflict, NotificationClosed):
                await self._failed(notification_id, f"internal error: {type(exc).__name__}")

    async def deliver(self, notification_id: UUID) -> None:
        app = self.store.app
        notification: Notification = await self.store.call(app.notification, notification_id)
        now = _now()
        if not notification.is_pending:
            return
        if notification.next_attempt_at is not None and notification.next_attempt_at > now:
            return  # the read model is behind the aggregate
        if not await claims.claim(
            self.pool, notification_id, notification.attempts + 1, self.claim_lease
        ):
            return
        try:
            recipient = await recipients.find(self.pool, notification.account_id)
        except recipients.AccountErased:
            await self._close(notification_id, app.fail, ACCOUNT_ERASED, now)
            return
        if notification.expired(now):
            await self._close(notification_id, app.abandon, LINK_EXPIRED, now)
            return
        if recipient is None:
            await self._failed(notification_id, "no e-mail address is known for the account")
            return
        params: dict[str, Any] = {**notification.params, "name": recipient.display_name}
        if notification.template is Template.MAGIC_LINK:
            link = await self._open_link(notification_id)
            if link is None:
                return
            params["link"] = link
        mail = self.templates.render(notification.template, **params)
        message = mail.message(
            sender=self.config.mail_from, to=recipient.email, to_name=recipient.display_name
        )
        try:
            await self.transport.send(message)
        except DeliveryRefused as exc:
            log.info("notification %s: attempt refused: %s", notification_id, exc.reason)
            await self._failed(notification_id, exc.reason)
            return
        await self._close(notification_id, app.record_sent, _now())
        self.sent += 1

    async def _open_link(self, notification_id: UUID) -> str | None:
        app = self.store.app
        sealed = await sealed_links.find(self.pool, notification_id)
        if sealed is None:
            await self._close(notification_id, app.fail, "link unavailable", _now())
            return None
        sealed_link, key_id = sealed
        try:
            return self.seal_key.open(sealed_link)
        except SealedLinkUnreadable:
            reason = f"link unreadable (sealed to key {key_id}, ours is {self.seal_key.key_id})"
            await self._close(notification_id, app.fail, reason, _now())
            return None

    async def _failed(self, notification_id: UUID, reason: str) -> None:
        app = self.store.app
        await run_command(
            self.store, app.record_failure, notification_id, reason, _now(), self.config.retry
        )
        notification = await self.store.call(app.notification, notification_id)
        if not notification.is_pending:
            await sealed_links.discard(self.pool, notification_id)

    async def _close(self, notification_id: UUID, command: Any, *args: Any) -> None:
        """Record a final outcome, then forget the sealed link it no longer needs."""
        await run_command(self.store, command, notification_id, *args)
        await sealed_links.discard(self.pool, notification_id)
