"""Buying IPO shares in the payment token on chain (in memory: the application, the IPO
orchestration and the chain payments' twin)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from audifi_kit.chain.payments import PaymentNotFound, PaymentWrongAmount
from audifi_kit.errors import ValidationFailed
from audifi_kit.eventstore import DirectCalls
from audifi_nft.adapters.shares_memory import InMemoryPayments, InMemoryShares
from audifi_nft.bootstrap import in_memory
from audifi_nft.domain.chain_payment import (
    ChainPaymentUnavailable,
    NotAChainPurchase,
    TxHashUsed,
    token_amount,
)
from audifi_nft.domain.ipo import ReservationNotFound
from audifi_nft.ipos import Ipos
from nft_support import ARTIST, T0, register, terms

FAN, OTHER = str(uuid.UUID(int=7)), str(uuid.UUID(int=8))


def tx(n: int) -> str:
    return "0x" + f"{n:064x}"


async def _open(currency: str = "usd", cap: int = 100):
    app = in_memory()
    master = register(app)
    ipo = app.configure_ipo(
        master_id=master.id,
        actor_id=ARTIST,
        actor_is_admin=False,
        **terms(cap=cap, currency=currency, per_account_max=min(cap, 10)),
    )
    now = [T0]
    ipos = Ipos(DirectCalls(app), InMemoryShares(), clock=lambda: now[0])
    await ipos.chain.open_ipo(master.id.int, cap, ipo.royalty_receiver, ipo.royalty_bps)  # type: ignore[attr-defined]
    await ipos.launch(ipo.id)
    return app, ipo.id, ipos, InMemoryPayments(), now


def _reserve(app, ipo_id, rid: str, buyer: str = FAN, quantity: int = 2, method: str = "chain"):
    return app.reserve(
        ipo_id, reservation_id=rid, account_id=buyer, quantity=quantity, method=method, now=T0
    )


def test_a_cent_is_ten_thousand_base_units_of_the_usd_token() -> None:
    assert token_amount(1250, "USD") == 12_500_000  # $12.50 in a 6-decimal stablecoin
    with pytest.raises(ChainPaymentUnavailable):
        token_amount(1250, "EUR")


async def test_a_checked_transaction_allocates_the_shares_once() -> None:
    app, ipo_id, ipos, payments, _ = await _open()
    _reserve(app, ipo_id, "r1")
    payments.paid[tx(1)] = token_amount(2 * 500, "USD")

    ipo = await ipos.pay_on_chain(payments, ipo_id, "r1", FAN, tx(1))
    r = ipo.reservation("r1")
    assert (r["state"], r["payment"], ipo.allocated) == ("paid", tx(1), 2)

    again = await ipos.pay_on_chain(payments, ipo_id, "r1", FAN, tx(1))  # a retried request
    assert again.allocated == 2 and again.version == ipo.version


async def test_a_transaction_pays_for_one_purchase_only() -> None:
    app, ipo_id, ipos, payments, _ = await _open()
    _reserve(app, ipo_id, "r1")
    _reserve(app, ipo_id, "r2", buyer=OTHER)
    payments.paid[tx(1)] = token_amount(1000, "USD")
    await ipos.pay_on_chain(payments, ipo_id, "r1", FAN, tx(1))

    with pytest.raises(TxHashUsed):
        await ipos.pay_on_chain(payments, ipo_id, "r2", OTHER, tx(1))
    with pytest.raises(TxHashUsed):  # in another case, the same transaction
        await ipos.pay_on_chain(payments, ipo_id, "r2", OTHER, tx(1).upper().replace("0X", "0x"))
    assert app.ipo(ipo_id).reservation("r2")["state"] == "pending"


async def test_an_unproven_payment_changes_nothing() -> None:
    app, ipo_id, ipos, payments, _ = await _open()
    _reserve(app, ipo_id, "r1")
    _reserve(app, ipo_id, "card", buyer=OTHER, method="card")
    version = app.ipo(ipo_id).version
    payments.paid[tx(2)] = token_amount(999, "USD")  # a cent short

    with pytest.raises(PaymentWrongAmount):
        await ipos.pay_on_chain(payments, ipo_id, "r1", FAN, tx(2))
    with pytest.raises(PaymentNotFound):
        await ipos.pay_on_chain(payments, ipo_id, "r1", FAN, tx(3))
    with pytest.raises(ReservationNotFound):  # someone else's purchase
        await ipos.pay_on_chain(payments, ipo_id, "r1", OTHER, tx(2))
    with pytest.raises(NotAChainPurchase):
        await ipos.pay_on_chain(payments, ipo_id, "card", OTHER, tx(2))
    assert app.ipo(ipo_id).version == version


async def test_an_ipo_priced_in_another_currency_is_not_sold_on_chain() -> None:
    app, ipo_id, _, _, _ = await _open(currency="eur")
    with pytest.raises(ChainPaymentUnavailable):
        _reserve(app, ipo_id, "r1")
    with pytest.raises(ValidationFailed):
        _reserve(app, ipo_id, "r2", method="cash")
    assert _reserve(app, ipo_id, "r3", method="card")["state"] == "pending"


async def test_unpaid_chain_reservations_expire_and_a_late_payment_is_refunded() -> None:
    app, ipo_id, ipos, payments, now = await _open(cap=4)
    _reserve(app, ipo_id, "r1")
    _reserve(app, ipo_id, "card", buyer=OTHER, method="card")  # payment expires those
    assert app.ipo(ipo_id).available == 0

    now[0] = T0 + timedelta(minutes=14)
    assert await ipos.release_expired(ipo_id) == []
    now[0] = T0 + timedelta(minutes=15)
    assert await ipos.release_expired(ipo_id) == ["r1"]
    ipo = app.ipo(ipo_id)
    assert ipo.available == 2 and ipo.reservation("card")["state"] == "pending"

    payments.paid[tx(4)] = token_amount(1000, "USD")  # paid after all, too late
    ipo = await ipos.pay_on_chain(payments, ipo_id, "r1", FAN, tx(4))
    r = ipo.reservation("r1")
    assert r["state"] == "released" and r["refunds_required"] == [tx(4)]
    assert ipo.allocated == 0
