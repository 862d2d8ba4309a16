"""The custody signer's operations in memory: exactly once across a crash between signing and
knowing whether the transaction went out, and a failed one gives its coins back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from audifi_coin.bootstrap import in_memory
from audifi_coin.coins import Coins, CustodyOutcome
from audifi_coin.domain.coin import ArtistCoin, CoinTerms, InsufficientCustody
from audifi_kit.chain.adapter import SignedTx
from audifi_kit.eventstore import DirectCalls
from hypothesis import given, settings
from hypothesis import strategies as st

ARTIST = "artist-1"
CUSTODY = "0x" + "c0" * 20
COIN = 10**18
T0 = datetime(2026, 12, 8, tzinfo=UTC)


class CustodyChain:
    """The custody part of the `CoinChain` port: what was signed, sent and mined."""

    def __init__(self) -> None:
        self.signed: list[str] = []
        self.sent: list[str] = []
        self.mined: dict[str, bool] = {}
        self.crash_after_signing = False
        self.revert_next = False

    async def custody(self) -> str:
        return CUSTODY

    async def custody_submit(
        self, kind: str, coin: ArtistCoin, amount: int, to: Any, before_send: Any
    ) -> str:
        tx_hash = f"0x{len(self.signed) + 1:064x}"
        self.signed.append(tx_hash)
        await before_send(SignedTx(tx_hash=tx_hash, raw=f"raw-{tx_hash}", nonce=len(self.signed)))
        if self.crash_after_signing:
            self.crash_after_signing = False
            raise ConnectionError("the process died: sent or not, nobody knows")
        self._send(tx_hash)
        return tx_hash

    def _send(self, tx_hash: str) -> None:
        self.sent.append(tx_hash)
        self.mined[tx_hash] = not self.revert_next
        self.revert_next = False

    async def custody_outcome(self, kind: str, tx_hash: str, *, wait: bool = True) -> Any:
        if tx_hash not in self.mined:
            return None
        ok = self.mined[tx_hash]
        return CustodyOutcome(ok=ok, received=None, reason=None if ok else "reverted")

    async def custody_resend(self, raw: str) -> None:
        self._send(raw.removeprefix("raw-"))


def live_in_custody_app(app: Any, supply: int) -> None:
    """A coin deployed to custody for ARTIST (`supply` base units), its pool and staking."""
    terms = CoinTerms("Custody Coin", "CUST", supply, CUSTODY)
    app.request_coin(artist_id=ARTIST, terms=terms, requested_by=ARTIST, at=T0)
    app.coin_contract_created(
        ARTIST, role="coin", address="0x" + "01" * 20, tx_hash="0xc", block=1, custody_for=ARTIST
    )
    app.coin_contract_created(ARTIST, role="pool", address="0x" + "02" * 20, tx_hash="0xp")
    app.coin_contract_created(ARTIST, role="staking", address="0x" + "03" * 20, tx_hash="0xs")


def live_in_custody() -> tuple[Coins, CustodyChain, Any]:
    app = in_memory()
    live_in_custody_app(app, 1_000 * COIN)
    chain = CustodyChain()
    return Coins(DirectCalls(app), chain, clock=lambda: T0), chain, app  # type: ignore[arg-type]


async def test_a_crash_after_signing_is_resumed_with_the_same_transaction() -> None:
    coins, chain, app = live_in_custody()
    chain.crash_after_signing = True
    with pytest.raises(ConnectionError):
        await coins.custody_op(
            ARTIST, op_id="op-1", kind="stake", amount=100 * COIN, actor_id=ARTIST, is_admin=False
        )
    coin = app.coin(ARTIST)
    assert coin.custody_ops["op-1"]["status"] == "sent" and chain.sent == []
    assert coin.custody[ARTIST] == 900 * COIN  # debited while its fate is unknown

    done = await coins.custody_op(
        ARTIST, op_id="op-1", kind="stake", amount=100 * COIN, actor_id=ARTIST, is_admin=False
    )
    assert done["status"] == "done" and chain.signed == chain.sent == [done["tx_hash"]]
    coin = app.coin(ARTIST)
    assert (coin.custody[ARTIST], coin.custody_staked[ARTIST]) == (900 * COIN, 100 * COIN)
    again = await coins.custody_op(
        ARTIST, op_id="op-1", kind="stake", amount=100 * COIN, actor_id=ARTIST, is_admin=False
    )
    assert again == done and len(chain.signed) == 1  # done once: nothing signed again


async def test_a_reverted_operation_gives_its_coins_back_and_a_book_cannot_go_negative() -> None:
    coins, chain, app = live_in_custody()
    chain.revert_next = True
    failed = await coins.custody_op(
        ARTIST, op_id="op-1", kind="fund", amount=300 * COIN, actor_id=ARTIST, is_admin=False
    )
    assert failed["status"] == "failed" and app.coin(ARTIST).custody[ARTIST] == 1_000 * COIN
    with pytest.raises(InsufficientCustody):
        await coins.custody_op(
            ARTIST,
            op_id="op-2",
            kind="withdraw",
            amount=1_001 * COIN,
            actor_id=ARTIST,
            is_admin=False,
            to="0x" + "aa" * 20,
        )
    with pytest.raises(InsufficientCustody):
        await coins.custody_op(
            ARTIST, op_id="op-3", kind="unstake", amount=1, actor_id=ARTIST, is_admin=False
        )
    assert chain.signed == [failed["tx_hash"]]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["stake", "unstake", "claim", "fund", "withdraw"]),
            st.integers(min_value=1, max_value=400),
            st.booleans(),  # mined (True) or reverted
        ),
        max_size=30,
    )
)
def test_custody_never_spends_what_it_does_not_hold_and_loses_nothing(ops) -> None:
    """Whatever operations run and however they end: the book never goes negative, a
    request beyond it is refused before anything is recorded, and the coins held, staked,
    handed out (funded, withdrawn) and brought in (claimed) always add up to the supply."""
    app = in_memory()
    live_in_custody_app(app, 1_000 * COIN)
    model = {"held": 1_000 * COIN, "staked": 0, "out": 0, "claimed": 0}
    for n, (kind, coins, mined) in enumerate(ops):
        amount = coins * COIN
        coin = app.coin(ARTIST)
        source = {"stake": "held", "fund": "held", "withdraw": "held", "unstake": "staked"}
        short = kind in source and model[source[kind]] < amount
        try:
            coin.start_custody_op(f"op-{n}", kind, ARTIST, 0 if kind == "claim" else amount, T0)
        except InsufficientCustody:
            assert short
            continue
        assert not short
        if mined:
            received = amount  # a claim's reward; otherwise the operation's amount
            coin.custody_op_done(f"op-{n}", tx_hash=f"0x{n}", received=received, at=T0)
            if kind == "stake":
                model["held"] -= amount
                model["staked"] += amount
            elif kind == "unstake":
                model["staked"] -= amount
                model["held"] += amount
            elif kind == "claim":
                model["held"] += amount
                model["claimed"] += amount
            else:
                model["held"] -= amount
                model["out"] += amount
        else:
            coin.custody_op_failed(f"op-{n}", reason="reverted", at=T0)
        app.save(coin)
        coin = app.repository.get(coin.id)
        held, staked = coin.custody.get(ARTIST, 0), coin.custody_staked.get(ARTIST, 0)
        assert (held, staked) == (model["held"], model["staked"])
        assert held >= 0 and staked >= 0
        assert held + staked + model["out"] - model["claimed"] == 1_000 * COIN
