"""An IPO: shares of one master sold at a fixed price, never more than its cap.

States: configured -> open (launched; `nft.ipo.launched`) -> closed (sold out, or at
`closes_at`) | cancelled (before the first sale, with no reservation pending).

A purchase is a reservation first: it holds `quantity` shares for `RESERVATION_TTL` while the
buyer pays (payment's order by card, or a transfer of the payment token on chain). The cap is
checked when reserving: shares allocated plus shares held by pending reservations never exceed
it, so a payment can always be honoured. A reservation ends once:
- paid -> its shares are allocated to the buyer (and minted on chain after);
- released (its order expired or failed, the buyer's on-chain payment never came, the IPO was
  cancelled) -> its shares return to the pool.
Who says a card reservation ended is payment (an order is paid XOR expired there), so a card
payment never races a release. A payment for a reservation already released (an on-chain
transfer after its expiry) allocates nothing: it is recorded as needing a refund, never
dropped, never allocated past the cap.

Per account, shares allocated plus shares held by its pending reservations never exceed the
IPO's per-account maximum.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from audifi_kit.errors import Conflict, NotFound
from audifi_kit.fields import EvmAddress, check
from audifi_kit.values import MAX_SAFE_INTEGER, currency_code, invalid, moment, whole_number
from eventsourcing.domain import Aggregate, event

from audifi_nft.domain.chain_payment import token_amount

MAX_CAP = 10_000_000
MAX_ROYALTY_BPS = 1_000
RESERVATION_TTL = timedelta(minutes=15)

CONFIGURED = "configured"
OPEN = "open"
CLOSED = "closed"
CANCELLED = "cancelled"

METHODS = ("card", "chain")  # by card through payment's order; in the payment token on chain

PENDING = "pending"
PAID = "paid"
RELEASED = "released"


class IpoNotFound(NotFound):
    code = "IPO_NOT_FOUND"
    default_message = "IPO not found"


class IpoExists(Conflict):
    code = "IPO_EXISTS"
    default_message = "This master already has an IPO"


class IpoNotOpen(Conflict):
    code = "IPO_NOT_OPEN"
    default_message = "The IPO is not open for purchases"


class SoldOut(Conflict):
    code = "IPO_SOLD_OUT"
    default_message = "Not enough shares left"


class AccountLimitReached(Conflict):
    code = "ACCOUNT_LIMIT_REACHED"
    default_message = "This purchase would exceed the IPO's per-account maximum"


class IpoStateConflict(Conflict):
    code = "IPO_STATE_CONFLICT"
    default_message = "The IPO cannot do that in its state"


class ReservationNotFound(NotFound):
    code = "RESERVATION_NOT_FOUND"
    default_message = "No such reservation"


class PaymentOutcome:
    ALLOCATED = "allocated"
    DUPLICATE = "duplicate"
    REFUND_REQUIRED = "refund_required"


class Ipo(Aggregate):
    @event("Configured")
    def __init__(
        self,
        *,
        master_id: UUID,
        artist_id: str,
        cap: int,
        price_cents: int,
        currency: str,
        opens_at: datetime,
        closes_at: datetime,
        per_account_max: int,
        royalty_receiver: str,
        royalty_bps: int,
        configured_by: str,
        title: str,
    ) -> None:
        self.master_id = master_id
        self.title = title  # the master's, for what the buyer reads on a checkout
        self.artist_id = artist_id
        self.cap = cap
        self.price_cents = price_cents
        self.currency = currency
        self.opens_at = opens_at
        self.closes_at = closes_at
        self.per_account_max = per_account_max
        self.royalty_receiver = royalty_receiver
        self.royalty_bps = royalty_bps
        self.configured_by = configured_by
        self.status = CONFIGURED
        self.allocated = 0
        self.held = 0  # shares held by pending reservations
        self.reservations: dict[str, dict[str, Any]] = {}
        self.by_account: dict[str, int] = {}  # allocated + held, per account
        self.closed_reason: str | None = None

    @classmethod
    def configure(
        cls,
        *,
        ipo_id: UUID,
        master_id: UUID,
        artist_id: str,
        configured_by: str,
        cap: Any,
        price_cents: Any,
        currency: Any,
        opens_at: Any,
        closes_at: Any,
        per_account_max: Any,
        royalty_receiver: Any,
        royalty_bps: Any,
        title: str,
        now: datetime,
    ) -> Ipo:
        cap = whole_number(cap, field="cap", minimum=1, maximum=MAX_CAP)
        price = whole_number(price_cents, field="priceCents", minimum=1, maximum=MAX_SAFE_INTEGER)
        if price * cap > MAX_SAFE_INTEGER:
            raise invalid("priceCents", "The IPO's total (price times cap) is too large")
        opens = moment(opens_at, field="opensAt")
        closes = moment(closes_at, field="closesAt")
        if closes <= opens:
            raise invalid("closesAt", "Expected a time after opensAt")
        if closes <= now:
            raise invalid("closesAt", "Expected a time in the future")
        limit = whole_number(per_account_max, field="perAccountMax", minimum=1, maximum=cap)
        receiver = check(EvmAddress, royalty_receiver, field="royaltyReceiver")
        bps = whole_number(royalty_bps, field="royaltyBps", minimum=0, maximum=MAX_ROYALTY_BPS)
        return cls._create(
            cls.Configured,
            id=ipo_id,
            master_id=master_id,
            artist_id=artist_id,
            cap=cap,
            price_cents=price,
            currency=currency_code(currency),
            opens_at=opens,
            closes_at=closes,
            per_account_max=limit,
            royalty_receiver=receiver,
            royalty_bps=bps,
            configured_by=configured_by,
            title=title,
        )

    # -- reading ---------------------------------------------------------------------------

    @property
    def available(self) -> int:
        return self.cap - self.allocated - self.held

    def is_open(self, now: datetime) -> bool:
        return self.status == OPEN and now < self.closes_at

    def reservation(self, reservation_id: str) -> dict[str, Any]:
        found = self.reservations.get(reservation_id)
        if found is None:
            raise ReservationNotFound(details={"reservationId": reservation_id})
        return found

    def pending(self) -> list[str]:
        return [r for r, v in self.reservations.items() if v["state"] == PENDING]

    def _replace(self, reservation_id: str, **changes: Any) -> dict[str, Any]:
        """A reservation's entry is never changed in place, only replaced (see __deepcopy__)."""
        entry = {**self.reservations[reservation_id], **changes}
        self.reservations[reservation_id] = entry
        return entry

    def __deepcopy__(self, memo: dict[int, Any]) -> Ipo:
        """The repository copies an aggregate for every command and read. A hot IPO holds
        thousands of reservations (a full deep copy of 10,000: 65 ms): its entries are never
        changed in place, so a copy shares them and copies only the containers."""
        copied = object.__new__(type(self))
        copied.__dict__.update(
            {k: v.copy() if isinstance(v, dict | list) else v for k, v in self.__dict__.items()}
        )
        return copied

    # -- the life of the IPO ---------------------------------------------------------------

    def launch(self, now: datetime) -> None:
        """Opens the IPO (its shares were opened on chain first)."""
        if self.status == OPEN:
            return
        if self.status != CONFIGURED:
            raise IpoStateConflict(details={"status": self.status})
        if now >= self.closes_at:
            raise IpoStateConflict("The IPO's sale window is over", details={"status": self.status})
        self._launched(at=now, facts=self._facts())

    def _facts(self) -> dict[str, Any]:
        """What the published events of this IPO carry (so nothing is loaded to publish)."""
        return {
            "master_id": str(self.master_id),
            "artist_id": self.artist_id,
            "cap": self.cap,
            "price_cents": self.price_cents,
            "currency": self.currency,
            "per_account_max": self.per_account_max,
            "opens_at": self.opens_at,
            "closes_at": self.closes_at,
            "title": self.title,
        }

    @event("Launched")
    def _launched(self, at: datetime, facts: dict[str, Any]) -> None:
        self.status = OPEN
        self.launched_at = at

    def close_if_due(self, now: datetime) -> bool:
        """Closes an open IPO whose window ended; True when it did."""
        if self.status == OPEN and now >= self.closes_at:
            self._closed(reason="ended", at=now, master_id=str(self.master_id))
            return True
        return False

    @event("Closed")
    def _closed(self, reason: str, at: datetime, master_id: str) -> None:
        self.status = CLOSED
        self.closed_reason = reason
        self.closed_at = at

    def cancel(self, now: datetime) -> None:
        if self.status == CANCELLED:
            return
        if self.status == CLOSED or self.allocated or self.held:
            raise IpoStateConflict(
                "An IPO can be cancelled only before its first sale, with no purchase pending",
                details={"status": self.status, "allocated": self.allocated, "held": self.held},
            )
        self._cancelled(at=now, master_id=str(self.master_id))

    @event("Cancelled")
    def _cancelled(self, at: datetime, master_id: str) -> None:
        self.status = CANCELLED
        self.cancelled_at = at

    # -- purchases -------------------------------------------------------------------------

    def reserve(
        self, *, reservation_id: str, account_id: str, quantity: Any, method: str, now: datetime
    ) -> dict[str, Any]:
        """Hold `quantity` shares for the account; the same reservation id again is the same
        reservation (a retried request)."""
        if reservation_id in self.reservations:
            return self.reservations[reservation_id]
        quantity = whole_number(quantity, field="quantity", minimum=1, maximum=MAX_CAP)
        if method not in METHODS:
            raise invalid("method", f"Expected one of {', '.join(METHODS)}")
        if method == "chain":
            token_amount(quantity * self.price_cents, self.currency)  # a USD IPO only
        if not self.is_open(now):
            raise IpoNotOpen(details={"status": self.status})
        if quantity > self.per_account_max:
            raise invalid("quantity", f"Expected at most {self.per_account_max} (per account)")
        if quantity > self.available:
            raise SoldOut(details={"available": self.available, "requested": quantity})
        mine = self.by_account.get(account_id, 0)
        if mine + quantity > self.per_account_max:
            raise AccountLimitReached(
                details={"perAccountMax": self.per_account_max, "alreadyYours": mine}
            )
        self._reserved(
            reservation_id=reservation_id,
            account_id=account_id,
            quantity=quantity,
            amount_cents=quantity * self.price_cents,
            method=method,
            expires_at=now + RESERVATION_TTL,
            facts=self._facts(),
        )
        return self.reservations[reservation_id]

    @event("SharesReserved")
    def _reserved(
        self,
        reservation_id: str,
        account_id: str,
        quantity: int,
        amount_cents: int,
        method: str,
        expires_at: datetime,
        facts: dict[str, Any],
    ) -> None:
        self.reservations[reservation_id] = {
            "account_id": account_id,
            "quantity": quantity,
            "amount_cents": amount_cents,
            "method": method,
            "expires_at": expires_at,
            "state": PENDING,
            "payment": None,
        }
        self.held += quantity
        self.by_account[account_id] = self.by_account.get(account_id, 0) + quantity

    def record_payment(self, *, reservation_id: str, payment: str, paid_at: datetime) -> str:
        """A payment of the reservation (an order's payment intent, or a chain transaction).

        Pending: its shares are allocated (and the IPO closes when sold out). Paid by this
        same payment: a duplicate. Otherwise nothing is allocated and the payment is recorded
        as needing a refund."""
        r = self.reservation(reservation_id)
        if r["state"] == PAID and r["payment"] == payment:
            return PaymentOutcome.DUPLICATE
        if r["state"] != PENDING:
            if payment not in r.get("refunds_required", ()):
                self._late_payment(reservation_id=reservation_id, payment=payment, at=paid_at)
            return PaymentOutcome.REFUND_REQUIRED
        self._allocated(
            reservation_id=reservation_id,
            payment=payment,
            at=paid_at,
            facts={
                **self._facts(),
                "buyer_id": r["account_id"],
                "quantity": r["quantity"],
                "amount_cents": r["amount_cents"],
            },
        )
        if self.allocated == self.cap and self.status == OPEN:
            self._closed(reason="sold_out", at=paid_at, master_id=str(self.master_id))
        return PaymentOutcome.ALLOCATED

    @event("SharesAllocated")
    def _allocated(
        self, reservation_id: str, payment: str, at: datetime, facts: dict[str, Any]
    ) -> None:
        r = self._replace(reservation_id, state=PAID, payment=payment, paid_at=at, mint=PENDING)
        self.held -= r["quantity"]
        self.allocated += r["quantity"]

    @event("LatePaymentRecorded")
    def _late_payment(self, reservation_id: str, payment: str, at: datetime) -> None:
        r = self.reservations[reservation_id]
        self._replace(reservation_id, refunds_required=[*r.get("refunds_required", ()), payment])

    def release(self, *, reservation_id: str, reason: str, now: datetime) -> bool:
        """Returns a pending reservation's shares to the pool; False when it was not pending."""
        r = self.reservation(reservation_id)
        if r["state"] != PENDING:
            return False
        self._released(reservation_id=reservation_id, reason=reason, at=now)
        return True

    @event("ReservationReleased")
    def _released(self, reservation_id: str, reason: str, at: datetime) -> None:
        r = self._replace(reservation_id, state=RELEASED, released_reason=reason)
        self.held -= r["quantity"]
        self.by_account[r["account_id"]] -= r["quantity"]

    def expired_reservations(self, now: datetime, method: str | None = None) -> list[str]:
        """Pending reservations past their expiry (of one payment method, when given)."""
        return [
            rid
            for rid, r in self.reservations.items()
            if r["state"] == PENDING
            and r["expires_at"] <= now
            and (method is None or r["method"] == method)
        ]

    # -- minting ---------------------------------------------------------------------------

    def record_mint(self, *, reservation_id: str, tx_hash: str, to: str, custody: bool) -> bool:
        """The allocation's shares were minted on chain; False when already recorded."""
        r = self.reservation(reservation_id)
        if r["state"] != PAID:
            raise IpoStateConflict("Only paid shares are minted", details={"state": r["state"]})
        if r.get("mint") == "minted":
            return False
        self._minted(
            reservation_id=reservation_id,
            tx_hash=tx_hash,
            to=to,
            custody=custody,
            facts={
                "master_id": str(self.master_id),
                "buyer_id": r["account_id"],
                "quantity": r["quantity"],
                "title": self.title,
            },
        )
        return True

    @event("SharesMinted")
    def _minted(
        self, reservation_id: str, tx_hash: str, to: str, custody: bool, facts: dict[str, Any]
    ) -> None:
        self._replace(
            reservation_id,
            mint="minted",
            mint_tx=tx_hash,
            minted_to=to,
            custody=custody,
            mint_error=None,
        )

    def record_mint_failure(self, *, reservation_id: str, error: str) -> None:
        r = self.reservation(reservation_id)
        if r["state"] != PAID or r.get("mint") == "minted":
            return
        self._mint_failed(reservation_id=reservation_id, error=error[:500])

    @event("MintFailed")
    def _mint_failed(self, reservation_id: str, error: str) -> None:
        self._replace(reservation_id, mint="failed", mint_error=error)

    def unminted(self) -> list[str]:
        """Paid allocations whose shares are not on chain yet (pending or failed)."""
        return [
            rid
            for rid, r in self.reservations.items()
            if r["state"] == PAID and r["mint"] != "minted"
        ]
