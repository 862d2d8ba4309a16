"""Auth's integration events, turned into commands on notify's application.

One queue, `notify.auth-events`. A handler that queues an e-mail is declared `store=True` and
hands the Notifier `ctx.save` as its unit of work: the Notification and the message's inbox row
are saved in one event-store transaction, after the address (or the sealed link) it will need
has been committed, so the sender never sees a notification whose data is not there yet. The
notification id derives from the message id too, so even a redelivery racing the inbox cannot
queue a second e-mail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from audifi_events.auth import (
    AccountErased,
    AccountRegistered,
    EmailAddressReplaced,
    MagicLinkRequested,
    TwoFactorEnabled,
    WalletLinked,
)
from audifi_kit.inbox import Consumer, HandlerContext

from audifi_notify.application import Notifier
from audifi_notify.domain import Template

QUEUE_PURPOSE = "auth-events"


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _short_wallet(address: str) -> str:
    return address if len(address) <= 12 else f"{address[:6]}…{address[-4:]}"


def auth_events_consumer(
    notifier: Callable[[], Awaitable[Notifier]], purpose: str = QUEUE_PURPOSE
) -> Consumer:
    """`notifier` gives the application once the service has built it (see bootstrap)."""
    consumer = Consumer("notify", purpose)

    @consumer.handler("auth.account.registered", store=True)
    async def registered(e: AccountRegistered, ctx: HandlerContext) -> None:
        if e.email is None:  # a wallet-only account: nobody to write to yet
            return
        mail = await notifier()
        await mail.remember(e.account_id, e.email)
        await mail.queue(ctx.message.message_id, e.account_id, Template.WELCOME, save=ctx.save)

    @consumer.handler("auth.account.email_address_replaced")
    async def email_address_replaced(e: EmailAddressReplaced, ctx: HandlerContext) -> None:
        await (await notifier()).remember(e.account_id, e.email)

    @consumer.handler("auth.account.two_factor_enabled", store=True)
    async def two_factor_enabled(e: TwoFactorEnabled, ctx: HandlerContext) -> None:
        params = {"enabled_at": _when(e.enabled_at)}
        await (await notifier()).queue(
            ctx.message.message_id,
            e.account_id,
            Template.TWO_FACTOR_ENABLED,
            params,
            save=ctx.save,
        )

    @consumer.handler("auth.wallet.linked", store=True)
    async def wallet_linked(e: WalletLinked, ctx: HandlerContext) -> None:
        params = {
            "wallet": _short_wallet(e.wallet_address),
            "chain": "Solana" if e.chain == "solana" else "Ethereum",
            "linked_at": _when(e.linked_at),
        }
        await (await notifier()).queue(
            ctx.message.message_id, e.account_id, Template.WALLET_LINKED, params, save=ctx.save
        )

    @consumer.handler("auth.magic_link.requested", store=True)
    async def magic_link_requested(e: MagicLinkRequested, ctx: HandlerContext) -> None:
        await (await notifier()).queue(
            ctx.message.message_id,
            e.account_id,
            Template.MAGIC_LINK,
            {"expires_at": _when(e.expires_at)},
            expires_at=e.expires_at,
            sealed_link=(e.sealed_link, e.seal_key_id),
            save=ctx.save,
        )

    @consumer.handler("auth.account.erased")
    async def erased(e: AccountErased, ctx: HandlerContext) -> None:
        await (await notifier()).forget(e.account_id, e.erased_at)

    return consumer
