"""The minter: every paid allocation's shares put on chain, once (see domain/mint.py).

`drive(ipo_id, reservation_id)` takes one allocation as far as it can go now:

- no mint yet: requested (to the buyer's wallet, or custody);
- requested: signed, recorded (`Signed`), sent, and its receipt awaited: minted, or failed
  with the chain's reason when it reverted (before signing: the estimate; or once mined);
- signed (a crash, a timeout, a restart in between): its hash looked up; no receipt, the same
  raw transaction sent again; its nonce spent by another transaction and still no receipt:
  dropped, and the next drive signs anew;
- minted or failed: nothing (a failed mint waits for `POST /masters/{id}/mint`).

Withdrawals from custody (domain/custody.py) take the same steps with MasterShares'
`safeTransferFrom(custody, wallet, ...)` instead of `mint`; a failed one releases the shares
back to what the account can withdraw.

Only a revert fails a mint: a node that is down or slow raises, and the follower tries again
later from what is recorded. `Minter` follows the `minting.queue` read model (woken when it
moves) and drives what is waiting, one at a time: one signer, one nonce sequence. Replicas
stand by behind an advisory lock, so one minter signs at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
from audifi_kit.chain.adapter import SignedTx
from audifi_kit.chain.reverts import is_revert
from audifi_kit.errors import BlockchainError
from audifi_kit.eventstore import EventStore
from audifi_kit.follower import QueueFollower
from audifi_kit.projections import ProjectionRunner
from eventsourcing.persistence import IntegrityError

from audifi_nft.domain.custody import WITHDRAWAL_PREFIX, Withdrawal
from audifi_nft.domain.mint import REQUESTED, SIGNED, Mint
from audifi_nft.ipos import MintReceipt, SharesChain, Store

log = logging.getLogger(__name__)

RACES = 5  # a hot IPO's confirmation decided again at once, before the follower's retry

WAITING = (
    "SELECT ipo_id, reservation_id, mint_id FROM minting.queue "
    "WHERE status IN ('allocated', 'requested', 'signed') ORDER BY allocated_at, reservation_id "
    "LIMIT $1"
)


def _error(failure: BlockchainError) -> dict[str, Any]:
    return {"message": failure.message, "details": failure.details}


class Minting:
    """Drives mints: the service-layer steps, free of the loop that runs them."""

    def __init__(
        self,
        store: Store,
        chain: SharesChain,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.chain = chain
        self.clock = clock

    async def drive(self, ipo_id: UUID, reservation_id: str) -> Mint:
        app = self.store.app
        mint: Mint = await self.store.call(
            app.request_mint,
            ipo_id,
            reservation_id,
            custody_address=self.chain.custody_address,
            now=self.clock(),
        )
        if mint.status == REQUESTED:
            mint = await self._sign_and_send(mint)
        if mint.status == SIGNED:
            mint = await self._settle(mint)
        return mint

    async def drive_withdrawal(self, withdrawal_id: UUID) -> Mint:
        """A withdrawal from custody, as far as it can go now (the same steps as a mint)."""
        withdrawal: Mint = await self.store.call(self.store.app.mint, withdrawal_id)
        if withdrawal.status == REQUESTED:
            withdrawal = await self._sign_and_send(withdrawal)
        if withdrawal.status == SIGNED:
            withdrawal = await self._settle(withdrawal)
        return withdrawal

    async def _sign_and_send(self, mint: Mint) -> Mint:
        app = self.store.app

        async def record(signed: SignedTx) -> None:
            await self.store.call(
                app.sign_mint,
                mint.id,
                tx_hash=signed.tx_hash,
                raw_tx=signed.raw,
                nonce=signed.nonce,
                now=self.clock(),
            )

        try:
            if isinstance(mint, Withdrawal):
                await self.chain.submit_transfer(
                    mint.from_address, mint.to, mint.chain_id, mint.quantity, record
                )
            else:
                await self.chain.submit_mint(mint.to, mint.chain_id, mint.quantity, record)
        except BlockchainError as failure:
            current: Mint = await self.store.call(app.mint, mint.id)
            if current.status == REQUESTED and is_revert(failure):  # refused before signing
                return await self.store.call(
                    app.fail_mint, mint.id, error=_error(failure), now=self.clock()
                )
            if current.status != SIGNED:
                raise  # the node is unreachable: tried again later
            return current  # sent or not: settled from what was recorded
        return await self.store.call(app.mint, mint.id)

    async def _settle(self, mint: Mint) -> Mint:
        assert mint.tx_hash is not None and mint.raw_tx is not None
        receipt = await self.chain.mint_receipt(mint.tx_hash)
        if receipt is None:
            outcome = await self.chain.resend(mint.raw_tx)
            if outcome == "nonce_used":
                receipt = await self.chain.mint_receipt(mint.tx_hash)
                if receipt is None:  # another transaction took its nonce: never mined
                    return await self.store.call(
                        self.store.app.drop_mint, mint.id, now=self.clock()
                    )
            else:
                receipt = await self.chain.wait_mint(mint.tx_hash)
        return await self._record(mint, receipt)

    async def _record(self, mint: Mint, receipt: MintReceipt) -> Mint:
        app = self.store.app
        if receipt.ok:
            return await self._racing(
                app.confirm_mint,
                mint.id,
                tx_hash=receipt.tx_hash,
                block_number=receipt.block_number,
                now=self.clock(),
            )
        return await self._racing(
            app.fail_mint,
            mint.id,
            error=receipt.error or {"message": "The transaction failed on chain"},
            now=self.clock(),
        )

    async def _racing(self, command: Callable[..., Mint], *args: Any, **kwargs: Any) -> Mint:
        """An outcome recorded with the IPO, which buyers are changing meanwhile: a lost race
        is decided again at once on fresh state (the mint's outcome does not change)."""
        for _ in range(RACES - 1):
            try:
                return await self.store.call(command, *args, **kwargs)
            except IntegrityError:
                continue
        return await self.store.call(command, *args, **kwargs)  # the last try raises


class Minter(QueueFollower):
    """Follows `minting.queue` and drives each waiting mint in turn."""

    def __init__(
        self,
        minting: Minting,
        store: EventStore[Any],
        pool: asyncpg.Pool,
        queue: ProjectionRunner,
        *,
        batch: int = 50,
        poll_interval: float = 1.0,
    ) -> None:
        self.minting = minting
        super().__init__(
            "nft minter",
            WAITING,
            self._drive,
            store=store,
            pool=pool,
            runner=queue,
            batch=batch,
            poll_interval=poll_interval,
            # A node out of reach, or a hot IPO that kept changing: tried again shortly.
            expected_errors=(BlockchainError, IntegrityError),
            logger=log,
        )

    async def _drive(self, row: asyncpg.Record) -> None:
        # asyncpg's own UUID type would reach the events: a plain one.
        if row["reservation_id"].startswith(WITHDRAWAL_PREFIX):
            await self.minting.drive_withdrawal(UUID(str(row["mint_id"])))
        else:
            await self.minting.drive(UUID(str(row["ipo_id"])), row["reservation_id"])
