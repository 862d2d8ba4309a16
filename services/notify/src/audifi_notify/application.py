"""The notify service's eventsourcing application: one method per command."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any
from uuid import UUID

from audifi_kit.eventstore import ServiceApplication
from eventsourcing.persistence import IntegrityError
from psycopg.errors import UniqueViolation

from audifi_notify.claims import CLAIMS_DDL
from audifi_notify.domain import Notification, RetryPolicy, Template
from audifi_notify.recipients import RECIPIENTS_DDL
from audifi_notify.sealed_links import SEALED_LINKS_DDL


class NotifyApplication(ServiceApplication):
    """E-mail: each message a Notification (pending, sent, failed), sent over SMTP from
    templates.
    """

    def __init__(self, env: Any = None) -> None:
        super().__init__(env)
        # Notify's own tables beside its events, created before any consumer runs.
        datastore = self.recorder.datastore  # type: ignore[attr-defined]
        for statement in (*RECIPIENTS_DDL, *SEALED_LINKS_DDL, *CLAIMS_DDL):
            # Two replicas starting at once may race on the catalog: the loser's is a no-op.
            with contextlib.suppress(UniqueViolation), datastore.transaction(commit=True) as c:
                c.execute(statement)

    def queue(
        self,
        notification_id: UUID,
        account_id: str,
        template: Template,
        params: dict[str, str],
        queued_at: datetime,
        expires_at: datetime | None = None,
    ) -> bool:
        """Queue one e-mail; False when this notification was already queued (a redelivery)."""
        notification = Notification(
            notification_id=notification_id,
            account_id=account_id,
            template=str(template),
            params=params,
            queued_at=queued_at,
            expires_at=expires_at,
        )
        try:
            self.save(notification)
        except IntegrityError:
            return False
        return True

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
