"""A decision's tally anyone can check: votes in order, chained by a hash.

Every vote is recorded with its place (`seq`, from 1), its voter's pseudonym, its choice and
its weight, and with the hash of everything before it:

    hash(n) = sha256("<hash(n-1)>|<n>|<voter>|<choice>|<weight>"), hash(0) = GENESIS

so the last hash names the whole ordered list: change, drop or reorder one vote and it is
another. A voter may vote again while the decision is open; only their last vote counts.
`results` sums the counted votes' weights per option (the seed's `{"A": 50, "B": 30}`); the
winner has the highest total, a tie going to the option listed first (`tie` says so).

A pseudonym is a keyed hash of the decision and the account (HMAC-SHA256 under the service's
key): stable within a decision (a changed vote is recognisably the same voter's), unlinkable
across decisions, and never the account id.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

GENESIS = hashlib.sha256(b"audifi vstudio tally").hexdigest()


@dataclass(frozen=True, slots=True)
class CastVote:
    seq: int
    voter: str  # a pseudonym
    choice: str
    weight: int


def chain(previous: str, vote: CastVote) -> str:
    text = f"{previous}|{vote.seq}|{vote.voter}|{vote.choice}|{vote.weight}"
    return hashlib.sha256(text.encode()).hexdigest()


def pseudonym(key: bytes, decision_id: UUID, account_id: str) -> str:
    return hmac.new(key, f"{decision_id}:{account_id}".encode(), hashlib.sha256).hexdigest()[:32]


def counted(votes: Iterable[CastVote]) -> dict[str, CastVote]:
    """Each voter's last vote, by voter."""
    last: dict[str, CastVote] = {}
    for vote in votes:
        last[vote.voter] = vote
    return last


def results_of(options: Sequence[str], votes: Iterable[CastVote]) -> dict[str, int]:
    results = dict.fromkeys(options, 0)
    for vote in counted(votes).values():
        results[vote.choice] += vote.weight
    return results


def winner_of(options: Sequence[str], results: Mapping[str, int]) -> tuple[str, bool]:
    """The option with the highest total (the first listed among equals), and whether it
    tied with another."""
    best = max(results[o] for o in options)
    leaders = [o for o in options if results[o] == best]
    return leaders[0], len(leaders) > 1


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    results: dict[str, int]
    winner: str
    tie: bool
    final_hash: str
    problems: list[str]


def verify(
    options: Sequence[str],
    weights: Mapping[str, int] | None,
    votes: Sequence[CastVote],
    *,
    final_hash: str,
    results: Mapping[str, int],
    winner: str,
) -> Verdict:
    """Recompute a closed decision from its audit: the hash chain, each vote's weight (the
    snapshot's for a `shares` decision, 1 for `equal`), the results and the winner."""
    problems: list[str] = []
    current = GENESIS
    for n, vote in enumerate(votes, start=1):
        if vote.seq != n:
            problems.append(f"vote {n} is numbered {vote.seq}")
        if vote.choice not in options:
            problems.append(f"vote {n} chose {vote.choice!r}, not an option")
        expected = 1 if weights is None else weights.get(vote.voter, 0)
        if vote.weight != expected:
            problems.append(f"vote {n} weighs {vote.weight}, the snapshot says {expected}")
        current = chain(current, vote)
    if current != final_hash:
        problems.append("the votes do not hash to the published final hash")
    valid = [v for v in votes if v.choice in options]
    recomputed = results_of(options, valid)
    if recomputed != dict(results):
        problems.append("the votes do not add up to the published results")
    won, tie = winner_of(options, recomputed)
    if won != winner:
        problems.append(f"the votes elect {won!r}, not {winner!r}")
    return Verdict(not problems, recomputed, won, tie, current, problems)
