"""Coda projects funded on chain: nft's operator keeps MilestoneEscrow in step with them.

A chain project (domain/project.py) says what the chain still lacks (`escrow_work`): its
escrow project created, its next approved milestone released, its cancellation. `Escrow.drive`
does that one step at a time and records it; each step first looks at the chain, so a step
that was sent and then lost before it was recorded (a crash, a timeout) is found there and
recorded, never sent twice: the escrow project created with these terms and not yet any of
ours (`EscrowChain.create`), the milestone already past (`nextMilestone`), the project
already cancelled. The contract refuses the rest of what would be wrong (a milestone out of
order, a second cancel), so a step is never done twice on chain.

What fans do on chain (fund, take their refunds) comes back through nft's reorg-safe
indexer (`EscrowIndexHandler` in holdings.py): the chain, not a request, says what was paid.

`EscrowFollower` follows the `projects` read model (woken when it moves) and drives every
chain project with work, one at a time (one signer, one nonce sequence); replicas stand by
behind an advisory lock.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

import asyncpg
from audifi_kit.errors import BlockchainError
from audifi_kit.eventstore import EventStore
from audifi_kit.follower import QueueFollower
from audifi_kit.projections import ProjectionRunner
from eventsourcing.persistence import IntegrityError

from audifi_nft.domain.project import CANCEL, CREATE, RELEASE, Project
from audifi_nft.ipos import Store
from audifi_nft.projections.projects import ESCROW_WORK

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EscrowCreated:
    chain_project_id: int
    tx_hash: str | None  # None: an earlier, unrecorded attempt had created it


@dataclass(frozen=True, slots=True)
class ChainTx:
    """An unsigned transaction for a user's wallet to sign and send."""

    to: str
    data: str
    value: int
    description: str


class EscrowChain(Protocol):
    """MilestoneEscrow on the platform's chain, operated by nft's account."""

    @property
    def chain_id(self) -> int: ...

    @property
    def escrow_address(self) -> str: ...

    @property
    def token_address(self) -> str: ...

    async def start(self) -> None: ...

    async def create(
        self,
        *,
        recipient: str,
        payouts: list[int],
        is_taken: Callable[[int], Awaitable[bool]],
    ) -> EscrowCreated: ...

    async def release(self, chain_project_id: int, index: int) -> str | None: ...

    async def cancel(self, chain_project_id: int) -> str | None: ...

    def funding_transactions(self, chain_project_id: int, amount: int) -> list[ChainTx]: ...


class Escrow:
    """Drives chain projects' escrow steps: the service layer, free of the loop that runs it."""

    def __init__(
        self,
        store: Store,
        chain: EscrowChain,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.chain = chain
        self.clock = clock

    async def drive(self, project_id: UUID) -> Project:
        """Every step the project's escrow lacks, in order, each recorded once done."""
        app = self.store.app
        project: Project = await self.store.call(app.project, project_id)
        while (work := project.escrow_work()) is not None:
            step, index = work
            if step == CREATE:
                project = await self._create(project)
            elif step == RELEASE:
                assert project.chain_project_id is not None and index is not None
                tx_hash = await self.chain.release(project.chain_project_id, index)
                project = await self._recorded(
                    app.record_chain_release, project_id, index=index, tx_hash=tx_hash
                )
            else:
                assert step == CANCEL and project.chain_project_id is not None
                tx_hash = await self.chain.cancel(project.chain_project_id)
                project = await self._recorded(app.record_chain_cancel, project_id, tx_hash=tx_hash)
        return project

    async def _create(self, project: Project) -> Project:
        assert project.chain_recipient is not None
        app = self.store.app

        async def is_taken(chain_project_id: int) -> bool:
            return await self.store.call(app.project_of_chain, chain_project_id) is not None

        created = await self.chain.create(
            recipient=project.chain_recipient,
            payouts=[m["payout_amount"] for m in project.milestones],
            is_taken=is_taken,
        )
        return await self._recorded(
            app.record_escrow,
            project.id,
            chain_id=self.chain.chain_id,
            escrow=self.chain.escrow_address,
            chain_project_id=created.chain_project_id,
            tx_hash=created.tx_hash,
        )

    async def _recorded(
        self, command: Callable[..., Project], *args: Any, **kwargs: Any
    ) -> Project:
        """A step's outcome recorded with the project, which funders and admins may be
        changing meanwhile: a lost race is recorded again at once on fresh state."""
        for _ in range(4):
            try:
                return await self.store.call(command, *args, now=self.clock(), **kwargs)
            except IntegrityError:
                continue
        return await self.store.call(command, *args, now=self.clock(), **kwargs)


class EscrowFollower(QueueFollower):
    """Follows the `projects` read model and drives each chain project with escrow work."""

    def __init__(
        self,
        escrow: Escrow,
        store: EventStore[Any],
        pool: asyncpg.Pool,
        projects: ProjectionRunner,
        *,
        batch: int = 50,
        poll_interval: float = 1.0,
    ) -> None:
        self.escrow = escrow
        super().__init__(
            "nft escrow",
            ESCROW_WORK,
            self._drive,
            store=store,
            pool=pool,
            runner=projects,
            batch=batch,
            poll_interval=poll_interval,
            # A node out of reach, or a project that kept changing: tried again shortly.
            expected_errors=(BlockchainError, IntegrityError),
            logger=log,
        )

    async def start(self) -> None:
        await self.escrow.chain.start()
        await super().start()

    async def _drive(self, row: asyncpg.Record) -> None:
        await self.escrow.drive(UUID(str(row["id"])))  # a plain UUID, not asyncpg's
