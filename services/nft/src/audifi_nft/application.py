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

from audifi_kit.errors import Forbidden
from audifi_kit.eventstore import ServiceApplication
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from audifi_nft.domain.ipo import Ipo, IpoExists, IpoNotFound
from audifi_nft.domain.master import (
    IsrcClaim,
    IsrcTaken,
    Master,
    MasterNotFound,
    MediaRef,
    isrc,
    isrc_claim_id,
)

IPO_NAMESPACE = uuid.UUID("0b7f5a52-3d0e-4c0a-b2b1-5f8e2a9c4d17")


def ipo_id_of(master_id: UUID) -> UUID:
    """A master's one IPO."""
    return uuid.uuid5(IPO_NAMESPACE, str(master_id))


class NftApplication(ServiceApplication):
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
    ) -> Master:
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
        try:
            self.save(master, claim)
        except IntegrityError:  # registered meanwhile
            raise IsrcTaken(details={"isrc": code}) from None
        return master

    def master(self, master_id: UUID) -> Master:
        found = self._find(Master, master_id)
        if found is None:
            raise MasterNotFound(details={"masterId": str(master_id)})
        return found

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

    # -- helpers ---------------------------------------------------------------------------

    def _find(self, kind: type[Any], aggregate_id: UUID) -> Any:
        try:
            found = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, kind) else None
