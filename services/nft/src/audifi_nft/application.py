"""The nft service's eventsourcing application: one method per command.

Commands load their aggregates, call them and save; `decide_*` variants return the changed
aggregate unsaved, for group commit (a hot IPO's purchases: `GroupCommit.submit(lambda:
app.decide_reserve(...), loads=[ipo_id])`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

from audifi_kit.errors import Forbidden, NotFound, ValidationFailed
from audifi_kit.eventstore import ServiceApplication
from audifi_kit.values import whole_number
from eventsourcing.persistence import IntegrityError

from audifi_nft.domain.chain_payment import (
    NotAChainPurchase,
    TxHashClaim,
    TxHashUsed,
    tx_hash_claim_id,
)
from audifi_nft.domain.custody import (
    CustodyBook,
    NothingToWithdraw,
    NoWalletLinked,
    Withdrawal,
    custody_book_id,
)
from audifi_nft.domain.ipo import (
    PAID,
    Ipo,
    IpoExists,
    IpoNotFound,
    IpoStateConflict,
    PaymentOutcome,
    ReservationNotFound,
)
from audifi_nft.domain.master import (
    IsrcClaim,
    IsrcTaken,
    Master,
    MasterNotFound,
    MediaRef,
    isrc,
    isrc_claim_id,
)
from audifi_nft.domain.media import StagedUpload, staged_upload_id
from audifi_nft.domain.mint import Mint, MintNotFound, mint_id_of
from audifi_nft.domain.revenue import (
    ChainDistributionRef,
    Distribution,
    DistributionExists,
    DistributionNotFound,
    chain_ref_id,
    distribution_id_of,
    month_of,
)
from audifi_nft.domain.wallets import AccountWallets, wallets_id_of
from audifi_nft.funding import ProjectCommands
from audifi_nft.locker import LockerCommands

IPO_NAMESPACE = uuid.UUID("0b7f5a52-3d0e-4c0a-b2b1-5f8e2a9c4d17")


def ipo_id_of(master_id: UUID) -> UUID:
    """A master's one IPO."""
    return uuid.uuid5(IPO_NAMESPACE, str(master_id))


class NftApplication(ProjectCommands, LockerCommands, ServiceApplication):
    """Masters, IPOs, share holdings, distributions, funding projects and milestones, content."""

    # -- masters ---------------------------------------------------------------------------

    def register_master(
        self,
        *,
        artist_id: str,
        registered_by: str,
        title: Any,
        isrc_code: Any,
        audio: MediaRef,
        cover: MediaRef,
        metadata: Any = None,
        adopted: tuple[StagedUpload, ...] = (),
    ) -> Master:
        """`adopted`: the pre-signed uploads the files came from, marked used in the same
        save."""
        code = isrc(isrc_code)
        taken = self._find(IsrcClaim, isrc_claim_id(code))
        if taken is not None:
            raise IsrcTaken(details={"isrc": code, "masterId": str(taken.master_id)})
        master = Master.register(
            artist_id=artist_id,
            registered_by=registered_by,
            title=title,
            isrc_code=code,
            audio=audio,
            cover=cover,
            metadata=metadata,
        )
        claim = IsrcClaim(code=code, master_id=master.id)
        for staged in adopted:
            staged.adopt(master_id=str(master.id))
        try:
            self.save(master, claim, *adopted)
        except IntegrityError:  # registered meanwhile
            raise IsrcTaken(details={"isrc": code}) from None
        return master

    def issue_upload(
        self, *, upload_key: str, owner_id: str, expect: str, expires_at: datetime
    ) -> StagedUpload:
        staged = StagedUpload.issue(
            upload_key=upload_key, owner_id=owner_id, expect=expect, expires_at=expires_at
        )
        self.save(staged)
        return staged

    def staged_upload(self, upload_key: str, *, owner_id: str, expect: str) -> StagedUpload:
        """The caller's pre-signed upload of that kind, not used yet (else 404: another's
        upload is no business of theirs)."""
        found = self._find(StagedUpload, staged_upload_id(upload_key))
        if found is None or found.owner_id != owner_id or found.adopted or found.expect != expect:
            raise NotFound("No upload of yours under this key", details={"uploadKey": upload_key})
        return found

    def master_of_isrc(self, code: str) -> UUID | None:
        """The master registered under an ISRC, if any (a malformed one: none)."""
        try:
            claim = self._find(IsrcClaim, isrc_claim_id(isrc(code)))
        except ValidationFailed:
            return None
        return None if claim is None else claim.master_id

    def master(self, master_id: UUID) -> Master:
        found = self._find(Master, master_id)
        if found is None:
            raise MasterNotFound(details={"masterId": str(master_id)})
        return found

    def decide_lock_creative_state(
        self, master_id: UUID, *, session_id: str, at: datetime
    ) -> Master | None:
        """The master with its creative state locked by a V Studio session, unsaved; None
        for a master nft does not know."""
        master = self._find(Master, master_id)
        if master is not None:
            master.lock_creative_state(session_id=session_id, at=at)
        return master

    # -- IPOs ------------------------------------------------------------------------------

    def configure_ipo(
        self,
        *,
        master_id: UUID,
        actor_id: str,
        actor_is_admin: bool,
        now: datetime,
        **terms: Any,
    ) -> Ipo:
        master = self.master(master_id)
        if actor_id != master.artist_id and not actor_is_admin:
            raise Forbidden(
                "Only the master's artist or an admin configures its IPO",
                details={"masterId": str(master_id)},
            )
        ipo_id = ipo_id_of(master_id)
        if self._find(Ipo, ipo_id) is not None:
            raise IpoExists(details={"masterId": str(master_id), "ipoId": str(ipo_id)})
        ipo = Ipo.configure(
            ipo_id=ipo_id,
            master_id=master_id,
            artist_id=master.artist_id,
            configured_by=actor_id,
            title=master.title,
            now=now,
            **terms,
        )
        try:
            self.save(ipo)
        except IntegrityError:
            raise IpoExists(details={"masterId": str(master_id), "ipoId": str(ipo_id)}) from None
        return ipo

    def ipo(self, ipo_id: UUID) -> Ipo:
        found = self._find(Ipo, ipo_id)
        if found is None:
            raise IpoNotFound(details={"ipoId": str(ipo_id)})
        return found

    def ipo_of_master(self, master_id: UUID) -> Ipo:
        self.master(master_id)
        found = self._find(Ipo, ipo_id_of(master_id))
        if found is None:
            raise IpoNotFound("This master has no IPO", details={"masterId": str(master_id)})
        return found

    def launch_ipo(self, ipo_id: UUID, now: datetime) -> Ipo:
        ipo = self.ipo(ipo_id)
        ipo.launch(now)
        self.save(ipo)
        return ipo

    def close_ipo_if_due(self, ipo_id: UUID, now: datetime) -> bool:
        ipo = self.ipo(ipo_id)
        if ipo.close_if_due(now):
            self.save(ipo)
            return True
        return False

    def cancel_ipo(
        self, ipo_id: UUID, *, actor_id: str, actor_is_admin: bool, now: datetime
    ) -> Ipo:
        ipo = self.ipo(ipo_id)
        if actor_id != ipo.artist_id and not actor_is_admin:
            raise Forbidden(
                "Only the master's artist or an admin cancels its IPO",
                details={"ipoId": str(ipo_id)},
            )
        ipo.cancel(now)
        self.save(ipo)
        return ipo

    # -- purchases -------------------------------------------------------------------------

    def decide_reserve(
        self,
        ipo_id: UUID,
        *,
        reservation_id: str,
        account_id: str,
        quantity: Any,
        method: str,
        now: datetime,
    ) -> Ipo:
        ipo = self.ipo(ipo_id)
        ipo.reserve(
            reservation_id=reservation_id,
            account_id=account_id,
            quantity=quantity,
            method=method,
            now=now,
        )
        return ipo

    def reserve(self, ipo_id: UUID, **kwargs: Any) -> dict[str, Any]:
        ipo = self.decide_reserve(ipo_id, **kwargs)
        self.save(ipo)
        return ipo.reservations[kwargs["reservation_id"]]

    def decide_payment(
        self, ipo_id: UUID, *, reservation_id: str, payment: str, paid_at: datetime
    ) -> tuple[Ipo, str]:
        ipo = self.ipo(ipo_id)
        outcome = ipo.record_payment(
            reservation_id=reservation_id, payment=payment, paid_at=paid_at
        )
        return ipo, outcome

    def record_payment(
        self, ipo_id: UUID, *, reservation_id: str, payment: str, paid_at: datetime
    ) -> str:
        ipo, outcome = self.decide_payment(
            ipo_id, reservation_id=reservation_id, payment=payment, paid_at=paid_at
        )
        self.save(ipo)
        return outcome

    def record_chain_payment(
        self,
        ipo_id: UUID,
        *,
        reservation_id: str,
        account_id: str,
        tx_hash: str,
        now: datetime,
    ) -> str:
        """A checked on-chain payment of the buyer's reservation, recorded with the claim on
        its hash (one transaction, one purchase). The same payment again is a duplicate; a
        payment after the reservation ended is recorded as needing a refund."""
        ipo = self.ipo(ipo_id)
        r = ipo.reservations.get(reservation_id)
        if r is None or r["account_id"] != account_id:
            raise ReservationNotFound(details={"purchaseId": reservation_id})
        if r["method"] != "chain":
            raise NotAChainPurchase(details={"purchaseId": reservation_id})
        claim_id = tx_hash_claim_id(tx_hash)
        claimed = self._find(TxHashClaim, claim_id)
        if claimed is not None:
            if claimed.reservation_id == reservation_id:
                return PaymentOutcome.DUPLICATE
            raise TxHashUsed(details={"txHash": tx_hash})
        outcome = ipo.record_payment(reservation_id=reservation_id, payment=tx_hash, paid_at=now)
        claim = TxHashClaim.claim(
            tx_hash=tx_hash, ipo_id=ipo_id, reservation_id=reservation_id, at=now
        )
        try:
            self.save(ipo, claim)
        except IntegrityError:
            raced = self._find(TxHashClaim, claim_id)
            if raced is not None and raced.reservation_id != reservation_id:
                raise TxHashUsed(details={"txHash": tx_hash}) from None
            raise
        return outcome

    def release_expired(self, ipo_id: UUID, *, method: str, now: datetime) -> list[str]:
        """Pending reservations of `method` past their expiry, released (their shares back
        in the pool): the IPO clock's chore for on-chain ones (payment expires card orders)."""
        ipo = self.ipo(ipo_id)
        expired = ipo.expired_reservations(now, method=method)
        for reservation_id in expired:
            ipo.release(reservation_id=reservation_id, reason="expired", now=now)
        if expired:
            self.save(ipo)
        return expired

    def decide_release(
        self, ipo_id: UUID, *, reservation_id: str, reason: str, now: datetime
    ) -> tuple[Ipo, bool]:
        ipo = self.ipo(ipo_id)
        return ipo, ipo.release(reservation_id=reservation_id, reason=reason, now=now)

    def release_reservation(
        self, ipo_id: UUID, *, reservation_id: str, reason: str, now: datetime
    ) -> bool:
        ipo, released = self.decide_release(
            ipo_id, reservation_id=reservation_id, reason=reason, now=now
        )
        if released:
            self.save(ipo)
        return released

    def record_mint(
        self, ipo_id: UUID, *, reservation_id: str, tx_hash: str, to: str, custody: bool
    ) -> bool:
        ipo = self.ipo(ipo_id)
        recorded = ipo.record_mint(
            reservation_id=reservation_id, tx_hash=tx_hash, to=to, custody=custody
        )
        if recorded:
            self.save(ipo)
        return recorded

    def record_mint_failure(self, ipo_id: UUID, *, reservation_id: str, error: str) -> None:
        ipo = self.ipo(ipo_id)
        ipo.record_mint_failure(reservation_id=reservation_id, error=error)
        self.save(ipo)

    # -- wallets -----------------------------------------------------------------------------

    def decide_link_wallet(self, account_id: str, address: str, *, at: datetime) -> AccountWallets:
        """The account's wallets with `address` recorded, unsaved: no pending events when it
        is the newest already, or not an EVM address."""
        wallets = self._find(AccountWallets, wallets_id_of(account_id))
        fresh = wallets is None
        if wallets is None:
            wallets = AccountWallets.start(account_id)
        if not wallets.link(address, at=at) and fresh:
            wallets.collect_events()  # an account with no EVM wallet: nothing to record
        return wallets

    def link_wallet(self, account_id: str, address: str, *, at: datetime) -> bool:
        """Record an account's EVM wallet (from auth's events); False when nothing changed."""
        wallets = self.decide_link_wallet(account_id, address, at=at)
        if not wallets.pending_events:
            return False
        self.save(wallets)
        return True

    def wallet_of(self, account_id: str) -> str | None:
        wallets = self._find(AccountWallets, wallets_id_of(account_id))
        return None if wallets is None else wallets.current

    def wallets_of(self, account_id: str) -> list[str]:
        """Every EVM wallet the account linked (checksummed, oldest first): its shares on
        chain are those these hold."""
        wallets = self._find(AccountWallets, wallets_id_of(account_id))
        return [] if wallets is None else list(wallets.addresses)

    # -- minting -----------------------------------------------------------------------------

    def mint(self, mint_id: UUID) -> Mint:
        found = self._find(Mint, mint_id)
        if found is None:
            raise MintNotFound(details={"mintId": str(mint_id)})
        return found

    def request_mint(
        self, ipo_id: UUID, reservation_id: str, *, custody_address: str, now: datetime
    ) -> Mint:
        """The paid allocation's mint: requested on first call (to the buyer's wallet, or to
        custody), the same mint after."""
        mint_id = mint_id_of(reservation_id)
        found = self._find(Mint, mint_id)
        if found is not None:
            return found
        ipo = self.ipo(ipo_id)
        r = ipo.reservation(reservation_id)
        if r["state"] != PAID:
            raise IpoStateConflict("Only paid shares are minted", details={"state": r["state"]})
        wallet = self.wallet_of(r["account_id"])
        mint = Mint.request(
            reservation_id=reservation_id,
            ipo_id=ipo_id,
            master_id=ipo.master_id,
            account_id=r["account_id"],
            quantity=r["quantity"],
            to=wallet or custody_address,
            custody=wallet is None,
            at=now,
        )
        try:
            self.save(mint)
        except IntegrityError:  # requested meanwhile
            return self.mint(mint_id)
        return mint

    def sign_mint(
        self, mint_id: UUID, *, tx_hash: str, raw_tx: str, nonce: int, now: datetime
    ) -> Mint:
        mint = self.mint(mint_id)
        mint.sign(tx_hash=tx_hash, raw_tx=raw_tx, nonce=nonce, at=now)
        self.save(mint)
        return mint

    def confirm_mint(
        self, mint_id: UUID, *, tx_hash: str, block_number: int, now: datetime
    ) -> Mint:
        """Mined: a mint and its IPO allocation record it together (and, minted to custody,
        the buyer's custody book); a withdrawal and the custody book it settles."""
        mint = self.mint(mint_id)
        if not mint.confirm(tx_hash=tx_hash, block_number=block_number, at=now):
            return mint
        book = self._custody_book(mint.account_id, mint.master_id)
        if isinstance(mint, Withdrawal):
            book.settle(amount=mint.quantity, withdrawal_id=mint.id)
            self.save(mint, book)
            return mint
        ipo = self.ipo(mint.ipo_id)
        ipo.record_mint(
            reservation_id=mint.reservation_id, tx_hash=tx_hash, to=mint.to, custody=mint.custody
        )
        if mint.custody:
            book.credit(amount=mint.quantity, reason=mint.reservation_id)
            self.save(mint, ipo, book)
        else:
            self.save(mint, ipo)
        return mint

    def fail_mint(self, mint_id: UUID, *, error: dict[str, Any], now: datetime) -> Mint:
        mint = self.mint(mint_id)
        mint.fail(error=error, at=now)
        if not mint.pending_events:
            return mint
        if isinstance(mint, Withdrawal):  # the shares stay in custody, withdrawable again
            book = self._custody_book(mint.account_id, mint.master_id)
            book.release(amount=mint.quantity, withdrawal_id=mint.id)
            self.save(mint, book)
            return mint
        ipo = self.ipo(mint.ipo_id)
        ipo.record_mint_failure(
            reservation_id=mint.reservation_id, error=str(mint.error and mint.error["message"])
        )
        self.save(mint, ipo)
        return mint

    # -- custody -----------------------------------------------------------------------------

    def custody_of(self, account_id: str, master_id: UUID) -> CustodyBook | None:
        return self._find(CustodyBook, custody_book_id(account_id, master_id))

    def request_withdrawal(
        self,
        *,
        withdrawal_id: UUID,
        account_id: str,
        master_id: UUID,
        quantity: Any,
        custody_address: str,
        now: datetime,
    ) -> Withdrawal:
        """Shares held in custody for the account, to move to its newest linked wallet; the
        same id again is the same withdrawal (a retried request)."""
        found = self._find(Withdrawal, withdrawal_id)
        if found is not None:
            return found
        amount = whole_number(quantity, field="quantity", minimum=1, maximum=10_000_000)
        self.master(master_id)
        wallet = self.wallet_of(account_id)
        if wallet is None:
            raise NoWalletLinked()
        book = self.custody_of(account_id, master_id)
        if book is None:
            raise NothingToWithdraw(details={"available": 0, "requested": amount})
        withdrawal = Withdrawal.ask(
            withdrawal_id=withdrawal_id,
            account_id=account_id,
            master_id=master_id,
            quantity=amount,
            to=wallet,
            from_address=custody_address,
            at=now,
        )
        book.reserve(amount, withdrawal.id)
        self.save(withdrawal, book)
        return withdrawal

    def _custody_book(self, account_id: str, master_id: UUID) -> CustodyBook:
        return self.custody_of(account_id, master_id) or CustodyBook.open(account_id, master_id)

    def drop_mint(self, mint_id: UUID, *, now: datetime) -> Mint:
        mint = self.mint(mint_id)
        mint.drop(at=now)
        self.save(mint)
        return mint

    def check_master_operator(
        self, master_id: UUID, *, actor_id: str, actor_is_admin: bool
    ) -> None:
        """Only the master's artist or an admin sees and drives its minting."""
        master = self.master(master_id)
        if actor_id != master.artist_id and not actor_is_admin:
            raise Forbidden(
                "Only the master's artist or an admin may do this",
                details={"masterId": str(master_id)},
            )

    def redrive_mints(
        self, master_id: UUID, *, by: str, by_admin: bool = False, now: datetime
    ) -> list[Mint]:
        """Every paid allocation of the master's IPO not minted yet, failed ones tried again:
        each with its status (and the chain's error while it stays failed)."""
        self.check_master_operator(master_id, actor_id=by, actor_is_admin=by_admin)
        ipo = self.ipo_of_master(master_id)
        mints: list[Mint] = []
        changed: list[Mint] = []
        for reservation_id in ipo.unminted():
            mint = self._find(Mint, mint_id_of(reservation_id))
            if mint is None:
                continue  # not requested yet: the minter takes it on its own
            if mint.redrive(by=by, at=now):
                changed.append(mint)
            mints.append(mint)
        if changed:
            self.save(*changed)
        return mints

    # -- distributions -----------------------------------------------------------------------

    def declare_distribution(
        self,
        master_id: UUID,
        *,
        collection: str,
        month: Any,
        total_revenue: Any,
        bps: Any,
        sources: Any,
        actor_id: str,
        actor_is_admin: bool,
        now: datetime,
    ) -> Distribution:
        """A month's revenue of a collection, to distribute (its artist's or an admin's;
        the Revenue Pass: an admin's, checked by the route)."""
        self.check_master_operator(master_id, actor_id=actor_id, actor_is_admin=actor_is_admin)
        master = self.master(master_id)
        checked_month = month_of(month)
        if self._find(Distribution, distribution_id_of(master_id, checked_month)) is not None:
            raise DistributionExists(details={"month": checked_month, "masterId": str(master_id)})
        distribution = Distribution.declare(
            master_id=master_id,
            collection=collection,
            title=master.title,
            month=checked_month,
            total_revenue=total_revenue,
            bps=bps,
            sources=sources,
            declared_by=actor_id,
            at=now,
        )
        try:
            self.save(distribution)
        except IntegrityError:
            raise DistributionExists(
                details={"month": checked_month, "masterId": str(master_id)}
            ) from None
        return distribution

    def distribution(self, distribution_id: UUID) -> Distribution:
        found = self._find(Distribution, distribution_id)
        if found is None:
            raise DistributionNotFound(details={"distributionId": str(distribution_id)})
        return found

    def snapshot_distribution(
        self,
        distribution_id: UUID,
        *,
        block: int,
        wallets: dict[str, int],
        custody: dict[str, int],
        now: datetime,
    ) -> Distribution:
        d = self.distribution(distribution_id)
        d.snapshot(block=block, wallets=wallets, custody=custody, at=now)
        self.save(d)
        return d

    def fund_distribution(
        self,
        distribution_id: UUID,
        *,
        chain_distribution_id: int | None,
        tx_hash: str | None,
        expires_at: datetime,
        now: datetime,
        owners: dict[str, str] | None = None,
    ) -> Distribution:
        d = self.distribution(distribution_id)
        if not d.fund(
            chain_distribution_id=chain_distribution_id,
            tx_hash=tx_hash,
            expires_at=expires_at,
            at=now,
            owners=owners,
        ):
            return d
        if chain_distribution_id is None:
            self.save(d)
        else:  # the on-chain id recorded once: by this distribution only
            self.save(d, ChainDistributionRef.record(chain_distribution_id, d.id))
        return d

    def sweep_distribution(
        self, distribution_id: UUID, *, amount: int, tx_hash: str | None, now: datetime
    ) -> Distribution:
        d = self.distribution(distribution_id)
        if d.sweep(amount=amount, tx_hash=tx_hash, at=now):
            self.save(d)
        return d

    def distribution_of_chain(self, chain_distribution_id: int) -> Distribution | None:
        ref = self._find(ChainDistributionRef, chain_ref_id(chain_distribution_id))
        return None if ref is None else self.distribution(ref.distribution_id)
