"""Uniqueness of e-mail addresses and wallets: one index aggregate per normalised address.

Its id is derived from a keyed digest of the address (the application computes it), so the
event store's optimistic concurrency on (id, version) makes a second claim of the same address
fail, in the same transaction that would have created the second account. The aggregate never
holds the address itself.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event


class AddressTaken(Exception):
    """Another account holds this address."""


class AddressIndex(Aggregate):
    @event("Claimed")
    def __init__(self, id: UUID, kind: str, account_id: UUID) -> None:
        self.kind = kind
        self.account_id: UUID | None = account_id

    @property
    def held(self) -> bool:
        return self.account_id is not None

    def claim_again(self, account_id: UUID) -> None:
        if self.held:
            raise AddressTaken(self.kind)
        self._reclaimed(account_id=account_id)

    def release(self) -> None:
        if self.held:
            self._released()

    @event("Reclaimed")
    def _reclaimed(self, account_id: UUID) -> None:
        self.account_id = account_id

    @event("Released")
    def _released(self) -> None:
        self.account_id = None
