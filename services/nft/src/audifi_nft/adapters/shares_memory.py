"""The in-memory twin of the `SharesChain` port: MasterShares' rules (an IPO opened once, a
cap above zero), no chain. `fail_next` makes the next transaction fail as the chain would."""

from __future__ import annotations

import hashlib
import itertools

from audifi_kit.errors import BlockchainError


class InMemoryShares:
    def __init__(self) -> None:
        self.caps: dict[int, int] = {}
        self.minted: dict[int, int] = {}
        self.transactions: list[tuple[str, tuple[object, ...]]] = []
        self.fail_next: str | None = None
        self._nonce = itertools.count()

    def _tx(self, action: str, *args: object) -> str:
        if self.fail_next is not None:
            reason, self.fail_next = self.fail_next, None
            raise BlockchainError(
                "Contract call failed", details={"action": action, "reason": reason}
            )
        self.transactions.append((action, args))
        return "0x" + hashlib.sha256(f"{action}{args}{next(self._nonce)}".encode()).hexdigest()

    async def ipo_opened(self, master_chain_id: int) -> bool:
        return master_chain_id in self.caps

    async def open_ipo(
        self, master_chain_id: int, cap: int, royalty_receiver: str, royalty_bps: int
    ) -> str:
        if master_chain_id in self.caps:
            raise BlockchainError("Contract call failed", details={"reason": "IpoAlreadyOpened"})
        if cap == 0:
            raise BlockchainError("Contract call failed", details={"reason": "ZeroCap"})
        tx = self._tx("openIpo", master_chain_id, cap, royalty_receiver, royalty_bps)
        self.caps[master_chain_id] = cap
        self.minted[master_chain_id] = 0
        return tx

    async def cap_of(self, master_chain_id: int) -> int:
        return self.caps.get(master_chain_id, 0)

    async def minted_of(self, master_chain_id: int) -> int:
        return self.minted.get(master_chain_id, 0)
