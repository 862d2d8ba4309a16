"""The lottery's draw, which neither the operator nor the last buyer can choose.

When a round opens the operator publishes `seedHash = keccak256(seed)` of a 32-byte seed it
keeps secret. The round closes; the first block mined after the close fixes a hash nobody
knew while tickets could still be bought. The winning ticket is

    uint256(keccak256(seed ++ drawBlockHash)) % ticketsSold

(big-endian, as Solidity's `abi.encodePacked(bytes32, bytes32)` and `uint256(bytes32)` read
it): the operator, who knows the seed, cannot know the block hash when the sales close, and the
last buyer, who may see the block, does not know the seed. The contract checks the seed against
its commitment at reveal; `DrawProof` carries everything needed to recompute the winner
without trusting the service (`verify`). A round with no tickets has no winner.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils import keccak

SEED_BYTES = 32
BLOCK_HASH_BYTES = 32


class DrawMismatch(ValueError):
    """A proof that does not recompute: the seed is not the committed one, or the winner is not
    the one seed and block name."""


def commitment(seed: bytes) -> bytes:
    """What the operator publishes when the round opens: keccak256(seed)."""
    _check(seed, SEED_BYTES, "seed")
    return keccak(seed)


def winning_ticket(seed: bytes, draw_block_hash: bytes, tickets_sold: int) -> int | None:
    """The winning ticket number (0-based, as the contract numbers them), or None: no tickets."""
    _check(seed, SEED_BYTES, "seed")
    _check(draw_block_hash, BLOCK_HASH_BYTES, "draw block hash")
    if tickets_sold < 0:
        raise ValueError("tickets sold cannot be negative")
    if tickets_sold == 0:
        return None
    return int.from_bytes(keccak(seed + draw_block_hash), "big") % tickets_sold


@dataclass(frozen=True, slots=True)
class DrawProof:
    """A round's draw, as `GET /lottery/rounds/{id}/proof` gives it (hex in the API)."""

    round_id: str
    seed_hash: bytes  # published at opening
    seed: bytes  # revealed after the close
    close_block: int  # the block the round was closed in; the draw block is the next one
    draw_block_hash: bytes  # the hash of the draw block (close_block + 1)
    tickets_sold: int
    winning_ticket: int | None

    def verify(self) -> int | None:
        """The winner recomputed from the proof alone; DrawMismatch when it does not hold."""
        if commitment(self.seed) != self.seed_hash:
            raise DrawMismatch(f"round {self.round_id}: the seed is not the one committed")
        recomputed = winning_ticket(self.seed, self.draw_block_hash, self.tickets_sold)
        if recomputed != self.winning_ticket:
            raise DrawMismatch(
                f"round {self.round_id}: ticket {self.winning_ticket} was published, the seed "
                f"and block name {recomputed}"
            )
        return recomputed


def _check(value: bytes, size: int, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise ValueError(f"the {what} must be {size} bytes")
