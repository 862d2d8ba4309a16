"""Coda Collective's commands: projects funded by fans, milestones, refunds and payouts.

One method per command, as the rest of the application; `decide_*` variants return the
changed project unsaved, for group commit (a popular project's investments). Who may do what
is decided here, from the caller's identity: the project's artist creates, submits proofs and
finalizes; admins approve, reject, cancel and book revenue (an admin may also act for the
artist); a funder reads and claims their own investments.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from audifi_kit.errors import Forbidden

from audifi_nft.domain.project import (
    ChainProjectRef,
    Project,
    ProjectExists,
    ProjectNotFound,
    chain_project_ref_id,
)


class ProjectCommands:
    """Mixed into NftApplication (which provides `save` and `_find`)."""

    save: Any
    _find: Any

    def create_project(
        self,
        *,
        project_id: UUID,
        artist_id: str,
        actor_id: str,
        actor_is_admin: bool,
        now: datetime,
        **terms: Any,
    ) -> Project:
        """A project of `artist_id` (the caller, or any artist when an admin creates it);
        creating the same id again answers the project it made (a retried request)."""
        if artist_id != actor_id and not actor_is_admin:
            raise Forbidden("Artists create their own projects")
        existing = self._find(Project, project_id)
        if existing is not None:
            if existing.artist_id != artist_id:
                raise ProjectExists(details={"projectId": str(project_id)})
            return existing
        project = Project.create(
            project_id=project_id, artist_id=artist_id, created_by=actor_id, now=now, **terms
        )
        self.save(project)
        return project

    def project(self, project_id: UUID) -> Project:
        found = self._find(Project, project_id)
        if found is None:
            raise ProjectNotFound(details={"projectId": str(project_id)})
        return found

    # -- funding ---------------------------------------------------------------------------

    def decide_invest(
        self,
        project_id: UUID,
        *,
        investment_id: str,
        account_id: str,
        amount: Any,
        method: str,
        now: datetime,
    ) -> Project:
        project = self.project(project_id)
        project.reserve(
            investment_id=investment_id,
            account_id=account_id,
            amount=amount,
            method=method,
            now=now,
        )
        return project

    def invest(self, project_id: UUID, **kwargs: Any) -> dict[str, Any]:
        project = self.decide_invest(project_id, **kwargs)
        self.save(project)
        return project.investments[kwargs["investment_id"]]

    def decide_investment_payment(
        self, project_id: UUID, *, investment_id: str, payment: str, paid_at: datetime
    ) -> tuple[Project, str]:
        project = self.project(project_id)
        outcome = project.record_payment(
            investment_id=investment_id, payment=payment, paid_at=paid_at
        )
        return project, outcome

    def record_investment_payment(
        self, project_id: UUID, *, investment_id: str, payment: str, paid_at: datetime
    ) -> str:
        project, outcome = self.decide_investment_payment(
            project_id, investment_id=investment_id, payment=payment, paid_at=paid_at
        )
        self.save(project)
        return outcome

    def decide_lapse(
        self, project_id: UUID, *, investment_id: str, reason: str, now: datetime
    ) -> tuple[Project, bool]:
        project = self.project(project_id)
        return project, project.lapse(investment_id=investment_id, reason=reason, now=now)

    def lapse_investment(
        self, project_id: UUID, *, investment_id: str, reason: str, now: datetime
    ) -> bool:
        project, lapsed = self.decide_lapse(
            project_id, investment_id=investment_id, reason=reason, now=now
        )
        self.save(project)
        return lapsed

    def end_project_if_due(self, project_id: UUID, *, now: datetime) -> bool:
        project = self.project(project_id)
        ended = project.end_if_due(now)
        self.save(project)
        return ended

    def cancel_project(
        self, project_id: UUID, *, reason: str, actor_id: str, actor_is_admin: bool, now: datetime
    ) -> Project:
        if not actor_is_admin:
            raise Forbidden("Only an admin cancels a project")
        project = self.project(project_id)
        project.cancel(reason=reason, by=actor_id, now=now)
        self.save(project)
        return project

    # -- milestones ------------------------------------------------------------------------

    def submit_milestone_proof(
        self,
        project_id: UUID,
        *,
        index: int,
        proof: dict[str, Any],
        actor_id: str,
        actor_is_admin: bool,
        now: datetime,
    ) -> Project:
        project = self.project(project_id)
        self._require_artist(project, actor_id, actor_is_admin, "submits proofs")
        project.milestone(index)
        project.submit_proof(index=index, proof=proof, now=now)
        self.save(project)
        return project

    def approve_milestone(
        self, project_id: UUID, *, index: int, actor_id: str, actor_is_admin: bool, now: datetime
    ) -> Project:
        if not actor_is_admin:
            raise Forbidden("Only an admin approves a milestone")
        project = self.project(project_id)
        project.approve(index=index, by=actor_id, now=now)
        self.save(project)
        return project

    def reject_milestone(
        self,
        project_id: UUID,
        *,
        index: int,
        reason: str,
        actor_id: str,
        actor_is_admin: bool,
        now: datetime,
    ) -> Project:
        if not actor_is_admin:
            raise Forbidden("Only an admin rejects a milestone")
        project = self.project(project_id)
        project.reject(index=index, reason=reason, by=actor_id, now=now)
        self.save(project)
        return project

    # -- release and revenue ---------------------------------------------------------------

    def finalize_project(
        self, project_id: UUID, *, actor_id: str, actor_is_admin: bool, now: datetime
    ) -> Project:
        project = self.project(project_id)
        self._require_artist(project, actor_id, actor_is_admin, "finalizes it")
        project.finalize(by=actor_id, now=now)
        self.save(project)
        return project

    def book_project_revenue(
        self,
        project_id: UUID,
        *,
        booking_id: str,
        amount: Any,
        actor_id: str,
        actor_is_admin: bool,
        now: datetime,
    ) -> Project:
        if not actor_is_admin:
            raise Forbidden("Only an admin books a project's revenue")
        project = self.project(project_id)
        project.book_revenue(booking_id=booking_id, amount=amount, by=actor_id, now=now)
        self.save(project)
        return project

    def claim_payout(
        self, project_id: UUID, *, investment_id: str, account_id: str, now: datetime
    ) -> int:
        project = self.project(project_id)
        amount = project.claim_payout(investment_id=investment_id, account_id=account_id, now=now)
        self.save(project)
        return amount

    # -- on chain (MilestoneEscrow) ----------------------------------------------------------

    def project_of_chain(self, chain_project_id: int) -> Project | None:
        """The project MilestoneEscrow's project `chain_project_id` is, if it is one of ours."""
        ref = self._find(ChainProjectRef, chain_project_ref_id(chain_project_id))
        return None if ref is None else self.project(ref.project_id)

    def record_escrow(
        self,
        project_id: UUID,
        *,
        chain_id: int,
        escrow: str,
        chain_project_id: int,
        tx_hash: str | None,
        now: datetime,
    ) -> Project:
        """The escrow project made for `project_id`, saved with its reference (a second
        project claiming the same escrow project fails on the reference's id)."""
        project = self.project(project_id)
        if project.record_escrow(
            chain_id=chain_id,
            escrow=escrow,
            chain_project_id=chain_project_id,
            tx_hash=tx_hash,
            now=now,
        ):
            self.save(project, ChainProjectRef.record(chain_project_id, project_id))
        return project

    def record_chain_release(
        self, project_id: UUID, *, index: int, tx_hash: str | None, now: datetime
    ) -> Project:
        project = self.project(project_id)
        project.record_chain_release(index=index, tx_hash=tx_hash, now=now)
        self.save(project)
        return project

    def record_chain_cancel(
        self, project_id: UUID, *, tx_hash: str | None, now: datetime
    ) -> Project:
        project = self.project(project_id)
        project.record_chain_cancel(tx_hash=tx_hash, now=now)
        self.save(project)
        return project

    def register_chain_funder(
        self, project_id: UUID, *, address: str, account_id: str, now: datetime
    ) -> Project:
        project = self.project(project_id)
        project.register_chain_funder(address=address, account_id=account_id, now=now)
        self.save(project)
        return project

    @staticmethod
    def _require_artist(project: Project, actor_id: str, actor_is_admin: bool, what: str) -> None:
        if actor_id != project.artist_id and not actor_is_admin:
            raise Forbidden(f"Only the project's artist {what}")
