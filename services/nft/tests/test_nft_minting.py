"""Minting paid allocations exactly once, whatever fails between signing and recording
(in memory: the application and MasterShares' in-memory twin)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from audifi_kit.eventstore import DirectCalls
from audifi_nft.adapters.shares_memory import CUSTODY, InMemoryShares, ProcessDied
from audifi_nft.bootstrap import in_memory
from audifi_nft.domain.mint import FAILED, MINTED, REQUESTED, SIGNED, MintNotFound, mint_id_of
from audifi_nft.ipos import Ipos
from audifi_nft.minting import Minting
from eth_utils import to_checksum_address
from nft_support import ARTIST, T0, register, terms

FAN = str(uuid.UUID(int=7))
FAN_WALLET = to_checksum_address("0x00000000000000000000000000000000000000f7")


async def _paid(quantity: int = 3, *, cap: int = 100, buyers: int = 1):
    app = in_memory()
    master = register(app)
    ipo = app.configure_ipo(
        master_id=master.id, actor_id=ARTIST, actor_is_admin=False, **terms(cap=cap)
    )
    shares = InMemoryShares()
    store = DirectCalls(app)
    await Ipos(store, shares, clock=lambda: T0).launch(ipo.id)
    reservations = []
    for n in range(buyers):
        rid = f"res-{n}"
        buyer = FAN if n == 0 else str(uuid.UUID(int=100 + n))
        app.reserve(
            ipo.id, reservation_id=rid, account_id=buyer, quantity=quantity, method="card", now=T0
        )
        app.record_payment(
            ipo.id, reservation_id=rid, payment=f"pi_{n}", paid_at=T0 + timedelta(minutes=1)
        )
        reservations.append(rid)
    minting = Minting(store, shares, clock=lambda: T0 + timedelta(minutes=2))
    return app, master, ipo, shares, minting, reservations


async def test_a_paid_allocation_is_minted_to_the_buyers_wallet_once() -> None:
    app, master, ipo, shares, minting, [rid] = await _paid()
    app.link_wallet(FAN, FAN_WALLET.lower(), at=T0)

    mint = await minting.drive(ipo.id, rid)

    assert (mint.status, mint.to, mint.custody) == (MINTED, FAN_WALLET, False)
    assert shares.balances == {(master.id.int, FAN_WALLET): 3}
    assert app.ipo(ipo.id).unminted() == []
    assert (await minting.drive(ipo.id, rid)).status == MINTED  # again: nothing more on chain
    assert len([t for t in shares.transactions if t[0] == "mint"]) == 1


async def test_a_buyer_without_a_wallet_has_the_shares_minted_to_custody_for_them() -> None:
    app, master, ipo, shares, minting, [rid] = await _paid()
    mint = await minting.drive(ipo.id, rid)
    assert (mint.to, mint.custody, mint.account_id) == (CUSTODY, True, FAN)
    assert shares.balances == {(master.id.int, CUSTODY): 3}
    reservation = app.ipo(ipo.id).reservation(rid)
    assert (reservation["mint"], reservation["custody"]) == ("minted", True)


async def test_a_crash_between_recording_and_sending_sends_the_recorded_transaction() -> None:
    app, master, ipo, shares, minting, [rid] = await _paid()
    shares.lose_next_send = True  # signed and recorded, then the process died

    with pytest.raises(ProcessDied):
        await minting.drive(ipo.id, rid)
    mint = app.mint(mint_id_of(rid))
    assert mint.status == SIGNED and shares.balances == {}
    recorded = mint.tx_hash

    mint = await minting.drive(ipo.id, rid)  # after the restart: the same transaction
    assert (mint.status, mint.tx_hash) == (MINTED, recorded)
    assert shares.balances == {(master.id.int, CUSTODY): 3}


async def test_a_recorded_transaction_whose_nonce_went_elsewhere_is_signed_anew_once() -> None:
    app, master, ipo, shares, minting, [rid] = await _paid()
    shares.lose_next_send = True
    with pytest.raises(ProcessDied):
        await minting.drive(ipo.id, rid)
    lost = app.mint(mint_id_of(rid)).tx_hash
    shares.take_nonce()  # another transaction of the operator took that nonce

    mint = await minting.drive(ipo.id, rid)  # found never mined: dropped, then signed anew
    assert mint.status == REQUESTED
    mint = await minting.drive(ipo.id, rid)
    assert mint.status == MINTED and mint.tx_hash != lost and mint.attempt == 2
    assert shares.balances == {(master.id.int, CUSTODY): 3}


async def test_a_revert_fails_the_mint_with_the_chains_reason_until_it_is_redriven() -> None:
    app, master, ipo, shares, minting, [rid] = await _paid()
    shares.fail_next = "AccessControlUnauthorizedAccount"

    mint = await minting.drive(ipo.id, rid)
    assert mint.status == FAILED
    assert mint.error["code"] == "BLOCKCHAIN_ERROR"
    assert mint.error["details"]["error"] == "AccessControlUnauthorizedAccount"
    assert app.ipo(ipo.id).reservation(rid)["mint"] == "failed"
    assert (await minting.drive(ipo.id, rid)).status == FAILED  # not retried on its own

    [redriven] = app.redrive_mints(master.id, by=ARTIST, now=T0)
    assert redriven.status == REQUESTED
    assert (await minting.drive(ipo.id, rid)).status == MINTED
    assert app.ipo(ipo.id).unminted() == []
    assert app.redrive_mints(master.id, by=ARTIST, now=T0) == []  # nothing left to re-drive


async def test_the_mint_goes_where_the_wallet_was_when_it_was_requested() -> None:
    app, _master, ipo, shares, minting, [rid] = await _paid()
    shares.lose_next_send = True
    with pytest.raises(ProcessDied):
        await minting.drive(ipo.id, rid)  # requested and signed to custody
    app.link_wallet(FAN, FAN_WALLET, at=T0)
    mint = await minting.drive(ipo.id, rid)
    assert (mint.status, mint.to) == (MINTED, CUSTODY)  # what was signed is what is minted


def test_a_wallet_is_linked_once_and_the_newest_receives_mints() -> None:
    app = in_memory()
    assert app.wallet_of(FAN) is None
    assert app.link_wallet(FAN, FAN_WALLET, at=T0)
    assert not app.link_wallet(FAN, FAN_WALLET.lower(), at=T0)  # the same, in another case
    assert not app.link_wallet(FAN, "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin", at=T0)
    other = "0x00000000000000000000000000000000000000A1"
    assert app.link_wallet(FAN, other, at=T0)
    assert app.wallet_of(FAN) == other
    assert app.link_wallet(FAN, FAN_WALLET, at=T0)  # linked again: the newest again
    assert app.wallet_of(FAN) == FAN_WALLET
    with pytest.raises(MintNotFound):
        app.mint(mint_id_of("nothing"))


async def test_shares_held_in_custody_are_withdrawn_to_the_wallet_linked_later() -> None:
    from audifi_nft.domain.custody import NothingToWithdraw, NoWalletLinked

    app, master, ipo, shares, minting, [rid] = await _paid(quantity=3)
    await minting.drive(ipo.id, rid)  # no wallet yet: minted to custody, held for the fan
    assert app.custody_of(FAN, master.id).available == 3

    def ask(quantity: int):  # type: ignore[no-untyped-def]
        return app.request_withdrawal(
            withdrawal_id=uuid.uuid4(),
            account_id=FAN,
            master_id=master.id,
            quantity=quantity,
            custody_address=CUSTODY,
            now=T0,
        )

    with pytest.raises(NoWalletLinked):
        ask(1)
    app.link_wallet(FAN, FAN_WALLET, at=T0)
    with pytest.raises(NothingToWithdraw):
        ask(4)
    withdrawal = ask(2)
    assert app.custody_of(FAN, master.id).available == 1  # reserved at once
    with pytest.raises(NothingToWithdraw):
        ask(2)

    done = await minting.drive_withdrawal(withdrawal.id)
    assert (done.status, done.to) == (MINTED, FAN_WALLET)
    assert shares.balances == {(master.id.int, CUSTODY): 1, (master.id.int, FAN_WALLET): 2}
    book = app.custody_of(FAN, master.id)
    assert (book.held, book.reserved) == (1, 0)


async def test_a_withdrawal_the_chain_refuses_gives_the_shares_back_to_withdraw() -> None:
    app, master, ipo, shares, minting, [rid] = await _paid(quantity=3)
    await minting.drive(ipo.id, rid)
    app.link_wallet(FAN, FAN_WALLET, at=T0)
    withdrawal = app.request_withdrawal(
        withdrawal_id=uuid.uuid4(),
        account_id=FAN,
        master_id=master.id,
        quantity=3,
        custody_address=CUSTODY,
        now=T0,
    )
    shares.balances[(master.id.int, CUSTODY)] = 0  # (whatever the reason) custody lacks them

    failed = await minting.drive_withdrawal(withdrawal.id)
    assert failed.status == FAILED
    assert failed.error["details"]["error"] == "ERC1155InsufficientBalance"
    assert app.custody_of(FAN, master.id).available == 3
