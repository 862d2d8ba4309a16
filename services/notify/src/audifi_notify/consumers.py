"""Auth's integration events, turned into queued e-mails and into notify's address book.

One queue, `notify.auth-events`. A handler that queues an e-mail is declared `store=True`: the
Notification and the message's inbox row are saved in one event-store transaction, after the
address (or the sealed link) it will need has been committed, so the sender never sees a
notification whose data is not there yet. The notification id is derived from the message id
too, so even a redelivery racing the inbox cannot queue a second e-mail.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
from audifi_events.auth import (
    AccountErased,
    AccountRegistered,
    EmailChanged,
    MagicLinkRequested,
    TwoFactorEnabled,
    WalletLinked,
)
from audifi_kit.inbox import Consumer, HandlerContext

from audifi_notify import recipients, sealed_links
from audifi_notify.domain import Notification, Template, notification_id_for

QUEUE_PURPOSE = "auth-events"


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _short_wallet(address: str) -> str:
    return address if len(address) <= 12 else f"{address[:6]}…{address[-4:]}"


def _notification(
    ctx: HandlerContext,
    account_id: str,
    template: Template,
    params: dict[str, str] | None = None,
    expires_at: datetime | None = None,
) -> Notification:
    return Notification(
        notification_id=notification_id_for(ctx.message.message_id, template),
        account_id=account_id,
        template=template.value,
        params=params or {},
        queued_at=datetime.now(UTC),
        expires_at=expires_at,
    )


class Tables:
    """Where `store=True` handlers write notify's tables: the service's read-model pool once
    the app has started; a connection of their own before that (or in a tool without one)."""

    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None

    async def write(self, ctx: HandlerContext, write: Any, *args: Any) -> None:
        """Run an idempotent table write, committed before the handler saves its events."""
        if self.pool is not None:
            async with self.pool.acquire() as conn:
                await write(conn, *args)
            return
        assert ctx.store is not None
        conn = await ctx.store.connect()
        try:
            await write(conn, *args)
        finally:
            await conn.close()


def auth_events_consumer(purpose: str = QUEUE_PURPOSE, tables: Tables | None = None) -> Consumer:
    consumer = Consumer("notify", purpose)
    tables = tables or Tables()

    @consumer.handler("auth.account.registered", store=True)
    async def registered(e: AccountRegistered, ctx: HandlerContext) -> None:
        if e.email is None:  # a wallet-only account: nobody to write to yet
            return
        await tables.write(ctx, recipients.remember, e.account_id, e.email)
        await ctx.save(_notification(ctx, e.account_id, Template.WELCOME))

    @consumer.handler("auth.account.email_changed")
    async def email_changed(e: EmailChanged, ctx: HandlerContext) -> None:
        assert ctx.conn is not None
        await recipients.remember(ctx.conn, e.account_id, e.email)

    @consumer.handler("auth.account.two_factor_enabled", store=True)
    async def two_factor_enabled(e: TwoFactorEnabled, ctx: HandlerContext) -> None:
        params = {"enabled_at": _when(e.enabled_at)}
        await ctx.save(_notification(ctx, e.account_id, Template.TWO_FACTOR_ENABLED, params))

    @consumer.handler("auth.wallet.linked", store=True)
    async def wallet_linked(e: WalletLinked, ctx: HandlerContext) -> None:
        params = {
            "wallet": _short_wallet(e.wallet_address),
            "chain": "Solana" if e.chain == "solana" else "Ethereum",
            "linked_at": _when(e.linked_at),
        }
        await ctx.save(_notification(ctx, e.account_id, Template.WALLET_LINKED, params))

    @consumer.handler("auth.magic_link.requested", store=True)
    async def magic_link_requested(e: MagicLinkRequested, ctx: HandlerContext) -> None:
        notification = _notification(
            ctx,
            e.account_id,
            Template.MAGIC_LINK,
            {"expires_at": _when(e.expires_at)},
            expires_at=e.expires_at,
        )
        await tables.write(
            ctx, sealed_links.keep, notification.id, e.account_id, e.sealed_link, e.seal_key_id
        )
        await ctx.save(notification)

    @consumer.handler("auth.account.erased")
    async def erased(e: AccountErased, ctx: HandlerContext) -> None:
        assert ctx.conn is not None
        await recipients.forget(ctx.conn, e.account_id, e.erased_at)
        await sealed_links.discard_for_account(ctx.conn, e.account_id)

    return consumer
