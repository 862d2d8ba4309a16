"""Holdings from the chain: MasterShares' transfer logs into nft's event store (and, by the
same indexer, RevenueDistributor's claims into their distributions, `ClaimsIndexHandler`, and
MilestoneEscrow's fundings and refunds into Coda chain projects, `EscrowIndexHandler`).

The kit's `ChainIndexer` follows MasterShares (from the block it was deployed in,
`settings.chain_confirmations` behind the head) and hands each log to `SharesIndexHandler`,
in the event store's worker thread: a TransferSingle is one movement of one master's shares, a
TransferBatch one per (id, value) pair, each applied to that master's `ShareToken` (created at
its first movement). The handler returns the tokens it changed, unsaved; the indexer saves
them with the log's inbox key (exactly once) and, when the log's block leaves the chain, asks
the handler to take its movements back (`revert`: the pairs in reverse order).

Every movement counts, whoever made it: the platform's mints and a holder's own transfer from
wallet to wallet alike. MasterShares' other logs (IpoOpened, SharesMinted, roles, approvals)
change no balance and are passed over: a mint is read from its TransferSingle.

A movement is named by its log (`<block hash>:<log index>`, the kit's `ChainLog.key`) and, in
a batch, its place in it (`/<i>`): a batch may move the same token twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
from audifi_kit.chain.indexer import ChainIndexer, ChainLog
from audifi_kit.chain.platform import PlatformChain, artifact
from audifi_kit.eventstore import EventStore
from audifi_kit.settings import Settings
from eth_utils import to_checksum_address
from eventsourcing.application import AggregateNotFoundError

from audifi_nft.application import NftApplication
from audifi_nft.domain.holdings import (
    REORG_WINDOW,
    HoldingsOutOfStep,
    ShareToken,
    master_of_token,
    share_token_id,
)

log = logging.getLogger(__name__)

INDEXER_NAME = "nft.shares"
CONTRACT = "MasterShares"
DISTRIBUTOR = "RevenueDistributor"
ESCROW = "MilestoneEscrow"


@dataclass(frozen=True, slots=True)
class Movement:
    """One (token id, amount) of a transfer log."""

    key: str
    master_id: UUID
    operator: str
    from_address: str
    to_address: str
    amount: int


def movements(chain_log: ChainLog) -> list[Movement]:
    """The movements a MasterShares log means; none for its other events."""
    args = chain_log.args
    if chain_log.event == "TransferSingle":
        pairs = [(args["id"], args["value"])]
    elif chain_log.event == "TransferBatch":
        pairs = list(zip(args["ids"], args["values"], strict=True))
    else:
        return []
    operator = to_checksum_address(args["operator"])
    sender = to_checksum_address(args["from"])
    recipient = to_checksum_address(args["to"])
    found = []
    for i, (token_id, amount) in enumerate(pairs):
        try:
            master_id = master_of_token(int(token_id))
        except ValueError:
            # Only nft's operator mints, masters' ids only: such a token was never one of ours.
            log.warning("MasterShares log %s moves token %s: no master's", chain_log.key, token_id)
            continue
        key = chain_log.key if chain_log.event == "TransferSingle" else f"{chain_log.key}/{i}"
        found.append(Movement(key, master_id, operator, sender, recipient, int(amount)))
    return found


class SharesIndexHandler:
    """The indexer's `LogHandler` for MasterShares: movements into `ShareToken`s."""

    def apply(self, app: NftApplication, chain_log: ChainLog) -> Sequence[Any]:
        tokens: dict[UUID, ShareToken] = {}
        for m in movements(chain_log):
            token = tokens.get(m.master_id) or _token(app, m.master_id, create=True)
            tokens[m.master_id] = token
            token.apply_transfer(
                log_key=m.key,
                operator=m.operator,
                from_address=m.from_address,
                to_address=m.to_address,
                amount=m.amount,
                block_number=chain_log.block_number,
                block_hash=chain_log.block_hash,
                tx_hash=chain_log.tx_hash,
                log_index=chain_log.log_index,
            )
        return list(tokens.values())

    def revert(self, app: NftApplication, chain_log: ChainLog) -> Sequence[Any]:
        tokens: dict[UUID, ShareToken] = {}
        for m in reversed(movements(chain_log)):
            token = tokens.get(m.master_id) or _token(app, m.master_id, create=False)
            tokens[m.master_id] = token
            token.revert_transfer(m.key)
        return list(tokens.values())


class ClaimsIndexHandler:
    """RevenueDistributor's `Claimed` logs into their distribution (found by its on-chain
    id); a claim whose block left the chain is taken back. Claims of distributions nft did not
    record, and the contract's other logs, are passed over."""

    def apply(self, app: NftApplication, chain_log: ChainLog) -> Sequence[Any]:
        if chain_log.event != "Claimed":
            return []
        args = chain_log.args
        d = app.distribution_of_chain(int(args["distributionId"]))
        if d is None:
            return []
        d.record_claim(
            index=int(args["index"]),
            account=to_checksum_address(args["account"]),
            amount=int(args["amount"]),
            tx_hash=chain_log.tx_hash,
            block=chain_log.block_number,
            at=datetime.now(UTC),
        )
        return [d]

    def revert(self, app: NftApplication, chain_log: ChainLog) -> Sequence[Any]:
        if chain_log.event != "Claimed":
            return []
        d = app.distribution_of_chain(int(chain_log.args["distributionId"]))
        if d is None:
            return []
        d.undo_claim(
            index=int(chain_log.args["index"]), tx_hash=chain_log.tx_hash, at=datetime.now(UTC)
        )
        return [d]


class EscrowIndexHandler:
    """MilestoneEscrow's `ProjectFunded` and `Refunded` logs into their Coda project (found
    by its escrow project's id): what fans paid in and took back, as the chain says. The
    operator's own steps (created, released, cancelled) are recorded by it (escrow.py);
    projects that are not ours are passed over."""

    EVENTS = ("ProjectFunded", "Refunded")

    def _project(self, app: NftApplication, chain_log: ChainLog) -> Any:
        if chain_log.event not in self.EVENTS:
            return None
        return app.project_of_chain(int(chain_log.args["projectId"]))

    def apply(self, app: NftApplication, chain_log: ChainLog) -> Sequence[Any]:
        project = self._project(app, chain_log)
        if project is None:
            return []
        args = chain_log.args
        funder = to_checksum_address(args["funder"])
        record = (
            project.record_chain_funding
            if chain_log.event == "ProjectFunded"
            else project.record_chain_refund
        )
        changed = record(
            log_key=chain_log.key,
            funder=funder,
            amount=int(args["amount"]),
            tx_hash=chain_log.tx_hash,
            now=datetime.now(UTC),
        )
        return [project] if changed else []

    def revert(self, app: NftApplication, chain_log: ChainLog) -> Sequence[Any]:
        project = self._project(app, chain_log)
        if project is None:
            return []
        args = chain_log.args
        take_back = (
            project.revert_chain_funding
            if chain_log.event == "ProjectFunded"
            else project.revert_chain_refund
        )
        changed = take_back(
            log_key=chain_log.key,
            funder=to_checksum_address(args["funder"]),
            amount=int(args["amount"]),
            now=datetime.now(UTC),
        )
        return [project] if changed else []


class PlatformIndexHandler:
    """nft's one indexer: each log to the handler of the contract that emitted it."""

    def __init__(self, handlers: dict[str, Any]) -> None:
        self.handlers = {to_checksum_address(a): h for a, h in handlers.items()}

    def apply(self, app: NftApplication, chain_log: ChainLog) -> Sequence[Any]:
        return self.handlers[to_checksum_address(chain_log.address)].apply(app, chain_log)

    def revert(self, app: NftApplication, chain_log: ChainLog) -> Sequence[Any]:
        return self.handlers[to_checksum_address(chain_log.address)].revert(app, chain_log)


def _token(app: NftApplication, master_id: UUID, *, create: bool) -> ShareToken:
    try:
        found = app.repository.get(share_token_id(master_id))
    except AggregateNotFoundError:
        if not create:
            raise HoldingsOutOfStep(f"no shares of master {master_id} to take back") from None
        return ShareToken.issue(master_id)
    assert isinstance(found, ShareToken)
    return found


def share_token(app: NftApplication, master_id: UUID) -> ShareToken | None:
    """A master's shares as indexed so far; None before their first movement."""
    try:
        found = app.repository.get(share_token_id(master_id))
    except AggregateNotFoundError:
        return None
    return found if isinstance(found, ShareToken) else None


async def share_indexer(
    name: str,
    chain: PlatformChain,
    store: EventStore[NftApplication],
    pool: asyncpg.Pool,
    settings: Settings,
    **options: Any,
) -> ChainIndexer:
    """The indexer of MasterShares' transfers into `store`: from the block the contract was
    deployed in, `settings.chain_confirmations` behind the head, keeping as many blocks as a
    `ShareToken` remembers transfers (`REORG_WINDOW`). `options`: ChainIndexer's own
    (`batch_blocks`, `poll_interval`, ...)."""
    deployment = await chain.start()
    shares = deployment.contracts[CONTRACT]
    distributor = deployment.contracts.get(DISTRIBUTOR)
    reader = await chain.adapter("nft")
    contracts = {shares.address: artifact(CONTRACT, settings).abi}
    handlers: dict[str, Any] = {shares.address: SharesIndexHandler()}
    if distributor is not None:  # its claims: recorded into their distributions
        contracts[distributor.address] = artifact(DISTRIBUTOR, settings).abi
        handlers[distributor.address] = ClaimsIndexHandler()
    escrow = deployment.contracts.get(ESCROW)
    if escrow is not None:  # Coda chain projects' fundings and refunds
        contracts[escrow.address] = artifact(ESCROW, settings).abi
        handlers[escrow.address] = EscrowIndexHandler()
    return ChainIndexer(
        name,
        reader.w3,
        store,  # type: ignore[arg-type]
        pool,
        contracts,
        PlatformIndexHandler(handlers),
        start_block=min(c.block for c in (shares, distributor, escrow) if c is not None),
        confirmations=settings.chain_confirmations,
        keep_blocks=REORG_WINDOW,
        **options,
    )
