"""The coin service's eventsourcing application: one method per command.

The lottery's commands record what the chain said (a round opened, tickets issued, a round
closed and drawn) and the claims on transaction hashes the service verified; the service
layer (lottery.py) talks to the chain and calls these. Each is idempotent: the chain's facts
arrive from a receipt and again from the indexer.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

from audifi_kit.eventstore import ServiceApplication
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError

from audifi_coin.domain.coin import (
    DEPLOYING,
    ArtistCoin,
    CoinAddress,
    CoinExists,
    CoinNotFound,
    CoinTerms,
    address_uuid,
    coin_uuid,
)
from audifi_coin.domain.lottery import LotteryRound as Round
from audifi_coin.domain.lottery import (
    OrderNotFound,
    RoundExists,
    RoundNotFound,
    RoundTerms,
    TicketClaim,
    TicketOrder,
    TicketRange,
    TxHashClaim,
    TxHashUsed,
    claim_uuid,
    round_uuid,
)

CHAIN_ROUND_NAMESPACE = uuid.UUID("0d6f2b7e-4c8a-4e1f-b3a9-5e7d1c2f8a60")
LATEST_ROUNDS_ID = uuid.UUID("e3c1a2b4-7f5d-4a6e-9b8c-0d1e2f3a4b5c")
RACES = 8  # writers of one round at once: a purchase deciding again after losing a race
COIN_BOOK_ID = uuid.UUID("2a9c4e61-5b7d-4f83-a1e0-9d8c7b6a5f40")


def chain_round_uuid(chain_round_id: int) -> UUID:
    return uuid.uuid5(CHAIN_ROUND_NAMESPACE, str(chain_round_id))


class ChainRound(Aggregate):
    """Which round chain round N is: the indexer's logs name chain ids."""

    @event("Linked")
    def __init__(self, *, chain_round_id: int, round_id: str) -> None:
        self.chain_round_id = chain_round_id
        self.round_id = round_id


class RoundBook(Aggregate):
    """Every round's id in creation order: the newest running one is the current round."""

    @event("Started")
    def __init__(self) -> None:
        self.round_ids: list[str] = []

    @event("Added")
    def add(self, round_id: str) -> None:
        self.round_ids.append(round_id)


class CoinBook(Aggregate):
    """Every artist with a coin, in the order they asked: the coins' indexers start from it."""

    @event("Started")
    def __init__(self) -> None:
        self.artist_ids: list[str] = []

    @event("Added")
    def add(self, artist_id: str) -> None:
        self.artist_ids.append(artist_id)


class CoinApplication(ServiceApplication):
    """Artist coins, staking, liquidity pools and the lottery."""

    # -- artist coins --------------------------------------------------------------------------

    def request_coin(
        self, *, artist_id: str, terms: CoinTerms, requested_by: str, at: datetime
    ) -> ArtistCoin:
        """An artist's coin, to be deployed. Asked again with the same terms while it is
        being deployed: the same coin (a retry resumes it); otherwise one per artist, 409."""
        terms.check()
        existing = self._find(ArtistCoin, coin_uuid(artist_id))
        if existing is not None:
            if existing.status == DEPLOYING and existing.terms == terms:
                return existing  # type: ignore[no-any-return]
            raise CoinExists(
                details={
                    "artistId": artist_id,
                    "symbol": existing.symbol,
                    "status": existing.status,
                }
            )
        found = self._find(CoinBook, COIN_BOOK_ID)
        book = found if found is not None else CoinBook._create(CoinBook.Started, id=COIN_BOOK_ID)
        book.add(artist_id)
        coin = ArtistCoin._create(
            ArtistCoin.Requested,
            id=coin_uuid(artist_id),
            artist_id=artist_id,
            terms={
                "name": terms.name,
                "symbol": terms.symbol,
                "supply": terms.supply,
                "recipient": terms.recipient,
            },
            requested_by=requested_by,
            at=at,
        )
        try:
            self.save(coin, book)
        except IntegrityError:  # asked meanwhile
            raise CoinExists(details={"artistId": artist_id}) from None
        return coin

    def coin(self, artist_id: str) -> ArtistCoin:
        found = self._find(ArtistCoin, coin_uuid(artist_id))
        if found is None:
            raise CoinNotFound(details={"artistId": artist_id})
        return found  # type: ignore[no-any-return]

    def claim_funding(
        self, artist_id: str, *, tx_hash: str, amount: int, at: datetime
    ) -> ArtistCoin:
        coin = self.coin(artist_id)
        if coin.claim_funding(tx_hash, amount, at):
            self.save(coin)
        return coin

    def funding_done(
        self, artist_id: str, *, tx_hash: str, notify_tx: str, at: datetime
    ) -> ArtistCoin:
        coin = self.coin(artist_id)
        coin.funded(tx_hash=tx_hash, notify_tx=notify_tx, at=at)
        self.save(coin)
        return coin

    def change_coin(self, artist_id: str, change: str, *args: Any, **kwargs: Any) -> ArtistCoin:
        """One of the coin's own steps (`change`, a method of ArtistCoin answering whether it
        changed anything), saved; decided again if the indexer saved the coin meanwhile."""
        for attempt in range(RACES):
            coin = self.coin(artist_id)
            if not getattr(coin, change)(*args, **kwargs) and not coin.pending_events:
                return coin
            try:
                self.save(coin)
                return coin
            except IntegrityError:
                if attempt == RACES - 1:
                    raise
        raise AssertionError("unreachable")

    def coin_artists(self) -> list[str]:
        book = self._find(CoinBook, COIN_BOOK_ID)
        return list(book.artist_ids) if book is not None else []

    def coin_of_address(self, address: str) -> tuple[ArtistCoin, str] | None:
        """The coin a contract address is (role "coin"), or whose pool or staking it is."""
        link = self._find(CoinAddress, address_uuid(address))
        return None if link is None else (self.coin(link.artist_id), link.role)

    def coin_contract_created(
        self,
        artist_id: str,
        *,
        role: str,
        address: str,
        tx_hash: str,
        block: int = 0,
        custody_for: str | None = None,
    ) -> ArtistCoin:
        """A deployment step's receipt: the coin (`role` "coin"), its pool or its staking.
        `custody_for`: the account whose supply custody received (deployed without a wallet)."""
        coin = self.coin(artist_id)
        if coin.contracts().get(role) == address:
            return coin
        if role == "coin":
            coin.deployed(address=address, block=block, tx_hash=tx_hash, custody_for=custody_for)
        elif role == "pool":
            coin.pool_created(address=address, tx_hash=tx_hash)
        else:
            coin.staking_created(address=address, tx_hash=tx_hash)
        link = CoinAddress._create(
            CoinAddress.Linked,
            id=address_uuid(address),
            address=address,
            artist_id=artist_id,
            role=role,
        )
        self.save(coin, link)
        return coin

    # -- rounds --------------------------------------------------------------------------------

    def create_round(
        self, *, round_id: str, terms: RoundTerms, seed_hash: str, actor_id: str, at: datetime
    ) -> Round:
        """A round (not yet on chain: `opening`); the same id with the same terms answers the
        round it made (a retried request), other terms are refused."""
        terms.check()
        wanted = _terms_json(terms)
        existing = self._find(Round, round_uuid(round_id))
        if existing is not None:
            if existing.terms_json != wanted or existing.seed_hash != seed_hash:
                raise RoundExists(details={"roundId": round_id})
            return existing
        found = self._find(RoundBook, LATEST_ROUNDS_ID)
        book = (
            found
            if found is not None
            else RoundBook._create(RoundBook.Started, id=LATEST_ROUNDS_ID)
        )
        book.add(round_id)
        created = Round._create(
            Round.Created,
            id=round_uuid(round_id),
            round_id=round_id,
            terms=wanted,
            seed_hash=seed_hash,
            created_by=actor_id,
            at=at,
        )
        try:
            self.save(created, book)
        except IntegrityError:  # created meanwhile, or the book moved: decide again
            raced = self._find(Round, round_uuid(round_id))
            if raced is None:
                raise
            if raced.terms_json != wanted or raced.seed_hash != seed_hash:
                raise RoundExists(details={"roundId": round_id}) from None
            return raced  # type: ignore[no-any-return]
        return created

    def round(self, round_id: str) -> Round:
        found = self._find(Round, round_uuid(round_id))
        if found is None:
            raise RoundNotFound(details={"roundId": round_id})
        return found  # type: ignore[no-any-return]

    def claimed_round(self, round_id: str) -> Round | None:
        """The round of that id, if one was created (None: the id is free)."""
        return self._find(Round, round_uuid(round_id))  # type: ignore[no-any-return]

    def round_ids(self) -> list[str]:
        book = self._find(RoundBook, LATEST_ROUNDS_ID)
        return list(book.round_ids) if book is not None else []

    def round_of_chain(self, chain_round_id: int) -> Round | None:
        link = self._find(ChainRound, chain_round_uuid(chain_round_id))
        return None if link is None else self.round(link.round_id)

    def round_opened(
        self, round_id: str, *, chain_round_id: int, pot: int, tx_hash: str, at: datetime
    ) -> Round:
        r = self.round(round_id)
        if r.open(chain_round_id=chain_round_id, pot=pot, tx_hash=tx_hash, at=at):
            link = ChainRound._create(
                ChainRound.Linked,
                id=chain_round_uuid(chain_round_id),
                chain_round_id=chain_round_id,
                round_id=round_id,
            )
            self.save(r, link)
        return r

    def record_tickets(self, round_id: str, tickets: TicketRange, *, at: datetime) -> Round:
        """A range the issuing receipt names (unconfirmed); the claim it answers, if the
        service verified one, is marked issued with it. Purchases of one round (and its
        indexer) record at once: one that lost the race to save the round decides again on
        the round as the winner left it (recording is idempotent)."""
        for attempt in range(RACES):
            changed = self.tickets_recorded(self.round(round_id), tickets, at=at)
            if not changed:
                break
            try:
                self.save(*changed)
                break
            except IntegrityError:
                if attempt == RACES - 1:
                    raise
        return self.round(round_id)

    def tickets_recorded(
        self, r: Round, tickets: TicketRange, *, at: datetime, confirmed_block: int | None = None
    ) -> list[Any]:
        """`record_tickets`, unsaved (the indexer saves them, with `confirmed_block`): the
        aggregates it changed. The claims of ranges it replaced go back to `verified`."""
        changed: list[Any] = []
        recorded, replaced = r.record_tickets(tickets, at=at, confirmed_block=confirmed_block)
        if recorded:
            changed.append(r)
        for old in replaced:
            stale = self._find(TicketClaim, claim_uuid(old.ref))
            if stale is not None and stale.unissued(tx_hash=old.tx_hash, at=at):
                changed.append(stale)
        claim = next((c for c in changed if getattr(c, "tx_hash", None) == tickets.ref), None)
        claim = claim or self._find(TicketClaim, claim_uuid(tickets.ref))
        drawing = r.terms.ends_at
        if claim is not None and claim.issued(
            first=tickets.first, tx_hash=tickets.tx_hash, at=at, drawing_date=drawing
        ):
            if claim not in changed:
                changed.append(claim)
        return changed

    def tickets_dropped(
        self, r: Round, *, first: int, ref: str, tx_hash: str, at: datetime
    ) -> list[Any]:
        """The range issued at `first` by `tx_hash` left the chain: dropped, and its claim (if
        any) back to `verified` (unsaved)."""
        changed: list[Any] = []
        if r.drop_tickets(first, tx_hash=tx_hash, at=at):
            changed.append(r)
        claim = self._find(TicketClaim, claim_uuid(ref))
        if claim is not None and claim.unissued(tx_hash=tx_hash, at=at):
            changed.append(claim)
        return changed

    def add_to_pot(self, round_id: str, *, amount: int, tx_hash: str, at: datetime) -> Round:
        r = self.round(round_id)
        if r.add_to_pot(amount, tx_hash=tx_hash, at=at):
            self.save(r)
        return r

    def close_round(
        self, round_id: str, *, close_block: int, tickets: int, pot: int, at: datetime
    ) -> Round:
        r = self.round(round_id)
        if r.close(close_block=close_block, tickets=tickets, pot=pot, at=at):
            self.save(r)
        return r

    def draw_round(self, round_id: str, **drawn: Any) -> Round:
        r = self.round(round_id)
        if r.draw(**drawn, winner_account_id=self.winner_account(r, drawn["winning_index"])):
            self.save(r)
        return r

    def winner_account(self, r: Round, winning_index: int | None) -> str | None:
        """The account whose claim the winning ticket answered, if the service issued it."""
        if winning_index is None:
            return None
        for tickets in r.tickets():
            if tickets.first <= winning_index < tickets.first + tickets.count:
                claim = self._find(TicketClaim, claim_uuid(tickets.ref))
                return claim.account_id if claim is not None else None
        return None

    # -- card orders ---------------------------------------------------------------------------

    def request_ticket_order(self, order_id: UUID, **order: Any) -> TicketOrder:
        """A card order for tickets (its `payment.order.requested` published from this save);
        the same id again answers the order it made (a retried request)."""
        existing = self._find(TicketOrder, order_id)
        if existing is not None:
            return existing  # type: ignore[no-any-return]
        made = TicketOrder._create(TicketOrder.Requested, id=order_id, **order)
        try:
            self.save(made)
        except IntegrityError:
            raced = self._find(TicketOrder, order_id)
            if raced is None:
                raise
            return raced  # type: ignore[no-any-return]
        return made

    def find_ticket_order(self, order_id: UUID) -> TicketOrder | None:
        return self._find(TicketOrder, order_id)  # type: ignore[no-any-return]

    def ticket_order(self, order_id: UUID) -> TicketOrder:
        found = self._find(TicketOrder, order_id)
        if found is None:
            raise OrderNotFound(details={"orderId": str(order_id)})
        return found  # type: ignore[no-any-return]

    def change_order(self, order_id: UUID, change: str, *args: Any) -> TicketOrder:
        """`change` is one of the order's own steps (paid, issued, lapse, unfulfilled)."""
        order = self.ticket_order(order_id)
        if getattr(order, change)(*args):
            self.save(order)
        return order

    # -- claims on transaction hashes ----------------------------------------------------------

    def claim(self, tx_hash: str) -> TicketClaim | None:
        """The claim a transaction hash is part of (its first hash's, or a further one's)."""
        found = self._find(TicketClaim, claim_uuid(tx_hash))
        if found is not None:
            return found  # type: ignore[no-any-return]
        further = self._find(TxHashClaim, claim_uuid(tx_hash))
        if further is not None:
            return self._find(TicketClaim, claim_uuid(further.claim_tx_hash))  # type: ignore[no-any-return]
        return None

    def claim_tickets(
        self,
        *,
        tx_hashes: list[str],
        round_id: str,
        wallet: str,
        account_id: str | None,
        method: str,
        payment_method: str | None,
        count: int,
        amount: int,
        pot_added: int,
        at: datetime,
    ) -> TicketClaim:
        """Verified transactions claimed for `count` tickets: every hash taken at once, ever
        (TxHashUsed if any was). The first hash names the claim (and the issue's ref)."""
        hashes = [h.lower() for h in tx_hashes]
        for h in hashes:
            if self.claim(h) is not None:
                raise TxHashUsed(details={"txHash": h})
        claim = TicketClaim._create(
            TicketClaim.Verified,
            id=claim_uuid(hashes[0]),
            tx_hash=hashes[0],
            tx_hashes=hashes,
            round_id=round_id,
            wallet=wallet,
            account_id=account_id,
            method=method,
            payment_method=payment_method,
            count=count,
            amount=amount,
            pot_added=pot_added,
            at=at,
        )
        further = [
            TxHashClaim._create(
                TxHashClaim.Claimed, id=claim_uuid(h), tx_hash=h, claim_tx_hash=hashes[0], at=at
            )
            for h in hashes[1:]
        ]
        try:
            self.save(claim, *further)
        except IntegrityError:  # claimed meanwhile
            raise TxHashUsed(details={"txHashes": hashes}) from None
        return claim


def _terms_json(terms: RoundTerms) -> dict[str, Any]:
    return {
        "ticket_price": terms.ticket_price,
        "native_ticket_price": terms.native_ticket_price,
        "burn_master_id": terms.burn_master_id,
        "shares_per_ticket": terms.shares_per_ticket,
        "max_per_wallet": terms.max_per_wallet,
        "starts_at": terms.starts_at.isoformat(),
        "ends_at": terms.ends_at.isoformat(),
    }
