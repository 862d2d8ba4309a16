"""Builds notify's application: with PostgreSQL and SMTP adapters for the service, or with
their in-memory twins for application tests (eventsourcing's POPO persistence, no I/O).

The one place adapters are chosen. The service's event store is opened by the kit's runtime
(before the app's own lifespan runs), so `on_postgres` takes it and the runtime's pool, creates
notify's side tables there, and returns the notifier the sender and the consumers share.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
from audifi_kit.eventstore import IN_MEMORY, DirectCalls, EventStore

from audifi_notify.adapters.claims import CLAIMS_DDL, InMemoryClaims, PostgresClaims
from audifi_notify.adapters.recipients import (
    RECIPIENTS_DDL,
    InMemoryRecipients,
    PostgresRecipients,
)
from audifi_notify.adapters.rendering import MailTemplates
from audifi_notify.adapters.seal_key import SealKey
from audifi_notify.adapters.sealed_links import (
    SEALED_LINKS_DDL,
    InMemorySealedLinks,
    PostgresSealedLinks,
)
from audifi_notify.adapters.smtp import InMemoryTransport
from audifi_notify.application import Notifier, NotifyApplication, Transport
from audifi_notify.config import NotifyConfig


@dataclass
class InMemoryNotify:
    """Notify on POPO persistence, and the in-memory adapters a test looks into."""

    notifier: Notifier
    app: NotifyApplication
    recipients: InMemoryRecipients
    sealed_links: InMemorySealedLinks
    claims: InMemoryClaims
    transport: InMemoryTransport
    seal_key: SealKey


def in_memory(
    *,
    config: NotifyConfig | None = None,
    clock: Callable[[], datetime] | None = None,
    seal_key: SealKey | None = None,
) -> InMemoryNotify:
    config = config or NotifyConfig()
    app = NotifyApplication(IN_MEMORY)
    recipients, links, claims = InMemoryRecipients(), InMemorySealedLinks(), InMemoryClaims()
    transport = InMemoryTransport()
    key = seal_key or SealKey.generate()
    notifier = Notifier(
        store=DirectCalls(app),
        recipients=recipients,
        sealed_links=links,
        claims=claims,
        transport=transport,
        seal_key=key,
        templates=MailTemplates(),
        mail_from=config.mail_from,
        retry=config.retry,
    )
    if clock is not None:
        notifier.clock = clock
    return InMemoryNotify(notifier, app, recipients, links, claims, transport, key)


async def create_tables(pool: asyncpg.Pool) -> None:
    """Notify's tables beside its events (idempotent)."""
    async with pool.acquire() as conn:
        for statement in (*RECIPIENTS_DDL, *SEALED_LINKS_DDL, *CLAIMS_DDL):
            # Two replicas starting at once may race on the catalog: the loser's is a no-op.
            with contextlib.suppress(asyncpg.UniqueViolationError):
                await conn.execute(statement)


async def on_postgres(
    store: EventStore[NotifyApplication],
    pool: asyncpg.Pool,
    transport: Transport,
    seal_key: SealKey,
    config: NotifyConfig,
) -> Notifier:
    await create_tables(pool)
    return Notifier(
        store=store,
        recipients=PostgresRecipients(pool),
        sealed_links=PostgresSealedLinks(pool),
        claims=PostgresClaims(pool),
        transport=transport,
        seal_key=seal_key,
        templates=MailTemplates(),
        mail_from=config.mail_from,
        retry=config.retry,
    )


@dataclass
class NotifierSlot:
    """The notifier the app's lifespan builds. The consumers start with the runtime, before
    it: a message that arrives in between waits here for the tables it needs."""

    _notifier: Notifier | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def fill(self, notifier: Notifier) -> None:
        self._notifier = notifier
        self._ready.set()

    def empty(self) -> None:
        self._notifier = None
        self._ready.clear()

    async def get(self) -> Notifier:
        await self._ready.wait()
        assert self._notifier is not None
        return self._notifier
