"""Coda projects' escrow as fans, the artist and payment's ledger see it.

Fans pay their investments by card through payment's orders (the fake Stripe in memory):
the whole amount lands in the project's escrow. nft's project events, each handed to the real
`payment.projects` consumer as the kit's inbox worker hands it, then hold each milestone's
payout for the artist once the goal is reached, post a hold on each approval, void the rest
and refund the funders on a cancellation, and pay funders' claims of revenue; a redelivered
or republished event books nothing twice, and the ledger verifies after each story.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from audifi_events import encode
from audifi_events.nft import (
    InvestmentRefund,
    MilestoneApproved,
    ProjectCancelled,
    ProjectGoalReached,
    ProjectPayoutClaimed,
)
from audifi_events.registry import IntegrationEvent
from audifi_kit.eventstore import DirectCalls
from audifi_kit.inbox import HandlerContext
from audifi_kit.messages import Message
from audifi_payment.bootstrap import InMemoryPayments, in_memory_payments
from audifi_payment.consumers import projects_consumer
from audifi_payment.domain.accounts import project_escrow, user_available
from audifi_payment.domain.escrow import milestone_hold_id
from audifi_payment.domain.ledger import TransactionStatus
from audifi_payment.domain.order import Product
from audifi_payment.ledger_verify import verify_application

ARTIST = str(uuid.uuid4())
FANS = [str(uuid.uuid4()) for _ in range(3)]
NOW = datetime.now(UTC)


class Story:
    def __init__(self) -> None:
        self.p: InMemoryPayments = in_memory_payments()
        self.app = self.p.app
        self.consumer = projects_consumer()
        self.project_id = str(uuid.uuid4())
        self.investments: dict[str, tuple[str, int]] = {}

    async def invest(self, fan: str, amount: int) -> str:
        """An investment's order, opened as nft asks and paid by card."""
        order = self.app.open_order(
            uuid.uuid4(),
            Product("nft", "project_funding", self.project_id),
            title="Funding \u201cSecond Album\u201d",
            quantity=1,
            unit_amount=amount,
            currency="USD",
            buyer_id=fan,
            seller_id=ARTIST,
            expires_at=NOW + timedelta(minutes=15),
            at=NOW,
        )
        session = await self.p.payments.checkout_order(fan, order.id)
        for event in self.p.stripe.pay(session.id):
            await self.p.payments.handle_event(event)
        self.investments[str(order.id)] = (fan, amount)
        return str(order.id)

    async def nft_says(self, event: IntegrationEvent, message_id: str | None = None) -> None:
        kind = type(event)
        message = Message(
            message_id or str(uuid.uuid4()), kind.routing_key, encode(event), schema_version=1
        )
        route = self.consumer.route(message.routing_key)
        assert route is not None, f"payment does not consume {message.routing_key}"
        decoded = self.consumer.registry.decode(message.routing_key, 1, message.body)
        ctx = HandlerContext(self.consumer.name, message, store=DirectCalls(self.app))
        await route.handler(decoded, ctx)

    def escrow(self):  # the escrow's balance
        return self.app.guarded_balance(project_escrow(self.project_id), "USD")

    def available(self, account_id: str) -> int:
        return self.app.guarded_balance(user_available(account_id), "USD").available

    def goal_reached(self, payouts: list[int]) -> ProjectGoalReached:
        return ProjectGoalReached(
            project_id=self.project_id,
            artist_id=ARTIST,
            title="Second Album",
            raised=sum(payouts),
            currency="USD",
            funders=FANS,
            milestone_payouts=payouts,
            reached_at=NOW,
        )

    def approved(self, sequence: int, amount: int) -> MilestoneApproved:
        return MilestoneApproved(
            project_id=self.project_id,
            milestone_id=f"{self.project_id}.{sequence}",
            sequence=sequence,
            artist_id=ARTIST,
            title="Second Album",
            name=f"Milestone {sequence}",
            amount=amount,
            currency="USD",
            funders=FANS,
            approved_at=NOW,
        )

    def cancelled(self, refunds: dict[str, int], remainder: int) -> ProjectCancelled:
        return ProjectCancelled(
            project_id=self.project_id,
            artist_id=ARTIST,
            title="Second Album",
            reason="Recording was abandoned",
            currency="USD",
            refunds=[
                InvestmentRefund(investment_id=i, account_id=self.investments[i][0], amount=a)
                for i, a in refunds.items()
            ],
            remainder=remainder,
            cancelled_at=NOW,
        )

    def verified(self) -> None:
        report = verify_application(self.app)
        assert report.ok, report.problems


async def test_funding_is_escrowed_whole_and_milestones_reach_the_artist_only_when_approved() -> (
    None
):
    story = Story()
    for fan, amount in zip(FANS, (3_000, 5_000, 2_000), strict=True):
        await story.invest(fan, amount)
    # Whole amounts in escrow: Stripe's fee is the platform's, so a refund can be whole.
    assert (story.escrow().credits_posted, story.escrow().available) == (10_000, 10_000)

    await story.nft_says(story.goal_reached([4_000, 6_000]), "goal")
    await story.nft_says(story.goal_reached([4_000, 6_000]), "goal-again")  # republished
    escrow = story.escrow()
    assert (escrow.debits_pending, escrow.available) == (10_000, 0)  # all of it held
    assert story.available(ARTIST) == 0  # a hold is not the artist's to spend yet

    await story.nft_says(story.approved(1, 4_000), "m1")
    await story.nft_says(story.approved(1, 4_000), "m1-redelivered")
    assert story.available(ARTIST) == 3_800  # 4,000 less the platform's 5%
    hold = story.app.ledger_transaction(milestone_hold_id(story.project_id, 2))
    assert hold.status == TransactionStatus.PENDING
    await story.nft_says(story.approved(2, 6_000), "m2")
    assert story.available(ARTIST) == 3_800 + 5_700
    escrow = story.escrow()
    assert (escrow.debits_posted, escrow.debits_pending, escrow.available) == (10_000, 0, 0)
    story.verified()

    # Released: funders claim their share of the revenue, each claim paid once.
    claim = ProjectPayoutClaimed(
        project_id=story.project_id,
        investment_id=next(iter(story.investments)),
        account_id=FANS[0],
        amount=3_000,
        claimed_total=3_000,
        currency="USD",
        claimed_at=NOW,
    )
    await story.nft_says(claim, "claim-1")
    await story.nft_says(claim, "claim-1-republished")
    assert story.available(FANS[0]) == 3_000
    story.verified()


async def test_a_cancelled_project_voids_its_holds_and_refunds_the_unreleased_rest() -> None:
    story = Story()
    ids = [
        await story.invest(fan, amount)
        for fan, amount in zip(FANS, (3_333, 3_333, 3_334), strict=True)
    ]
    await story.nft_says(story.goal_reached([1_000, 9_000]))
    await story.nft_says(story.approved(1, 1_000))
    # nft's decision: each investment gets amount * 9,000 // 10,000; the rounding is the
    # platform's.
    refunds = {i: story.investments[i][1] * 9_000 // 10_000 for i in ids}
    remainder = 9_000 - sum(refunds.values())
    assert (list(refunds.values()), remainder) == ([2_999, 2_999, 3_000], 2)
    cancelled = story.cancelled(refunds, remainder)
    await story.nft_says(cancelled, "cancel")
    await story.nft_says(cancelled, "cancel-redelivered")

    hold = story.app.ledger_transaction(milestone_hold_id(story.project_id, 2))
    assert hold.status == TransactionStatus.VOIDED
    escrow = story.escrow()
    assert (escrow.debits_pending, escrow.available) == (0, 0)  # emptied, never below
    assert [story.available(fan) for fan in FANS] == [2_999, 2_999, 3_000]
    assert story.available(ARTIST) == 950  # what was released before stays released
    story.verified()


async def test_a_project_that_missed_its_deadline_refunds_every_funder_in_full() -> None:
    story = Story()
    ids = [await story.invest(fan, 2_500) for fan in FANS[:2]]
    await story.nft_says(story.cancelled({i: 2_500 for i in ids}, 0))
    assert [story.available(fan) for fan in FANS[:2]] == [2_500, 2_500]
    assert story.escrow().available == 0
    story.verified()
