"""A Notification: one e-mail to one account, from queued to sent, failed or abandoned.

Its events never hold the address nor a magic link: the address is looked up when the mail
goes out (so an erased account is never written to), and a magic link stays sealed outside
the event store until then.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

# Namespace of notification ids: one per (integration message, template), or per (message,
# template, recipient) for a message that mails several accounts, so a redelivered message can
# never queue a second e-mail.
_NAMESPACE = uuid.UUID("6b0e0a52-3c1f-4f57-9a0e-6d1f6f3c9a11")


def notification_id_for(message_id: str, template: str, account_id: str | None = None) -> UUID:
    """The id of the mail `message_id` calls for. A message that mails several accounts with
    one template (a project's funders) names the account too: one id per recipient. Without
    it, the id is the one a single-recipient mail always had."""
    key = (
        f"{message_id}/{template}"
        if account_id is None
        else f"{message_id}/{template}/{account_id}"
    )
    return uuid.uuid5(_NAMESPACE, key)


class Template(enum.StrEnum):
    MAGIC_LINK = "magic_link"
    WELCOME = "welcome"
    TWO_FACTOR_ENABLED = "two_factor_enabled"
    WALLET_LINKED = "wallet_linked"
    SUBSCRIPTION_STARTED = "subscription_started"
    SUBSCRIPTION_PAYMENT_FAILED = "subscription_payment_failed"
    SUBSCRIPTION_ENDED = "subscription_ended"
    SHARES_MINTED = "shares_minted"
    DISTRIBUTION_AVAILABLE = "distribution_available"
    # Coda Collective: one event, a mail to each funder (and to the artist).
    PROJECT_FULLY_FUNDED = "project_fully_funded"
    PROJECT_CANCELLED = "project_cancelled"
    MILESTONE_PAYOUT_RELEASED = "milestone_payout_released"
    MILESTONE_RELEASED = "milestone_released"
    MILESTONE_REJECTED = "milestone_rejected"
    # Bucket's lockers: one event, a mail to each subscriber the unlocked item opens to.
    CONTENT_UNLOCKED = "content_unlocked"
    # The Stoned Rabbits lottery (coin): the buyer's tickets, and the winner of a draw.
    TICKETS_PURCHASED = "tickets_purchased"
    LOTTERY_WON = "lottery_won"


class Status(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    ABANDONED = "abandoned"


class NotificationClosed(Exception):
    """The notification was already sent, failed or abandoned: nothing more happens to it."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long to wait after each failed attempt; one attempt more than there are delays."""

    delays: tuple[float, ...] = (1.0, 5.0, 30.0)

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1

    def next_attempt_after(self, attempt: int, failed_at: datetime) -> datetime | None:
        """When attempt `attempt + 1` is due; None when `attempt` was the last one."""
        if attempt >= self.max_attempts:
            return None
        return failed_at + timedelta(seconds=self.delays[attempt - 1])


class Notification(Aggregate):
    @staticmethod
    def create_id(notification_id: UUID, **_: Any) -> UUID:
        return notification_id

    @event("Queued")
    def __init__(
        self,
        *,
        notification_id: UUID,
        account_id: str,
        template: Template,
        params: dict[str, str],
        queued_at: datetime,
        expires_at: datetime | None,
    ) -> None:
        self.account_id = account_id
        self.template = Template(template)
        self.params = dict(params)
        self.queued_at = queued_at
        self.expires_at = expires_at
        self.status = Status.PENDING
        self.attempts = 0
        self.last_error: str | None = None
        self.next_attempt_at: datetime | None = queued_at
        self.sent_at: datetime | None = None

    @property
    def is_pending(self) -> bool:
        return self.status is Status.PENDING

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def _must_be_pending(self) -> None:
        if not self.is_pending:
            raise NotificationClosed(f"notification {self.id} is {self.status}")

    def mark_sent(self, at: datetime) -> None:
        self._must_be_pending()
        self._sent(attempt=self.attempts + 1, sent_at=at)

    @event("Sent")
    def _sent(self, attempt: int, sent_at: datetime) -> None:
        self.attempts = attempt
        self.status = Status.SENT
        self.sent_at = sent_at
        self.next_attempt_at = None

    def record_failure(self, error: str, at: datetime, policy: RetryPolicy) -> None:
        """A delivery attempt failed: try again later, or give up after the last attempt."""
        self._must_be_pending()
        attempt = self.attempts + 1
        retry_at = policy.next_attempt_after(attempt, at)
        self._delivery_failed(attempt=attempt, error=error, failed_at=at, retry_at=retry_at)
        if retry_at is None:
            self._failed(reason=error, failed_at=at)

    @event("DeliveryFailed")
    def _delivery_failed(
        self, attempt: int, error: str, failed_at: datetime, retry_at: datetime | None
    ) -> None:
        self.attempts = attempt
        self.last_error = error
        self.next_attempt_at = retry_at

    def fail(self, reason: str, at: datetime) -> None:
        """Given up without another attempt (e.g. the account was erased)."""
        self._must_be_pending()
        self._failed(reason=reason, failed_at=at)

    @event("Failed")
    def _failed(self, reason: str, failed_at: datetime) -> None:
        self.status = Status.FAILED
        self.last_error = reason
        self.next_attempt_at = None

    def abandon(self, reason: str, at: datetime) -> None:
        """Not worth sending any more (a magic link that expired before it went out)."""
        self._must_be_pending()
        self._abandoned(reason=reason, abandoned_at=at)

    @event("Abandoned")
    def _abandoned(self, reason: str, abandoned_at: datetime) -> None:
        self.status = Status.ABANDONED
        self.last_error = reason
        self.next_attempt_at = None
