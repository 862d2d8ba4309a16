"""Shares of a master as the chain holds them: a `ShareToken` per MasterShares token id.

MasterShares is an ERC-1155 whose token id is the master's UUID read as an integer
(`master.chain_id`), so `UUID(int=token_id)` is the master. Every movement of its shares on
chain (a mint from the zero address, a burn to it, a transfer: the platform's or wallet to
wallet) is a `SharesTransferred` event here, recorded by the chain indexer from the
TransferSingle / TransferBatch logs, with the balances it leaves (`from_balance`,
`to_balance`, `supply`): readers (the holdings view, vstudio's vote weights, analytics) set
those figures rather than adding deltas, so they need no history of their own.

The chain is the truth. Nothing it did is refused; a movement that would take an address
below zero means the holdings missed a log (a start block after the first mint, a log lost),
and is raised as `HoldingsOutOfStep` for an operator, never recorded as a negative balance.

A reorganisation that orphans a transfer's block takes it back with a compensating
`TransferReverted` (history is never deleted), newest first, as the indexer rolls back. The
token remembers what each transfer did for `REORG_WINDOW` blocks, as many as the indexer keeps
(a deeper reorganisation stops the indexer: `ReorgTooDeep`).
"""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple
from uuid import UUID

from eventsourcing.domain import Aggregate, event

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
SHARES_NAMESPACE = uuid.UUID("4a3c9e1d-7b52-4f08-9d6e-0c1f2a8b5e73")
REORG_WINDOW = 10_000  # blocks; the indexer of the shares keeps as many (`keep_blocks`)
MAX_TOKEN_ID = 2**128  # a UUID's range: a token id at or above it is no master's


class HoldingsOutOfStep(RuntimeError):
    """The chain moved shares the holdings do not know of: a log was missed (or a transfer to
    take back is not known). Not a user's error: the indexer stops here until fixed."""


def share_token_id(master_id: UUID) -> UUID:
    """The aggregate id of a master's shares: derived, and never the Master's own id."""
    return uuid.uuid5(SHARES_NAMESPACE, f"shares:{master_id}")


def master_of_token(token_id: int) -> UUID:
    """The master whose MasterShares token id this is; ValueError if no UUID reads as it."""
    if not 0 <= token_id < MAX_TOKEN_ID:
        raise ValueError(f"token id {token_id} is no master's (not below 2**128)")
    return UUID(int=token_id)


def movement_kind(from_address: str, to_address: str) -> str:
    """What a movement is to a reader: `mint` (from the zero address), `burn` (to it), or
    `transfer` (holder to holder)."""
    if from_address == ZERO_ADDRESS:
        return "mint"
    return "burn" if to_address == ZERO_ADDRESS else "transfer"


class _Done(NamedTuple):
    """What an applied transfer did, kept to take it back (immutable: copies share it)."""

    from_address: str
    to_address: str
    amount: int
    block_number: int
    tx_hash: str


class ShareToken(Aggregate):
    """One master's shares on chain: the balance of every address holding some, the supply."""

    @event("Issued")
    def __init__(self, *, master_id: UUID, token_id: str) -> None:
        self.master_id = master_id
        self.token_id = token_id  # decimal text: above JSON's exact integers
        self.balances: dict[str, int] = {}  # address -> shares; only positive balances
        self.supply = 0  # minted less burnt
        self.transfers: dict[str, _Done] = {}  # transfer key -> what it did, recent blocks

    @classmethod
    def create_id(cls, *, master_id: UUID, token_id: str) -> UUID:
        return share_token_id(master_id)

    @classmethod
    def issue(cls, master_id: UUID) -> ShareToken:
        return cls(master_id=master_id, token_id=str(master_id.int))

    def __deepcopy__(self, memo: dict[int, Any]) -> ShareToken:
        """The repository copies an aggregate for every command; a popular master has
        thousands of holders. Balances are ints and transfers tuples: the containers are
        copied, their entries shared."""
        copied = object.__new__(type(self))
        copied.__dict__.update(
            {k: v.copy() if isinstance(v, dict | list) else v for k, v in self.__dict__.items()}
        )
        return copied

    # -- reading ---------------------------------------------------------------------------

    def balance_of(self, address: str) -> int:
        return self.balances.get(address, 0)

    @property
    def holders(self) -> int:
        return len(self.balances)

    # -- the chain's movements -------------------------------------------------------------

    def apply_transfer(
        self,
        *,
        log_key: str,
        operator: str,
        from_address: str,
        to_address: str,
        amount: int,
        block_number: int,
        block_hash: str,
        tx_hash: str,
        log_index: int,
    ) -> bool:
        """Records a movement the chain made (addresses in checksum form, the zero address for
        a mint or a burn); False when this transfer key is recorded already."""
        if log_key in self.transfers:
            return False
        from_balance, to_balance, supply = self._after(from_address, to_address, amount, log_key)
        self._transferred(
            log_key=log_key,
            master_id=str(self.master_id),
            token_id=self.token_id,
            operator=operator,
            from_address=from_address,
            to_address=to_address,
            amount=amount,
            from_balance=from_balance,
            to_balance=to_balance,
            supply=supply,
            block_number=block_number,
            block_hash=block_hash,
            tx_hash=tx_hash,
            log_index=log_index,
        )
        return True

    def revert_transfer(self, log_key: str) -> None:
        """Takes back a transfer whose block left the chain (the newest first)."""
        done = self.transfers.get(log_key)
        if done is None:
            raise HoldingsOutOfStep(
                f"transfer {log_key} of token {self.token_id} is not known (never applied, "
                f"or older than {REORG_WINDOW} blocks)"
            )
        # Undone as the opposite movement: what the recipient got goes back to the sender.
        to_balance, from_balance, supply = self._after(
            done.to_address, done.from_address, done.amount, log_key
        )
        self._reverted(
            log_key=log_key,
            master_id=str(self.master_id),
            token_id=self.token_id,
            from_address=done.from_address,
            to_address=done.to_address,
            amount=done.amount,
            from_balance=from_balance,
            to_balance=to_balance,
            supply=supply,
            block_number=done.block_number,
            tx_hash=done.tx_hash,
        )

    def _after(
        self, sender: str, recipient: str, amount: int, log_key: str
    ) -> tuple[int | None, int | None, int]:
        """(sender's balance, recipient's balance, supply) after `amount` moves; None for
        the zero address (it holds nothing: shares come from it and go to it)."""
        supply = self.supply
        sent = None
        if sender == ZERO_ADDRESS:
            supply += amount
        else:
            sent = self.balance_of(sender) - amount
            if sent < 0:
                raise HoldingsOutOfStep(
                    f"transfer {log_key}: {sender} would hold {sent} shares of token "
                    f"{self.token_id} (it holds {self.balance_of(sender)} here): a log was missed"
                )
        received = None
        if recipient == ZERO_ADDRESS:
            supply -= amount
        elif recipient == sender:
            received = sent = self.balance_of(sender)  # to oneself: nothing changes
        else:
            received = self.balance_of(recipient) + amount
        return sent, received, supply

    @event("SharesTransferred")
    def _transferred(
        self,
        log_key: str,
        master_id: str,
        token_id: str,
        operator: str,
        from_address: str,
        to_address: str,
        amount: int,
        from_balance: int | None,
        to_balance: int | None,
        supply: int,
        block_number: int,
        block_hash: str,
        tx_hash: str,
        log_index: int,
    ) -> None:
        self._set(from_address, from_balance)
        self._set(to_address, to_balance)
        self.supply = supply
        self.transfers[log_key] = _Done(from_address, to_address, amount, block_number, tx_hash)
        self._forget_before(block_number - REORG_WINDOW)

    @event("TransferReverted")
    def _reverted(
        self,
        log_key: str,
        master_id: str,
        token_id: str,
        from_address: str,
        to_address: str,
        amount: int,
        from_balance: int | None,
        to_balance: int | None,
        supply: int,
        block_number: int,
        tx_hash: str,
    ) -> None:
        self._set(from_address, from_balance)
        self._set(to_address, to_balance)
        self.supply = supply
        del self.transfers[log_key]

    def _set(self, address: str, balance: int | None) -> None:
        if balance is None:  # the zero address
            return
        if balance:
            self.balances[address] = balance
        else:
            self.balances.pop(address, None)

    def _forget_before(self, block_number: int) -> None:
        """Transfers are applied in block order (and taken back newest first), so the oldest
        kept is the first: those no reorganisation can take back any more are dropped."""
        transfers = self.transfers
        while transfers:
            oldest = next(iter(transfers))
            if transfers[oldest].block_number >= block_number:
                return
            del transfers[oldest]
