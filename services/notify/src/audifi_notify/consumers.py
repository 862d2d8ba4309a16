"""Other services' integration events, turned into commands on notify's application.

Two queues: `notify.auth-events` (auth's facts: addresses, sign-in links, security notices) and
`notify.payment-events` (a fan's subscription started, could not be renewed, or ended). A
handler that queues an e-mail is declared `store=True` and hands the Notifier `ctx.save` as its
unit of work: the Notification and the message's inbox row are saved in one event-store
transaction, after the address (or the sealed link) it will need has been committed, so the
sender never sees a notification whose data is not there yet. The notification id derives from
the message id too, so even a redelivery racing the inbox cannot queue a second e-mail.

A third, `notify.nft-events`, mails nft's facts: a buyer's shares were minted on chain, a
distribution owes an account its revenue share, and a Coda Collective project reached its goal,
was cancelled (each funder's refund), or had a milestone approved or rejected; and an item of an
artist's Bucket locker reached its unlock date (each subscriber it opens to). Those events mail
several accounts at once: every mail of one message is saved in the one transaction that
records the message (`Notifier.queue_all`), with an id per recipient, so a redelivery mails
nobody twice and an account nobody can write to leaves the others' mails alone.

A fourth, `notify.coin-events`, mails coin's lottery facts: a buyer's tickets were issued (their
numbers and the drawing date), and a round's winner was paid their prize on chain. Each mails
one account, the one the event names; tickets bought on the contract itself name none, and
nobody but the winner is mailed for a draw (a draw without tickets mails nobody).

Payment's, nft's and coin's events name an account but not an address: notify writes only to
an account whose address auth told it, and skips the mail quietly for a wallet-only or erased
account (the sender checks erasure again before sending, for an account erased in between).
"""

from __future__ import annotations

import re
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
from audifi_events.coin import RoundDrawn, TicketsIssued
from audifi_events.nft import (
    ContentUnlocked,
    DistributionClaimable,
    MilestoneApproved,
    MilestoneRejected,
    ProjectCancelled,
    ProjectGoalReached,
    SharesMinted,
)
from audifi_events.payment import (
    SubscriptionCanceled,
    SubscriptionFacts,
    SubscriptionPastDue,
    SubscriptionStarted,
)
from audifi_kit.inbox import Consumer, HandlerContext
from audifi_kit.values import minor_unit_exponent

from audifi_notify.application import MailTo, Notifier
from audifi_notify.domain import RecipientErased, Template

QUEUE_PURPOSE = "auth-events"
PAYMENT_QUEUE_PURPOSE = "payment-events"
NFT_QUEUE_PURPOSE = "nft-events"
COIN_QUEUE_PURPOSE = "coin-events"

# The lottery's payment token: its prizes are base units of USDC (6 decimals).
LOTTERY_DECIMALS = 6
LOTTERY_CURRENCY = "USDC"


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _day(at: datetime) -> str:
    at = at.astimezone(UTC)
    return f"{at.day} {at:%B %Y}"


def _short_wallet(address: str) -> str:
    return address if len(address) <= 12 else f"{address[:6]}…{address[-4:]}"


def money(minor_units: int, currency: str) -> str:
    """`1000, "USD"` -> `10.00 USD`, `1000, "JPY"` -> `1,000 JPY`: integer arithmetic on the
    currency's minor units, so what the fan reads is exactly what they are charged."""
    exponent = minor_unit_exponent(currency)
    major, minor = divmod(abs(minor_units), 10**exponent)
    sign = "-" if minor_units < 0 else ""
    fraction = f".{minor:0{exponent}d}" if exponent else ""
    return f"{sign}{major:,}{fraction} {currency}"


_BASE_UNITS = re.compile(r"[0-9]+")


def token_amount(base_units: str, decimals: int, currency: str) -> str:
    """`"12500000", 6, "USD"` -> `12.50 USD`, `"1", 6, "USD"` -> `0.000001 USD`: a token's
    amount from its base units, with integer arithmetic only (an event's amount is a decimal
    string because it can exceed JSON's exact integers). Two decimals at least, as a price
    reads; more only where a non-zero digit needs them, so nothing owed is ever rounded away."""
    if not _BASE_UNITS.fullmatch(base_units):
        raise ValueError(f"a token amount is a string of base-unit digits, not {base_units!r}")
    if decimals < 0:
        raise ValueError(f"a token has zero or more decimals, not {decimals}")
    whole, part = divmod(int(base_units), 10**decimals)
    digits = f"{part:0{decimals}d}".rstrip("0") if decimals else ""
    return f"{whole:,}.{digits.ljust(2, '0')} {currency}"


def _one_line(text: str) -> str:
    """A value bound for a subject line: no line break can reach (and break) the header."""
    return " ".join(text.split())


# What a fan reads a locker item's media type as: "a new track".
_MEDIA_KINDS = {"audio": "track", "video": "video", "image": "image"}


def _link(public_url: str, path: str) -> str:
    return f"{public_url.rstrip('/')}/{path.lstrip('/')}"


async def _reachable(mail: Notifier, account_id: str) -> bool:
    """Whether anybody can read a mail to the account: not a wallet-only account (no address),
    nor an erased one."""
    try:
        return await mail.recipients.find(account_id) is not None
    except RecipientErased:
        return False


async def _mail_if_reachable(
    mail: Notifier,
    account_id: str,
    template: Template,
    params: dict[str, str],
    ctx: HandlerContext,
) -> None:
    """Queue the mail unless nobody can read it: a wallet-only account (no address) or an
    erased one. The event is still recorded as handled, so it is not redelivered."""
    if await _reachable(mail, account_id):
        await mail.queue(ctx.message.message_id, account_id, template, params, save=ctx.save)


async def _mail_all_reachable(mail: Notifier, mails: list[MailTo], ctx: HandlerContext) -> None:
    """Queue those of the message's mails somebody can read, all in one save: the consumer's
    `save` records the message, so it runs once per message (a second call would be refused as
    a redelivery, and its mails lost)."""
    readable = [m for m in mails if await _reachable(mail, m.account_id)]
    await mail.queue_all(ctx.message.message_id, readable, save=ctx.save)


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


def payment_events_consumer(
    notifier: Callable[[], Awaitable[Notifier]],
    billing_url: str,
    purpose: str = PAYMENT_QUEUE_PURPOSE,
) -> Consumer:
    """Mails about a fan's subscription; `billing_url` is the page where they fix their card or
    cancel. A renewal that went through needs no mail, so `renewed` is not even bound."""
    consumer = Consumer("notify", purpose)

    async def mail_fan(
        e: SubscriptionFacts, template: Template, ctx: HandlerContext, **params: str
    ) -> None:
        facts = {
            "artist": e.artist_id,
            "tier": e.tier_name or "",
            "price": f"{money(e.price_cents, e.currency)} / {e.interval}",
            "period_end": _day(e.current_period_end) if e.current_period_end else "",
            "billing_url": billing_url,
        }
        await _mail_if_reachable(await notifier(), e.fan_id, template, facts | params, ctx)

    @consumer.handler("payment.subscription.started", store=True)
    async def started(e: SubscriptionStarted, ctx: HandlerContext) -> None:
        await mail_fan(e, Template.SUBSCRIPTION_STARTED, ctx)

    @consumer.handler("payment.subscription.past_due", store=True)
    async def past_due(e: SubscriptionPastDue, ctx: HandlerContext) -> None:
        await mail_fan(e, Template.SUBSCRIPTION_PAYMENT_FAILED, ctx)

    @consumer.handler("payment.subscription.canceled", store=True)
    async def canceled(e: SubscriptionCanceled, ctx: HandlerContext) -> None:
        await mail_fan(e, Template.SUBSCRIPTION_ENDED, ctx, ended_on=_day(e.canceled_at))

    return consumer


def nft_events_consumer(
    notifier: Callable[[], Awaitable[Notifier]],
    public_url: str,
    purpose: str = NFT_QUEUE_PURPOSE,
) -> Consumer:
    """Mails about what an account holds: its shares minted on chain, a distribution it can
    claim; and about the Coda Collective projects it funded or (as their artist) runs: funded,
    cancelled and refunded, a milestone approved or rejected; and the items of the artists'
    lockers it subscribes to, as each is unlocked. `public_url` is where people open AudiFi; a
    claim link is it plus the event's `claim_path`. The other nft events (IPOs, sales,
    investments, proofs, releases) are not bound: nobody is mailed for them."""
    consumer = Consumer("notify", purpose)

    @consumer.handler("nft.share.minted", store=True)
    async def minted(e: SharesMinted, ctx: HandlerContext) -> None:
        params = {
            "title": _one_line(e.title) if e.title else "",
            "quantity": f"{e.quantity:,}",
            "shares": "share" if e.quantity == 1 else "shares",
            "custody": "yes" if e.custody else "",
            "wallet": "" if e.custody else _short_wallet(e.to),
            "tx_hash": e.tx_hash,
        }
        mail = await notifier()
        await _mail_if_reachable(mail, e.buyer_id, Template.SHARES_MINTED, params, ctx)

    @consumer.handler("nft.distribution.claimable", store=True)
    async def claimable(e: DistributionClaimable, ctx: HandlerContext) -> None:
        params = {
            "month": _one_line(e.month),
            "amount": token_amount(e.amount, e.decimals, e.currency),
            "title": e.title,
            "custody": "yes" if e.custody else "",
            "claim_url": "" if e.custody else _link(public_url, e.claim_path),
            "expires_on": _day(e.expires_at),
        }
        mail = await notifier()
        await _mail_if_reachable(mail, e.account_id, Template.DISTRIBUTION_AVAILABLE, params, ctx)

    # -- Coda Collective projects: amounts in the project currency's minor units ------------

    @consumer.handler("nft.project.goal_reached", store=True)
    async def goal_reached(e: ProjectGoalReached, ctx: HandlerContext) -> None:
        milestones = len(e.milestone_payouts)
        params = {
            "title": _one_line(e.title),
            "raised": money(e.raised, e.currency),
            "milestones": f"{milestones:,} {'milestone' if milestones == 1 else 'milestones'}",
        }
        mails = [MailTo(f, Template.PROJECT_FULLY_FUNDED, params) for f in e.funders]
        await _mail_all_reachable(await notifier(), mails, ctx)

    @consumer.handler("nft.project.cancelled", store=True)
    async def cancelled(e: ProjectCancelled, ctx: HandlerContext) -> None:
        refunded: dict[str, int] = {}  # a funder who invested twice reads one total
        for refund in e.refunds:
            refunded[refund.account_id] = refunded.get(refund.account_id, 0) + refund.amount
        missed_deadline = e.reason == "deadline"
        facts = {
            "title": _one_line(e.title),
            "deadline": "yes" if missed_deadline else "",
            "reason": "" if missed_deadline else _one_line(e.reason),
        }
        mails = [
            MailTo(
                account_id,
                Template.PROJECT_CANCELLED,
                facts | {"refund": money(amount, e.currency), "refunded": "yes" if amount else ""},
            )
            for account_id, amount in refunded.items()
        ]
        await _mail_all_reachable(await notifier(), mails, ctx)

    @consumer.handler("nft.milestone.approved", store=True)
    async def milestone_approved(e: MilestoneApproved, ctx: HandlerContext) -> None:
        params = {
            "title": _one_line(e.title),
            "milestone": _one_line(e.name),
            "sequence": str(e.sequence),
            "amount": money(e.amount, e.currency),
        }
        mails = [
            MailTo(e.artist_id, Template.MILESTONE_PAYOUT_RELEASED, params),
            *(MailTo(f, Template.MILESTONE_RELEASED, params) for f in e.funders),
        ]
        await _mail_all_reachable(await notifier(), mails, ctx)

    @consumer.handler("nft.milestone.rejected", store=True)
    async def milestone_rejected(e: MilestoneRejected, ctx: HandlerContext) -> None:
        params = {
            "title": _one_line(e.title),
            "milestone": _one_line(e.name),
            "reason": _one_line(e.reason),
        }
        mail = await notifier()
        await _mail_if_reachable(mail, e.artist_id, Template.MILESTONE_REJECTED, params, ctx)

    # -- Bucket's lockers: an item unlocked, a mail to each subscriber it opens to ----------

    @consumer.handler("nft.content.unlocked", store=True)
    async def content_unlocked(e: ContentUnlocked, ctx: HandlerContext) -> None:
        params = {
            "artist": _one_line(e.artist_name),
            "title": _one_line(e.title),
            "kind": _MEDIA_KINDS.get(e.media_type, "item"),
        }
        mails = [MailTo(s, Template.CONTENT_UNLOCKED, params) for s in e.subscribers]
        await _mail_all_reachable(await notifier(), mails, ctx)

    return consumer


def coin_events_consumer(
    notifier: Callable[[], Awaitable[Notifier]],
    purpose: str = COIN_QUEUE_PURPOSE,
) -> Consumer:
    """Mails about the Stoned Rabbits lottery: the seed's `ticketsPurchased` to the account
    whose purchase or burn was issued tickets, and `lottery_won` to the account whose ticket won
    a draw. Tickets or a win that name no account (bought on the contract itself) mail nobody;
    nor does a draw anybody else: the other ticket holders are not told."""
    consumer = Consumer("notify", purpose)

    @consumer.handler("coin.lottery.tickets_issued", store=True)
    async def tickets_issued(e: TicketsIssued, ctx: HandlerContext) -> None:
        if e.account_id is None:  # no account asked: nobody to write to
            return
        params = {
            "count": str(e.count),
            "ticket_numbers": ", ".join(str(n) for n in e.ticket_numbers),
            "drawing_date": _day(e.drawing_date),
            "round_id": _one_line(e.round_id),
            "wallet": _short_wallet(e.wallet),
        }
        mail = await notifier()
        await _mail_if_reachable(mail, e.account_id, Template.TICKETS_PURCHASED, params, ctx)

    @consumer.handler("coin.lottery.round_drawn", store=True)
    async def round_drawn(e: RoundDrawn, ctx: HandlerContext) -> None:
        if e.winner_account_id is None or e.winning_ticket is None or e.winner_wallet is None:
            return  # no tickets (the pot carried over), or a winner with no account here
        params = {
            "round_id": _one_line(e.round_id),
            "winning_ticket": str(e.winning_ticket),
            "prize": token_amount(e.prize, LOTTERY_DECIMALS, LOTTERY_CURRENCY),
            "wallet": _short_wallet(e.winner_wallet),
            "tx_hash": e.tx_hash,
        }
        mail = await notifier()
        await _mail_if_reachable(mail, e.winner_account_id, Template.LOTTERY_WON, params, ctx)

    return consumer
