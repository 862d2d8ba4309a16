"""Masters and IPOs on the in-memory application: what an artist and a buyer see."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from audifi_kit.errors import Forbidden, ValidationFailed
from audifi_nft.bootstrap import in_memory
from audifi_nft.domain.ipo import (
    CANCELLED,
    CLOSED,
    OPEN,
    AccountLimitReached,
    IpoExists,
    IpoNotOpen,
    IpoStateConflict,
    PaymentOutcome,
    SoldOut,
)
from audifi_nft.domain.master import IsrcTaken, MasterNotFound
from nft_support import ARTIST, T0, register, terms

FAN = str(uuid.UUID(int=7))
OTHER = str(uuid.UUID(int=8))


def _open_ipo(app, **overrides):
    master = register(app)
    ipo = app.configure_ipo(
        master_id=master.id, actor_id=ARTIST, actor_is_admin=False, **terms(**overrides)
    )
    app.launch_ipo(ipo.id, T0)
    return master, app.ipo(ipo.id)


def test_a_registered_master_keeps_its_isrc_files_and_chain_id() -> None:
    app = in_memory()
    master = register(app, isrc="us-aud-26-00042")
    again = app.master(master.id)
    assert again.isrc == "USAUD2600042"
    assert again.audio_ref.mime == "audio/wav" and again.cover_ref.cid.startswith("bafkrei")
    assert again.chain_id == master.id.int


def test_an_isrc_belongs_to_one_master() -> None:
    app = in_memory()
    first = register(app, isrc="USAUD2600001")
    with pytest.raises(IsrcTaken) as refused:
        register(app, isrc="US-AUD-26-00001", title="Copy")
    assert refused.value.details == {"isrc": "USAUD2600001", "masterId": str(first.id)}


@pytest.mark.parametrize("code", ["", "US-AUD-26-0001", "1SAUD2600001", "USAUD26000012", None])
def test_a_malformed_isrc_is_refused_naming_the_field(code) -> None:
    with pytest.raises(ValidationFailed) as refused:
        register(in_memory(), isrc=code)
    assert refused.value.details["fields"][0]["field"] == "isrc"


def test_an_unknown_master_is_404_naming_it() -> None:
    missing = uuid.uuid4()
    with pytest.raises(MasterNotFound) as refused:
        in_memory().master(missing)
    assert refused.value.code == "MASTER_NOT_FOUND"
    assert refused.value.details == {"masterId": str(missing)}


def test_only_the_artist_or_an_admin_configures_the_ipo_and_only_once() -> None:
    app = in_memory()
    master = register(app)
    with pytest.raises(Forbidden):
        app.configure_ipo(master_id=master.id, actor_id=FAN, actor_is_admin=False, **terms())
    ipo = app.configure_ipo(master_id=master.id, actor_id=FAN, actor_is_admin=True, **terms())
    assert ipo.artist_id == ARTIST and ipo.status == "configured" and ipo.currency == "USD"
    with pytest.raises(IpoExists):
        app.configure_ipo(master_id=master.id, actor_id=ARTIST, actor_is_admin=False, **terms())


@pytest.mark.parametrize(
    ("field", "override"),
    [
        ("cap", {"cap": 0}),
        ("cap", {"cap": 10_000_001}),
        ("priceCents", {"price_cents": -5}),
        ("priceCents", {"price_cents": 2.5}),
        ("closesAt", {"closes_at": T0}),
        ("closesAt", {"now": T0 + timedelta(days=8)}),  # the window is over already
        ("perAccountMax", {"per_account_max": 101}),
        ("royaltyBps", {"royalty_bps": 1001}),
        ("royaltyReceiver", {"royalty_receiver": "0x123"}),
        ("currency", {"currency": "dollars"}),
    ],
)
def test_bad_ipo_terms_are_refused_naming_the_field(field, override) -> None:
    app = in_memory()
    master = register(app)
    with pytest.raises(ValidationFailed) as refused:
        app.configure_ipo(
            master_id=master.id, actor_id=ARTIST, actor_is_admin=False, **terms(**override)
        )
    assert refused.value.details["fields"][0]["field"] == field


def test_a_paid_reservation_allocates_and_the_last_share_closes_the_ipo() -> None:
    app = in_memory()
    _, ipo = _open_ipo(app, cap=10, per_account_max=10)
    r = app.reserve(ipo.id, reservation_id="r1", account_id=FAN, quantity=4, method="card", now=T0)
    assert (r["quantity"], r["amount_cents"], r["expires_at"]) == (
        4,
        2000,
        T0 + timedelta(minutes=15),
    )
    assert app.ipo(ipo.id).available == 6
    assert (
        app.record_payment(ipo.id, reservation_id="r1", payment="pi_1", paid_at=T0) == "allocated"
    )
    assert (
        app.record_payment(ipo.id, reservation_id="r1", payment="pi_1", paid_at=T0) == "duplicate"
    )
    app.reserve(ipo.id, reservation_id="r2", account_id=OTHER, quantity=6, method="card", now=T0)
    with pytest.raises(SoldOut) as refused:
        app.reserve(ipo.id, reservation_id="r3", account_id=FAN, quantity=1, method="card", now=T0)
    assert refused.value.details == {"available": 0, "requested": 1}
    app.record_payment(ipo.id, reservation_id="r2", payment="pi_2", paid_at=T0)
    after = app.ipo(ipo.id)
    assert (after.allocated, after.held, after.status, after.closed_reason) == (
        10,
        0,
        CLOSED,
        "sold_out",
    )
    assert after.unminted() == ["r1", "r2"]


def test_a_released_reservation_returns_its_shares_and_its_late_payment_needs_a_refund() -> None:
    app = in_memory()
    _, ipo = _open_ipo(app, cap=5, per_account_max=5)
    app.reserve(ipo.id, reservation_id="r1", account_id=FAN, quantity=5, method="chain", now=T0)
    assert app.ipo(ipo.id).expired_reservations(T0 + timedelta(minutes=15)) == ["r1"]
    assert app.release_reservation(ipo.id, reservation_id="r1", reason="expired", now=T0)
    assert app.ipo(ipo.id).available == 5
    outcome = app.record_payment(ipo.id, reservation_id="r1", payment="0xabc", paid_at=T0)
    assert outcome == PaymentOutcome.REFUND_REQUIRED
    late = app.ipo(ipo.id)
    assert late.allocated == 0 and late.reservations["r1"]["refunds_required"] == ["0xabc"]


def test_the_per_account_maximum_counts_pending_and_paid_shares() -> None:
    app = in_memory()
    _, ipo = _open_ipo(app, per_account_max=3)
    with pytest.raises(ValidationFailed):
        app.reserve(ipo.id, reservation_id="big", account_id=FAN, quantity=4, method="card", now=T0)
    app.reserve(ipo.id, reservation_id="a", account_id=FAN, quantity=2, method="card", now=T0)
    with pytest.raises(AccountLimitReached):
        app.reserve(ipo.id, reservation_id="b", account_id=FAN, quantity=2, method="card", now=T0)
    app.release_reservation(ipo.id, reservation_id="a", reason="expired", now=T0)
    app.reserve(ipo.id, reservation_id="c", account_id=FAN, quantity=3, method="card", now=T0)


def test_an_ipo_sells_only_while_open() -> None:
    app = in_memory()
    master = register(app)
    ipo = app.configure_ipo(master_id=master.id, actor_id=ARTIST, actor_is_admin=False, **terms())
    with pytest.raises(IpoNotOpen):
        app.reserve(ipo.id, reservation_id="r", account_id=FAN, quantity=1, method="card", now=T0)
    app.launch_ipo(ipo.id, T0)
    assert app.ipo(ipo.id).status == OPEN
    end = T0 + timedelta(days=7)
    with pytest.raises(IpoNotOpen):
        app.reserve(ipo.id, reservation_id="r", account_id=FAN, quantity=1, method="card", now=end)
    assert app.close_ipo_if_due(ipo.id, end)
    assert app.ipo(ipo.id).closed_reason == "ended"


def test_an_ipo_is_cancelled_only_before_its_first_sale() -> None:
    app = in_memory()
    _, ipo = _open_ipo(app)
    app.reserve(ipo.id, reservation_id="r", account_id=FAN, quantity=1, method="card", now=T0)
    with pytest.raises(IpoStateConflict):
        app.cancel_ipo(ipo.id, actor_id=ARTIST, actor_is_admin=False, now=T0)
    app.release_reservation(ipo.id, reservation_id="r", reason="failed", now=T0)
    with pytest.raises(Forbidden):
        app.cancel_ipo(ipo.id, actor_id=FAN, actor_is_admin=False, now=T0)
    assert app.cancel_ipo(ipo.id, actor_id=ARTIST, actor_is_admin=False, now=T0).status == CANCELLED


def test_a_copy_of_an_ipo_shares_nothing_a_command_changes() -> None:
    import copy

    app = in_memory()
    _, ipo = _open_ipo(app, cap=10, per_account_max=10)
    app.reserve(ipo.id, reservation_id="r1", account_id=FAN, quantity=2, method="card", now=T0)
    original = app.ipo(ipo.id)
    twin = copy.deepcopy(original)
    twin.record_payment(reservation_id="r1", payment="pi_1", paid_at=T0)
    twin.reserve(reservation_id="r2", account_id=OTHER, quantity=1, method="card", now=T0)
    assert original.reservations["r1"]["state"] == "pending" and "r2" not in original.reservations
    assert (original.allocated, original.held, original.by_account) == (0, 2, {FAN: 2})
    assert original.pending_events == [] and len(twin.pending_events) == 2
    assert (twin.allocated, twin.held) == (2, 1)
