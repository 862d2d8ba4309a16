"""Notify's application: e-mails queued from auth's facts, then delivered, retried or given up.

`NotifyApplication` is the event store's side (eventsourcing, synchronous): one method per
command on a Notification. `Notifier` is what the consumers and the sender call: it decides
with the domain and reaches the world only through the ports below, which `bootstrap` fills
with PostgreSQL and SMTP adapters, or with their in-memory twins for tests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

import structlog
from audifi_kit.eventstore import ConcurrencyConflict, ServiceApplication
from eventsourcing.persistence import IntegrityError

from audifi_notify.domain import (
    Notification,
    NotificationClosed,
    Recipient,
    RecipientErased,
    RetryPolicy,
    Template,
    notification_id_for,
)

log = structlog.get_logger("audifi.notify")

ACCOUNT_ERASED = "account erased"
LINK_EXPIRED = "link expired before it could be sent"
NO_ADDRESS = "no e-mail address is known for the account"
T = TypeVar("T")


class NotifyApplication(ServiceApplication):
    """E-mail: each message a Notification (pending, sent, failed), sent over SMTP from
    templates.
    """

    def record_sent(self, notification_id: UUID, at: datetime) -> None:
        notification = self.notification(notification_id)
        notification.mark_sent(at)
        self.save(notification)

    def record_failure(
        self, notification_id: UUID, error: str, at: datetime, policy: RetryPolicy
    ) -> None:
        notification = self.notification(notification_id)
        notification.record_failure(error, at, policy)
        self.save(notification)

    def fail(self, notification_id: UUID, reason: str, at: datetime) -> None:
        notification = self.notification(notification_id)
        notification.fail(reason, at)
        self.save(notification)

    def abandon(self, notification_id: UUID, reason: str, at: datetime) -> None:
        notification = self.notification(notification_id)
        notification.abandon(reason, at)
        self.save(notification)

    def notification(self, notification_id: UUID) -> Notification:
        return self.repository.get(notification_id)  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------ ports


class DeliveryRefused(Exception):
    """The mail server refused the mail or could not be reached; `reason` is safe to keep."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SealedLinkUnreadable(Exception):
    """The sealed link is not for this key, or was damaged on the way."""


class EventStoreCalls(Protocol):
    """How async code reaches the application: the kit's `EventStore` (a worker thread per
    call) or, in memory, a direct call."""

    @property
    def app(self) -> NotifyApplication: ...

    async def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T: ...


class Recipients(Protocol):
    async def remember(
        self, account_id: str, email: str, display_name: str | None = None
    ) -> None: ...
    async def forget(self, account_id: str, erased_at: datetime) -> None: ...
    async def find(self, account_id: str) -> Recipient | None: ...


class SealedLinks(Protocol):
    async def keep(
        self, notification_id: UUID, account_id: str, sealed_link: str, seal_key_id: str
    ) -> None: ...
    async def find(self, notification_id: UUID) -> tuple[str, str] | None: ...
    async def discard(self, notification_id: UUID) -> None: ...
    async def discard_for_account(self, account_id: str) -> None: ...


class Claims(Protocol):
    async def claim(self, notification_id: UUID, attempt: int, lease: float) -> bool: ...


class Transport(Protocol):
    async def send(self, message: Any) -> None: ...


class Unsealer(Protocol):
    @property
    def key_id(self) -> str: ...

    def open(self, sealed_b64: str) -> str: ...


class Templates(Protocol):
    def render(self, template: Template, **params: Any) -> Any: ...


Save = Callable[[Notification], Awaitable[None]]
SaveAll = Callable[..., Awaitable[None]]  # saves the notifications given, in one transaction


@dataclass(frozen=True, slots=True)
class MailTo:
    """One of the e-mails a message calls for: to whom, which template, with what."""

    account_id: str
    template: Template
    params: dict[str, str]


def _now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------- notifier


@dataclass
class Notifier:
    store: EventStoreCalls
    recipients: Recipients
    sealed_links: SealedLinks
    claims: Claims
    transport: Transport
    seal_key: Unsealer
    templates: Templates
    mail_from: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], datetime] = _now
    claim_lease: float = 120.0
    sent: int = 0

    # ------------------------------------------------------------- from auth's facts

    async def remember(self, account_id: str, email: str) -> None:
        await self.recipients.remember(account_id, email)

    async def forget(self, account_id: str, erased_at: datetime) -> None:
        """Erasure: the address goes, a tombstone stays, and no sealed link is kept for it."""
        await self.recipients.forget(account_id, erased_at)
        await self.sealed_links.discard_for_account(account_id)

    async def queue(
        self,
        message_id: str,
        account_id: str,
        template: Template,
        params: dict[str, str] | None = None,
        *,
        expires_at: datetime | None = None,
        sealed_link: tuple[str, str] | None = None,
        save: Save | None = None,
    ) -> bool:
        """Queue the e-mail the message `message_id` calls for; False when it already was.

        The id derives from the message, so a redelivery cannot queue a second one. `save`
        is the consumer's unit of work (the event store transaction that also records the
        message in the inbox); by default the notification is saved on its own. What the
        mail will need (a sealed link) is stored first, so the sender never finds it missing.
        """
        notification = Notification(
            notification_id=notification_id_for(message_id, template),
            account_id=account_id,
            template=Template(template).value,
            params=params or {},
            queued_at=self.clock(),
            expires_at=expires_at,
        )
        if sealed_link is not None:
            await self.sealed_links.keep(notification.id, account_id, *sealed_link)
        try:
            await (save or self._save)(notification)
        except IntegrityError:
            log.debug("already queued", notification_id=str(notification.id))
            return False
        return True

    async def queue_all(
        self, message_id: str, mails: Sequence[MailTo], *, save: SaveAll | None = None
    ) -> bool:
        """Queue every e-mail the message `message_id` calls for (each funder's, the artist's);
        False when they already were, or there is none.

        Saved together, all or none: `save` (the consumer's unit of work) may run only once
        per message, since it writes the message's inbox row. Each id derives from the
        message, the template and the account, so a redelivery queues none of them again;
        the same account twice with one template is queued once.
        """
        notifications: dict[UUID, Notification] = {}
        for mail in mails:
            nid = notification_id_for(message_id, mail.template, mail.account_id)
            if nid not in notifications:
                notifications[nid] = Notification(
                    notification_id=nid,
                    account_id=mail.account_id,
                    template=Template(mail.template).value,
                    params=mail.params,
                    queued_at=self.clock(),
                    expires_at=None,
                )
        if not notifications:
            return False
        try:
            await (save or self._save)(*notifications.values())
        except IntegrityError:
            log.debug("already queued", message_id=message_id, mails=len(notifications))
            return False
        return True

    async def _save(self, *notifications: Notification) -> None:
        await self.store.call(self.store.app.save, *notifications)

    # ---------------------------------------------------------------------- delivery

    async def notification(self, notification_id: UUID) -> Notification:
        return await self.store.call(self.store.app.notification, notification_id)

    async def deliver(self, notification_id: UUID) -> None:
        """One delivery attempt, if the notification is due and no other sender claimed it.

        A fault of ours (a template, the key) counts as an attempt, so a notification that
        can never be sent ends as failed instead of looping.
        """
        try:
            await self._deliver(notification_id)
        except (ConcurrencyConflict, NotificationClosed):
            pass  # another sender recorded this attempt first
        except Exception as exc:
            log.exception("delivery attempt broke", notification_id=str(notification_id))
            try:
                await self._failed(notification_id, f"internal error: {type(exc).__name__}")
            except (ConcurrencyConflict, NotificationClosed):
                pass

    async def _deliver(self, notification_id: UUID) -> None:
        notification = await self.notification(notification_id)
        now = self.clock()
        if not notification.is_pending:
            return
        if notification.next_attempt_at is not None and notification.next_attempt_at > now:
            return  # the read model that listed it is behind the aggregate
        if not await self.claims.claim(
            notification_id, notification.attempts + 1, self.claim_lease
        ):
            return
        app = self.store.app
        try:
            recipient = await self.recipients.find(notification.account_id)
        except RecipientErased:
            await self._close(notification_id, app.fail, ACCOUNT_ERASED, now)
            return
        if notification.expired(now):
            await self._close(notification_id, app.abandon, LINK_EXPIRED, now)
            return
        if recipient is None:
            await self._failed(notification_id, NO_ADDRESS)
            return
        params: dict[str, Any] = {**notification.params, "name": recipient.display_name}
        if notification.template is Template.MAGIC_LINK:
            link = await self._open_link(notification_id)
            if link is None:
                return
            params["link"] = link
        mail = self.templates.render(notification.template, **params)
        message = mail.message(
            sender=self.mail_from, to=recipient.email, to_name=recipient.display_name
        )
        try:
            await self.transport.send(message)
        except DeliveryRefused as exc:
            log.info("attempt refused", notification_id=str(notification_id), reason=exc.reason)
            await self._failed(notification_id, exc.reason)
            return
        await self._close(notification_id, app.record_sent, self.clock())
        self.sent += 1

    async def _open_link(self, notification_id: UUID) -> str | None:
        app = self.store.app
        sealed = await self.sealed_links.find(notification_id)
        if sealed is None:
            await self._close(notification_id, app.fail, "link unavailable", self.clock())
            return None
        sealed_link, key_id = sealed
        try:
            return self.seal_key.open(sealed_link)
        except SealedLinkUnreadable:
            reason = f"link unreadable (sealed to key {key_id}, ours is {self.seal_key.key_id})"
            await self._close(notification_id, app.fail, reason, self.clock())
            return None

    async def _failed(self, notification_id: UUID, reason: str) -> None:
        app = self.store.app
        await self._command(app.record_failure, notification_id, reason, self.clock(), self.retry)
        if not (await self.notification(notification_id)).is_pending:
            await self.sealed_links.discard(notification_id)

    async def _close(self, notification_id: UUID, command: Any, *args: Any) -> None:
        """Record a final outcome, then forget the sealed link it no longer needs."""
        await self._command(command, notification_id, *args)
        await self.sealed_links.discard(notification_id)

    async def _command(self, command: Callable[..., Any], *args: Any) -> None:
        try:
            await self.store.call(command, *args)
        except IntegrityError as exc:  # another sender saved this aggregate's next version
            raise ConcurrencyConflict(str(exc)) from exc
