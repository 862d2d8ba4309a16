"""The lottery draw: recomputable from its proof alone, and chosen by neither side alone."""

from __future__ import annotations

import dataclasses

import pytest
from audifi_coin.domain.draw import (
    DrawMismatch,
    DrawProof,
    commitment,
    winning_ticket,
)
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

seeds = st.binary(min_size=32, max_size=32)
block_hashes = st.binary(min_size=32, max_size=32)
sold = st.integers(min_value=1, max_value=10**6)


def proof_of(seed: bytes, block_hash: bytes, tickets: int) -> DrawProof:
    return DrawProof(
        round_id="round-1",
        seed_hash=commitment(seed),
        seed=seed,
        close_block=1234,
        draw_block_hash=block_hash,
        tickets_sold=tickets,
        winning_ticket=winning_ticket(seed, block_hash, tickets),
    )


def test_the_winner_is_solidity_s_reading_of_keccak_of_seed_and_block() -> None:
    seed, block = bytes(range(32)), bytes(range(32, 64))
    # uint256(keccak256(abi.encodePacked(bytes32 seed, bytes32 blockhash))) % 1000, by hand.
    digest = keccak(seed + block)
    assert winning_ticket(seed, block, 1000) == int(digest.hex(), 16) % 1000
    assert commitment(seed) == keccak(seed)


@given(seeds, block_hashes, sold)
def test_anyone_recomputes_the_winner_from_the_proof_alone(
    seed: bytes, block: bytes, tickets: int
) -> None:
    proof = proof_of(seed, block, tickets)
    winner = proof.verify()
    assert winner is not None and 0 <= winner < tickets


@given(seeds, seeds, block_hashes, sold)
def test_a_seed_other_than_the_committed_one_fails(
    seed: bytes, other: bytes, block: bytes, tickets: int
) -> None:
    proof = proof_of(seed, block, tickets)
    if other != seed:
        with pytest.raises(DrawMismatch, match="not the one committed"):
            dataclasses.replace(proof, seed=other).verify()


@given(seeds, block_hashes, sold, st.integers(min_value=0, max_value=10**6))
def test_a_published_winner_other_than_the_drawn_one_fails(
    seed: bytes, block: bytes, tickets: int, claimed: int
) -> None:
    proof = proof_of(seed, block, tickets)
    if claimed != proof.winning_ticket:
        with pytest.raises(DrawMismatch, match="seed and block name"):
            dataclasses.replace(proof, winning_ticket=claimed).verify()


def test_the_block_after_the_close_moves_the_winner_the_operator_could_not_foresee() -> None:
    """With the seed fixed, different close blocks pick different tickets: the operator, who
    knows the seed, cannot tell the winner while sales are open."""
    seed = keccak(b"operator's secret")
    winners = {winning_ticket(seed, keccak(n.to_bytes(8, "big")), 10_000) for n in range(50)}
    assert len(winners) > 40


def test_a_round_with_no_tickets_has_no_winner_and_bad_sizes_are_refused() -> None:
    seed, block = keccak(b"s"), keccak(b"b")
    assert winning_ticket(seed, block, 0) is None
    assert proof_of(seed, block, 0).verify() is None
    with pytest.raises(ValueError, match="seed must be 32 bytes"):
        winning_ticket(b"short", block, 5)
    with pytest.raises(ValueError, match="draw block hash must be 32 bytes"):
        winning_ticket(seed, b"", 5)
    with pytest.raises(ValueError, match="negative"):
        winning_ticket(seed, block, -1)
