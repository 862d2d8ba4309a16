"""The EVM wallets an account has proved it controls, as auth announced them.

nft keeps its own record (from `auth.account.registered` with a wallet, and
`auth.wallet.linked`), so deciding where a buyer's shares are minted reads nothing from
another service. The newest EVM wallet receives mints; an account without one has its shares
minted to the platform's custody address and held for it. Solana wallets are recorded by auth
but hold no MasterShares: ignored here.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from uuid import UUID

from eth_utils import is_address, to_checksum_address
from eventsourcing.domain import Aggregate, event

WALLETS_NAMESPACE = uuid.UUID("c2a4e1f0-5b3d-4e6a-8f7c-1d9b0a2e4c68")


def wallets_id_of(account_id: str) -> UUID:
    return uuid.uuid5(WALLETS_NAMESPACE, account_id)


class AccountWallets(Aggregate):
    @event("Started")
    def __init__(self, *, account_id: str) -> None:
        self.account_id = account_id
        self.addresses: list[str] = []  # checksummed, oldest first

    @classmethod
    def start(cls, account_id: str) -> AccountWallets:
        return cls._create(cls.Started, id=wallets_id_of(account_id), account_id=account_id)

    @property
    def current(self) -> str | None:
        """Where this account's shares are minted: its newest EVM wallet, if any."""
        return self.addresses[-1] if self.addresses else None

    def link(self, address: str, *, at: datetime) -> bool:
        """Record an EVM wallet; False if it is not an EVM address or already the newest."""
        if not is_address(address):
            return False
        checksummed = to_checksum_address(address)
        if self.current == checksummed:
            return False
        self._linked(address=checksummed, at=at, account_id=self.account_id)
        return True

    @event("Linked")
    def _linked(self, address: str, at: datetime, account_id: str | None = None) -> None:
        if address in self.addresses:
            self.addresses.remove(address)
        self.addresses.append(address)
