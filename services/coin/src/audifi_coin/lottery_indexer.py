"""The Lottery contract's logs into the rounds: the kit's reorg-safe `ChainIndexer`.

Every ticket range the chain issued is recorded and confirmed here, whichever way it came:
bought from the contract (`TicketsBought`), earned by a burn there (`TicketsEarned`), or
issued by the operator for a payment the service verified (`TicketsIssued`, which the purchase
already recorded from its receipt: the indexer confirms it). A log whose block leaves the chain
drops its range again, and a claim whose tickets it was goes back to `verified` (asking again
issues them anew). Closes, pot additions and draws the service made are recorded from their
receipts; their logs confirm them (a crash between the transaction and the record is healed
here). Logs of rounds the service did not open are passed over.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from audifi_kit.chain.indexer import ChainIndexer, ChainLog
from audifi_kit.chain.platform import PlatformChain, artifact
from audifi_kit.eventstore import EventStore
from audifi_kit.settings import Settings
from eth_utils import to_checksum_address
from hexbytes import HexBytes

from audifi_coin.application import CoinApplication
from audifi_coin.domain.lottery import BURN, PURCHASE, USDC, TicketRange

INDEXER_NAME = "coin-lottery"
CONTRACT = "Lottery"
ZERO = to_checksum_address("0x" + "00" * 20)
KEEP_BLOCKS = 10_000


def _hex(value: Any) -> str:
    return HexBytes(value).to_0x_hex()


def ticket_range(app: CoinApplication, chain_log: ChainLog) -> TicketRange | None:
    """The range a tickets log issued, as the purchase path records it (equal, field for
    field, to what the issuing receipt gave it)."""
    if chain_log.event not in ("TicketsBought", "TicketsEarned", "TicketsIssued"):
        return None
    args = chain_log.args
    common = {
        "first": int(args["firstTicket"]),
        "count": int(args["count"]),
        "wallet": to_checksum_address(args["holder"]),
        "tx_hash": chain_log.tx_hash,
    }
    if chain_log.event == "TicketsBought":
        return TicketRange(
            method=PURCHASE,
            payment_method=USDC,
            ref=chain_log.tx_hash,
            pot_added=int(args["paid"]),
            **common,
        )
    if chain_log.event == "TicketsEarned":
        return TicketRange(
            method=BURN, payment_method=None, ref=chain_log.tx_hash, pot_added=0, **common
        )
    ref = _hex(args["ref"])  # TicketsIssued: the claim's hash
    claim = app.claim(ref)
    return TicketRange(
        method=claim.method if claim is not None else PURCHASE,
        payment_method=claim.payment_method if claim is not None else None,
        ref=ref,
        pot_added=int(args["potAdded"]),
        **common,
    )


class LotteryIndexHandler:
    """The indexer's `LogHandler` for the Lottery contract."""

    def apply(self, app: CoinApplication, chain_log: ChainLog) -> Sequence[Any]:
        if "roundId" not in chain_log.args:
            return []
        r = app.round_of_chain(int(chain_log.args["roundId"]))
        if r is None:
            return []
        now = datetime.now(UTC)
        tickets = ticket_range(app, chain_log)
        if tickets is not None:
            return app.tickets_recorded(r, tickets, at=now, confirmed_block=chain_log.block_number)
        args = chain_log.args
        if chain_log.event == "RoundClosed":
            closed = r.close(
                close_block=int(args["closeBlock"]),
                tickets=int(args["ticketCount"]),
                pot=int(args["pot"]),
                at=now,
            )
            return [r] if closed else []
        if chain_log.event == "PotAdded":
            return (
                [r] if r.add_to_pot(int(args["amount"]), tx_hash=chain_log.tx_hash, at=now) else []
            )
        if chain_log.event == "RoundDrawn":
            winner = to_checksum_address(args["winner"])
            drawn = r.draw(
                seed=_hex(args["seed"]),
                draw_block_hash=_hex(args["drawBlockHash"]),
                winning_index=None if winner == ZERO else int(args["winningTicket"]),
                winner=None if winner == ZERO else winner,
                prize=int(args["prize"]),
                tx_hash=chain_log.tx_hash,
                at=now,
                winner_account_id=app.winner_account(
                    r, None if winner == ZERO else int(args["winningTicket"])
                ),
            )
            return [r] if drawn else []
        return []

    def revert(self, app: CoinApplication, chain_log: ChainLog) -> Sequence[Any]:
        """Tickets whose log left the chain are dropped; a close, a pot addition or a draw
        that left it is not undone here (the service sends them once the round's sales are
        over, and reads the chain again when asked to draw)."""
        if "roundId" not in chain_log.args:
            return []
        r = app.round_of_chain(int(chain_log.args["roundId"]))
        tickets = ticket_range(app, chain_log) if r is not None else None
        if r is None or tickets is None:
            return []
        return app.tickets_dropped(
            r, first=tickets.first, ref=tickets.ref, tx_hash=tickets.tx_hash, at=datetime.now(UTC)
        )


async def lottery_indexer(
    name: str,
    chain: PlatformChain,
    store: EventStore[CoinApplication],
    pool: asyncpg.Pool,
    settings: Settings,
    **options: Any,
) -> ChainIndexer:
    """The indexer of the Lottery's logs into `store`, from the block it was deployed in,
    `settings.chain_confirmations` behind the head. `options`: ChainIndexer's own."""
    deployment = await chain.start()
    lottery = deployment.contracts[CONTRACT]
    reader = await chain.adapter("coin")
    return ChainIndexer(
        name,
        reader.w3,
        store,  # type: ignore[arg-type]
        pool,
        {lottery.address: artifact(CONTRACT, settings).abi},
        LotteryIndexHandler(),
        start_block=lottery.block,
        confirmations=settings.chain_confirmations,
        keep_blocks=KEEP_BLOCKS,
        **options,
    )
