"""The lottery in memory: the application, the service layer and the contract's twin.

What a buyer sees: tickets numbered by the contract for a verified payment or burn, a hash
that issues tickets once, clear refusals for what does not add up, and a draw anyone can
recompute from the proof; and, as properties over any sequence of sales, that no token is
made or lost and the recorded tickets are the chain's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from audifi_coin.adapters.lottery_memory import (
    LOTTERY,
    TREASURY,
    ContractReverted,
    InMemoryLotteryChain,
)
from audifi_coin.bootstrap import in_memory
from audifi_coin.domain.draw import commitment, winning_ticket
from audifi_coin.domain.lottery import (
    ACTIVE,
    COMPLETED,
    NATIVE,
    USDC,
    NoCurrentRound,
    RoundExists,
    RoundNotActive,
    RoundTerms,
    TicketCapExceeded,
    TicketRange,
    TxHashUsed,
)
from audifi_coin.lottery import (
    AmountMismatch,
    BurnMismatch,
    BurnNotYours,
    Lottery,
    NoBurn,
    PaidOutsideRound,
    WalletMismatch,
    seed_for,
)
from audifi_coin.outbox import outbox
from audifi_events import IntegrationEvent
from audifi_events.coin import RoundDrawn, TicketsIssued
from audifi_events.payment import OrderRequest
from audifi_kit.chain.payments import (
    PaymentFailed,
    PaymentNotConfirmed,
    PaymentNotFound,
    PaymentWrongAmount,
    PaymentWrongRecipient,
)
from audifi_kit.errors import ValidationFailed
from audifi_kit.eventstore import DirectCalls
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

T0 = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
PRICE = 5_000_000  # 5 USDC (6 decimals)
WEI = 2 * 10**15  # 0.002 ETH
MASTER = "4f1c6a3e-0d2b-4c8e-9a7f-3b5d1e2c4a60"
ALICE = to_checksum_address("0xa11ce00000000000000000000000000000000a11")
BOB = to_checksum_address("0xb0b0000000000000000000000000000000000b0b")
CAROL = to_checksum_address("0xca201000000000000000000000000000000ca201")
ADMIN = "admin-1"
KEY = bytes(range(32))


def terms(**changes: object) -> RoundTerms:
    base: dict[str, object] = {
        "ticket_price": PRICE,
        "native_ticket_price": WEI,
        "burn_master_id": MASTER,
        "shares_per_ticket": 5,
        "max_per_wallet": 10,
        "starts_at": T0,
        "ends_at": T0 + timedelta(days=7),
    }
    base.update(changes)
    return RoundTerms(**base)  # type: ignore[arg-type]


class World:
    def __init__(self, *, confirmations: int = 1) -> None:
        self.now = T0 + timedelta(hours=1)
        self.app = in_memory()
        self.chain = InMemoryLotteryChain(confirmations=confirmations, clock=lambda: self.now)
        self.lottery = Lottery(
            DirectCalls(self.app), self.chain, KEY, clock=lambda: self.now, draw_wait=0.2
        )
        for wallet in (ALICE, BOB, CAROL):
            self.chain.fund(wallet, usdc=1_000 * PRICE, native=100 * WEI)
            self.chain.grant_shares(wallet, MASTER, 1_000)  # burns of any sales the tests draw

    async def buy(self, wallet: str, count: int, method: str = USDC):
        price = PRICE if method == USDC else WEI
        tx = self.chain.pay(wallet, count * price, method=method)
        return await self.lottery.purchase(
            wallet=wallet,
            count=count,
            payment_method=method,
            tx_hash=tx,
            amount_paid=count * price,
            account_id=None,
        )


async def opened(round_id: str = "2026-w50", **changes: object) -> World:
    w = World()
    await w.lottery.create_round(round_id, terms(**changes), actor_id=ADMIN)
    return w


async def test_a_round_is_opened_on_chain_with_its_seed_committed() -> None:
    w = await opened()
    r = await w.lottery.current()
    assert (r.round_id, r.status, r.chain_round_id, r.tickets_sold) == ("2026-w50", ACTIVE, 0, 0)
    from audifi_coin.domain.draw import commitment

    assert r.seed_hash == "0x" + commitment(seed_for(KEY, "2026-w50")).hex()
    assert w.chain.rounds[0].seed_hash.hex() == r.seed_hash[2:]
    # a retry answers the same round, not a second chain round; other terms are refused
    again = await w.lottery.create_round("2026-w50", terms(), actor_id=ADMIN)
    assert again.chain_round_id == 0 and len(w.chain.rounds) == 1
    with pytest.raises(RoundExists):
        await w.lottery.create_round("2026-w50", terms(max_per_wallet=3), actor_id=ADMIN)


async def test_a_round_left_opening_by_a_crash_finds_its_chain_round() -> None:
    w = World()
    seed_hash = "0x" + commitment(seed_for(KEY, "r1")).hex()
    w.app.create_round(round_id="r1", terms=terms(), seed_hash=seed_hash, actor_id=ADMIN, at=T0)
    await w.chain.open_round(bytes.fromhex(seed_hash[2:]), terms())  # mined, never recorded
    r = await w.lottery.create_round("r1", terms(), actor_id=ADMIN)
    assert r.status == ACTIVE and r.chain_round_id == 0 and len(w.chain.rounds) == 1


async def test_bad_round_terms_are_refused() -> None:
    w = World()
    for bad in (
        terms(ends_at=T0),
        terms(ticket_price=-1),
        terms(burn_master_id=None),
        terms(ticket_price=0, native_ticket_price=0, burn_master_id=None, shares_per_ticket=0),
    ):
        with pytest.raises(ValidationFailed):
            await w.lottery.create_round("bad", bad, actor_id=ADMIN)
    with pytest.raises(NoCurrentRound):
        await w.lottery.current()


async def test_a_verified_usdc_payment_issues_numbered_tickets_once() -> None:
    w = await opened()
    first = await w.buy(ALICE, 3)
    assert first.numbers == [1, 2, 3]
    second = await w.buy(BOB, 2)
    assert second.numbers == [4, 5]
    r = await w.lottery.current()
    assert (r.tickets_sold, r.held_by(ALICE), r.held_by(BOB)) == (5, 3, 2)
    assert r.pot == 5 * PRICE == w.chain.rounds[0].pot == w.chain.token[LOTTERY]
    # the same transaction again: refused, and it names the tickets it issued
    with pytest.raises(TxHashUsed) as used:
        await w.lottery.purchase(
            wallet=ALICE,
            count=3,
            payment_method=USDC,
            tx_hash=first.claim.tx_hash,
            amount_paid=3 * PRICE,
            account_id=None,
        )
    assert used.value.details["ticketsIssued"] == [1, 2, 3]
    assert w.chain.rounds[0].count == 5


async def test_a_native_coin_payment_issues_tickets_and_leaves_the_pot_alone() -> None:
    w = await opened()
    bought = await w.buy(CAROL, 2, NATIVE)
    assert bought.numbers == [1, 2]
    assert (await w.lottery.current()).pot == 0
    assert w.chain.native[TREASURY] == 2 * WEI


async def test_what_does_not_add_up_is_refused_and_issues_nothing() -> None:
    w = await opened()

    async def purchase(tx: str, **changes: object):
        args: dict[str, object] = {
            "wallet": ALICE,
            "count": 2,
            "payment_method": USDC,
            "tx_hash": tx,
            "amount_paid": 2 * PRICE,
            "account_id": None,
        }
        args.update(changes)
        return await w.lottery.purchase(**args)  # type: ignore[arg-type]

    paid = w.chain.pay(ALICE, 2 * PRICE)
    with pytest.raises(AmountMismatch):
        await purchase(paid, amount_paid=3 * PRICE)
    with pytest.raises(TicketCapExceeded):
        await purchase(w.chain.pay(ALICE, 11 * PRICE), count=11, amount_paid=11 * PRICE)
    with pytest.raises(WalletMismatch):
        await purchase(paid, wallet=BOB)
    with pytest.raises(PaymentWrongAmount):
        await purchase(w.chain.pay(ALICE, 2 * PRICE - 1), amount_paid=2 * PRICE)
    with pytest.raises(PaymentWrongRecipient):
        await purchase(w.chain.pay(ALICE, 2 * PRICE, to="0x" + "99" * 20))
    with pytest.raises(PaymentFailed):
        await purchase(w.chain.pay(ALICE, 2 * PRICE, ok=False))
    with pytest.raises(PaymentNotFound):
        await purchase("0x" + "ab" * 32)
    with pytest.raises(PaidOutsideRound):
        await purchase(w.chain.pay(ALICE, 2 * PRICE, at=T0 - timedelta(minutes=1)))
    for bad in ({"count": 0}, {"payment_method": "SOL"}, {"wallet": "nobody"}):
        with pytest.raises(ValidationFailed):
            await purchase(paid, **bad)
    with pytest.raises(ValidationFailed):
        await purchase("0x1234")
    assert w.chain.rounds[0].count == 0 and (await w.lottery.current()).tickets_sold == 0
    assert (await purchase(paid)).numbers == [1, 2]  # the good one still works


async def test_a_round_that_has_not_started_or_has_ended_sells_nothing() -> None:
    w = await opened(starts_at=T0 + timedelta(days=1))
    with pytest.raises(RoundNotActive):
        await w.buy(ALICE, 1)
    w.now = T0 + timedelta(days=8)
    with pytest.raises(RoundNotActive):
        await w.buy(ALICE, 1)


async def test_an_unconfirmed_payment_waits_and_a_reorg_that_drops_it_issues_nothing() -> None:
    w = World(confirmations=3)
    await w.lottery.create_round("r", terms(), actor_id=ADMIN)
    before = w.chain.head
    tx = w.chain.pay(ALICE, PRICE)
    args = {
        "wallet": ALICE,
        "count": 1,
        "payment_method": USDC,
        "tx_hash": tx,
        "amount_paid": PRICE,
        "account_id": None,
    }
    with pytest.raises(PaymentNotConfirmed):
        await w.lottery.purchase(**args)  # type: ignore[arg-type]
    w.chain.reorg(before)  # the block that held the payment is replaced
    w.chain.mine(5)
    with pytest.raises(PaymentNotFound):
        await w.lottery.purchase(**args)  # type: ignore[arg-type]
    assert (await w.lottery.current()).tickets_sold == 0 and w.app.claim(tx) is None


async def test_a_crash_after_the_issue_was_mined_is_resumed_without_issuing_twice() -> None:
    w = await opened()
    tx = w.chain.pay(ALICE, 2 * PRICE)
    w.chain.fail_next_issue_after_mining = True
    with pytest.raises(ConnectionError):
        await w.lottery.purchase(
            wallet=ALICE,
            count=2,
            payment_method=USDC,
            tx_hash=tx,
            amount_paid=2 * PRICE,
            account_id=None,
        )
    assert w.app.claim(tx).state == "verified"  # claimed, its tickets not recorded
    assert w.chain.rounds[0].count == 2  # but issued on chain
    resumed = await w.lottery.purchase(
        wallet=ALICE,
        count=2,
        payment_method=USDC,
        tx_hash=tx,
        amount_paid=2 * PRICE,
        account_id=None,
    )
    assert resumed.numbers == [1, 2] and resumed.claim.state == "issued"
    assert w.chain.rounds[0].count == 2  # the ref was issued once: read back, not again


async def test_burnt_shares_earn_exactly_their_tickets() -> None:
    w = await opened()
    one, two = w.chain.burn(CAROL, MASTER, 10), w.chain.burn(CAROL, MASTER, 5)
    with pytest.raises(BurnMismatch) as wrong:
        await w.lottery.burn_claim(wallet=CAROL, tx_hashes=[one, two], tickets=4, account_id=None)
    assert wrong.value.details["ticketsDue"] == 3
    earned = await w.lottery.burn_claim(
        wallet=CAROL, tx_hashes=[one, two], tickets=3, account_id=None
    )
    assert earned.numbers == [1, 2, 3] and earned.claim.method == "burn"
    assert (await w.lottery.current()).pot == 0
    with pytest.raises(TxHashUsed):  # each of its hashes, alone or together, is spent
        await w.lottery.burn_claim(wallet=CAROL, tx_hashes=[two], tickets=1, account_id=None)


async def test_a_burn_of_someone_elses_shares_or_of_another_master_is_refused() -> None:
    w = await opened()
    theirs = w.chain.burn(ALICE, MASTER, 5, holder=BOB)  # ALICE, approved by BOB, burns his
    with pytest.raises(BurnNotYours):
        await w.lottery.burn_claim(wallet=ALICE, tx_hashes=[theirs], tickets=1, account_id=None)
    w.chain.grant_shares(ALICE, "another-master", 5)
    other = w.chain.burn(ALICE, "another-master", 5)
    with pytest.raises(NoBurn):
        await w.lottery.burn_claim(wallet=ALICE, tx_hashes=[other], tickets=1, account_id=None)
    paid = w.chain.pay(ALICE, PRICE)
    with pytest.raises(NoBurn):
        await w.lottery.burn_claim(wallet=ALICE, tx_hashes=[paid], tickets=1, account_id=None)
    with pytest.raises(ValidationFailed):
        await w.lottery.burn_claim(
            wallet=ALICE, tx_hashes=[theirs, theirs], tickets=2, account_id=None
        )


async def test_the_draw_names_the_ticket_anyone_recomputes_and_pays_its_holder() -> None:
    w = await opened()
    await w.buy(ALICE, 3)
    await w.buy(BOB, 4)
    with pytest.raises(Exception) as early:
        await w.lottery.draw("2026-w50")
    assert early.value.code == "ROUND_NOT_OVER"  # type: ignore[attr-defined]
    w.now = T0 + timedelta(days=7)
    before = {ALICE: w.chain.token[ALICE], BOB: w.chain.token[BOB]}
    r = await w.lottery.draw("2026-w50")
    assert r.status == COMPLETED and r.tickets_at_close == 7
    _, proof = await w.lottery.proof("2026-w50")
    recomputed = proof.verify()
    assert recomputed == winning_ticket(seed_for(KEY, "2026-w50"), proof.draw_block_hash, 7)
    assert proof.draw_block_hash == w.chain.block_hash(r.close_block + 1)
    assert r.winner == r.holder_of(recomputed)
    assert w.chain.token[r.winner] == before[r.winner] + 7 * PRICE and r.prize == 7 * PRICE
    again = await w.lottery.draw("2026-w50")
    assert again.version == r.version  # drawn once


async def test_a_round_with_no_tickets_has_no_winner_and_its_pot_rolls_over() -> None:
    w = await opened("empty")
    await w.lottery.add_to_pot("empty", 50 * PRICE)
    w.now = T0 + timedelta(days=7)
    r = await w.lottery.draw("empty")
    assert (r.status, r.winner, r.winning_index, r.prize) == (COMPLETED, None, None, 0)
    _, proof = await w.lottery.proof("empty")
    assert proof.verify() is None
    nxt = await w.lottery.create_round(
        "next", terms(starts_at=w.now, ends_at=w.now + timedelta(days=7)), actor_id=ADMIN
    )
    assert nxt.pot == nxt.carried_in == 50 * PRICE


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["usdc", "native", "burn", "contract", "reuse", "late"]),
            st.sampled_from([ALICE, BOB, CAROL]),
            st.integers(min_value=1, max_value=6),
        ),
        max_size=25,
    )
)
async def test_any_sales_conserve_the_token_and_record_the_chains_tickets(sales) -> None:
    """Whatever is bought, burnt, reused or refused: no USDC is made or lost, every wallet is
    within the cap, the recorded ranges are the chain's (same holders, no overlap), a hash
    issued tickets at most once, and the drawn prize is the pot the winner received."""
    w = await opened(max_per_wallet=8)
    total = w.chain.total_token()
    used: list[str] = []
    for kind, wallet, count in sales:
        try:
            if kind in ("usdc", "native"):
                used.append(
                    (await w.buy(wallet, count, USDC if kind == "usdc" else NATIVE)).claim.tx_hash
                )
            elif kind == "burn":
                tx = w.chain.burn(wallet, MASTER, 5 * count)
                await w.lottery.burn_claim(
                    wallet=wallet, tx_hashes=[tx], tickets=count, account_id=None
                )
            elif kind == "contract":
                first, tx = w.chain.buy_on_contract(wallet, 0, count)
                w.app.record_tickets(
                    "2026-w50",
                    TicketRange(first, count, wallet, "purchase", None, tx, count * PRICE, tx),
                    at=w.now,
                )
            elif kind == "reuse" and used:
                with pytest.raises(TxHashUsed):
                    await w.lottery.purchase(
                        wallet=wallet,
                        count=count,
                        payment_method=USDC,
                        tx_hash=used[count % len(used)],
                        amount_paid=count * PRICE,
                        account_id=None,
                    )
            elif kind == "late":
                tx = w.chain.pay(wallet, count * PRICE, at=T0 + timedelta(days=8))
                with pytest.raises(PaidOutsideRound):
                    await w.lottery.purchase(
                        wallet=wallet,
                        count=count,
                        payment_method=USDC,
                        tx_hash=tx,
                        amount_paid=count * PRICE,
                        account_id=None,
                    )
        except TicketCapExceeded:
            pass
        except ContractReverted as exc:
            assert exc.message == "TicketCapExceeded"
        assert w.chain.total_token() == total
    r = await w.lottery.current()
    chain_round = w.chain.rounds[0]
    assert r.tickets_sold == chain_round.count
    for index in range(r.tickets_sold):
        assert r.holder_of(index) == chain_round.holder(index)
    assert all(r.held_by(x) <= 8 for x in (ALICE, BOB, CAROL))
    assert r.pot == chain_round.pot == w.chain.token.get(LOTTERY, 0)
    # every ref (a claimed transaction) issued one range at most, and the chain issued each once
    refs = [t.ref for t in r.tickets() if t.method == "purchase" and t.payment_method]
    assert len(refs) == len(set(refs))
    assert all(
        w.chain.refs[ref].first == t.first
        for t in r.tickets()
        for ref in [t.ref]
        if ref in w.chain.refs
    )
    w.now = T0 + timedelta(days=7)
    w.chain.mine()
    pot = r.pot
    balances = dict(w.chain.token)
    drawn = await w.lottery.draw("2026-w50")
    if drawn.winner is None:
        assert r.tickets_sold == 0 and w.chain.carried_over == pot
    else:
        assert (
            w.chain.token[drawn.winner]
            == balances[drawn.winner] + pot
            == balances[drawn.winner] + drawn.prize
        )
    assert w.chain.total_token() == total


def published(app: Any) -> list[IntegrationEvent]:
    """Every integration event the relay would publish from the app's log, in order."""
    out = []
    for n in app.recorder.select_notifications(start=1, limit=1_000):
        if outbox.publishes(n.topic):
            event = outbox.to_integration_event(n.topic, app.mapper.to_domain_event(n))
            if event is not None:
                out.append(event)
    return out


async def test_tickets_issued_and_the_draw_are_published_for_mail_and_analytics() -> None:
    w = await opened()
    await w.lottery.purchase(
        wallet=ALICE,
        count=2,
        payment_method=USDC,
        tx_hash=w.chain.pay(ALICE, 2 * PRICE),
        amount_paid=2 * PRICE,
        account_id="fan-1",
    )
    w.now = T0 + timedelta(days=7)
    await w.lottery.draw("2026-w50")
    issued, drawn = published(w.app)
    assert isinstance(issued, TicketsIssued) and isinstance(drawn, RoundDrawn)
    assert (issued.round_id, issued.account_id, issued.wallet) == ("2026-w50", "fan-1", ALICE)
    assert (issued.ticket_numbers, issued.method, issued.payment_method) == (
        [1, 2],
        "purchase",
        "USDC",
    )
    assert issued.drawing_date == T0 + timedelta(days=7)
    assert (drawn.winner_wallet, drawn.winner_account_id, drawn.prize) == (
        ALICE,
        "fan-1",
        str(2 * PRICE),
    )
    assert drawn.winning_ticket in (1, 2) and drawn.tickets_sold == 2


async def test_tickets_bought_by_card_are_issued_once_payment_says_paid() -> None:
    w = await opened()
    order_id = uuid4()
    order = await w.lottery.order_tickets(
        order_id=order_id, wallet=CAROL, count=3, account_id="fan-2"
    )
    assert (order.status, order.unit_cents, order.currency) == ("pending", PRICE // 10_000, "USD")
    again = await w.lottery.order_tickets(
        order_id=order_id, wallet=CAROL, count=3, account_id="fan-2"
    )
    assert again.version == order.version  # a retried request: the same order
    request = [e for e in published(w.app) if isinstance(e, OrderRequest)]
    assert len(request) == 1 and request[0].order_id == str(order_id)
    assert (request[0].unit_amount_cents, request[0].quantity) == (500, 3)
    assert request[0].product.kind == "lottery_tickets" and request[0].buyer_id == "fan-2"

    done = await w.lottery.fulfil_order(order_id, "pi_1")
    assert done.status == "issued"
    _, claim = await w.lottery.order(order_id)
    assert claim is not None and claim.tickets().numbers == [1, 2, 3]
    assert claim.payment_method == "CARD" and claim.pot_added == 0
    await w.lottery.fulfil_order(order_id, "pi_1")  # payment's verdict delivered again
    assert w.chain.rounds[0].count == 3 and (await w.lottery.current()).held_by(CAROL) == 3


async def test_an_unpaid_card_order_lapses_and_one_paid_too_late_is_unfulfilled() -> None:
    w = await opened()
    lapsing, late = uuid4(), uuid4()
    await w.lottery.order_tickets(order_id=lapsing, wallet=ALICE, count=1, account_id="a")
    await w.lottery.order_tickets(order_id=late, wallet=BOB, count=2, account_id="b")
    assert (await w.lottery.lapse_order(lapsing, "expired")).status == "lapsed"
    assert (await w.lottery.fulfil_order(lapsing, "pi_x")).status == "lapsed"  # nothing issued
    w.now = T0 + timedelta(days=7)
    await w.lottery.draw("2026-w50")  # closed and drawn before the payment arrived
    unfulfilled = await w.lottery.fulfil_order(late, "pi_late")
    assert (unfulfilled.status, unfulfilled.reason) == ("unfulfilled", "AlreadyClosed")
    assert w.chain.rounds[0].count == 0


async def test_a_round_priced_below_a_cent_is_not_sold_by_card() -> None:
    w = await opened("odd", ticket_price=1_234_567)
    with pytest.raises(RoundNotActive):
        await w.lottery.order_tickets(order_id=uuid4(), wallet=ALICE, count=1, account_id="a")


async def test_shares_burnt_before_the_round_opened_earn_no_tickets_in_it() -> None:
    w = World()
    w.now = T0 - timedelta(hours=2)
    early = w.chain.burn(CAROL, MASTER, 5)  # burnt before this round was even announced
    w.now = T0 + timedelta(hours=1)
    await w.lottery.create_round("later", terms(), actor_id=ADMIN)
    with pytest.raises(PaidOutsideRound):
        await w.lottery.burn_claim(wallet=CAROL, tx_hashes=[early], tickets=1, account_id=None)
    assert w.app.claim(early) is None  # refused: the hash is not spent
