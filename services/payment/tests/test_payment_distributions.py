"""A custody holder's share of a revenue distribution, paid into their platform balance.

nft tells every account a funded distribution owes (`nft.distribution.claimable`); payment
pays the custody holders' shares into `user:<id>:available`, in whole cents, once per
distribution and account whatever the redeliveries, and leaves wallet holders to claim on
chain. Most of it in memory (payment's application on POPO persistence, each notice decoded
and routed by the real `payment.distributions` consumer); then once through the running
service: the bus, the inbox, the real database and what the holder reads over HTTP.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from audifi_events import encode
from audifi_events.nft import DistributionClaimable
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.eventstore import DirectCalls
from audifi_kit.inbox import HandlerContext
from audifi_kit.messages import Message
from audifi_kit.settings import Settings
from audifi_kit.testing import TokenSigner, drop_databases, eventually, served
from audifi_payment import bootstrap
from audifi_payment.app import create_app
from audifi_payment.config import PaymentSettings
from audifi_payment.consumers import distributions_consumer, distributions_purpose_beside
from audifi_payment.domain.accounts import PLATFORM_DISTRIBUTIONS, ZERO, user_available
from audifi_payment.domain.distributions import DistributionNotPayable, payout_id
from audifi_payment.domain.ledger import TransactionIdTaken
from audifi_payment.ledger_verify import verify_application
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import Litestar, get

MASTER = str(uuid.UUID(int=42))
EXPIRES = datetime(2027, 2, 1, tzinfo=UTC)


def claimable(
    distribution_id: str, account_id: str, amount: str, *, custody: bool = True, **overrides: Any
) -> DistributionClaimable:
    facts: dict[str, Any] = {
        "distribution_id": distribution_id,
        "account_id": account_id,
        "collection": "master",
        "master_id": MASTER,
        "title": "First Light",
        "month": "2026-01",
        "amount": amount,
        "decimals": 6,
        "currency": "USD",
        "wallet_address": None if custody else "0x" + "ab" * 20,
        "custody": custody,
        "claim_path": f"/api/v1/distributions/{distribution_id}",
        "expires_at": EXPIRES,
    }
    return DistributionClaimable(**(facts | overrides))


def _message(event: DistributionClaimable, message_id: str) -> Message:
    return Message(message_id, type(event).routing_key, encode(event), schema_version=1)


class Nft:
    """nft's relay, played in memory: each notice handed to payment's distributions consumer
    as the kit's inbox worker hands it (decoded from the wire by routing key)."""

    def __init__(self) -> None:
        self.app = bootstrap.in_memory()
        self.consumer = distributions_consumer()

    async def says(self, event: DistributionClaimable, message_id: str | None = None) -> None:
        message = _message(event, message_id or str(uuid.uuid4()))
        route = self.consumer.route(message.routing_key)
        assert route is not None, f"payment does not consume {message.routing_key}"
        decoded = self.consumer.registry.decode(message.routing_key, 1, message.body)
        ctx = HandlerContext(self.consumer.name, message, store=DirectCalls(self.app))
        await route.handler(decoded, ctx)

    def available(self, account_id: str) -> int:
        return self.app.guarded_balance(user_available(account_id), "USD").available

    def log_length(self) -> int:
        return len(self.app.recorder.select_notifications(start=1, limit=10_000))


async def test_a_custody_holder_is_paid_their_share_in_whole_cents_once() -> None:
    nft = Nft()
    holder, distribution = str(uuid.uuid4()), str(uuid.uuid4())
    owed = claimable(distribution, holder, "12345678")  # 12.345678 USD

    await nft.says(owed, "nft-1")
    await nft.says(owed, "nft-1")  # redelivered
    await nft.says(owed, "nft-2")  # republished by nft's relay

    assert nft.available(holder) == 1234  # 12.34 USD; the 0.005678 stays in the treasury
    txn = nft.app.ledger_transaction(payout_id(distribution, holder))
    legs = {(leg.account, str(leg.direction)): leg.amount for leg in txn.legs}
    assert legs == {
        (PLATFORM_DISTRIBUTIONS, "debit"): 1234,
        (user_available(holder), "credit"): 1234,
    }
    assert txn.terms.event_source == "distribution"
    assert txn.terms.reference_id == distribution
    assert txn.terms.reason is not None
    for fact in (distribution, "2026-01", MASTER):
        assert fact in txn.terms.reason
    report = verify_application(nft.app)
    assert report.ok, report.problems
    assert report.transactions == 1


async def test_each_holder_and_each_distribution_is_its_own_payment() -> None:
    nft = Nft()
    ada, bob = str(uuid.uuid4()), str(uuid.uuid4())
    january, february = str(uuid.uuid4()), str(uuid.uuid4())
    await nft.says(claimable(january, ada, "1000000"))
    await nft.says(claimable(january, bob, "2500000"))
    await nft.says(claimable(february, ada, "990000", month="2026-02"))
    assert (nft.available(ada), nft.available(bob)) == (199, 250)
    assert verify_application(nft.app).transactions == 3


async def test_a_wallet_holder_claims_on_chain_and_payment_books_nothing() -> None:
    nft = Nft()
    holder = str(uuid.uuid4())
    await nft.says(claimable(str(uuid.uuid4()), holder, "5000000", custody=False))
    # Whatever it is owed in: the claim is the chain's business, not payment's.
    await nft.says(claimable(str(uuid.uuid4()), holder, "5", custody=False, currency="EUR"))
    assert nft.log_length() == 0
    assert nft.app.guarded_balance(user_available(holder), "USD") == ZERO


async def test_a_share_worth_less_than_a_cent_books_nothing() -> None:
    nft = Nft()
    holder = str(uuid.uuid4())
    await nft.says(claimable(str(uuid.uuid4()), holder, "9999"))  # 0.009999 USD
    await nft.says(claimable(str(uuid.uuid4()), holder, "0"))
    await nft.says(claimable(str(uuid.uuid4()), holder, "99", decimals=4))
    assert nft.log_length() == 0


async def test_a_token_of_exactly_two_decimals_is_paid_unit_for_cent() -> None:
    nft = Nft()
    holder = str(uuid.uuid4())
    await nft.says(claimable(str(uuid.uuid4()), holder, "7", decimals=2))
    await nft.says(claimable(str(uuid.uuid4()), holder, "1" + "0" * 18, decimals=18))
    assert nft.available(holder) == 7 + 100


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"currency": "EUR"}, "currency"),
        ({"currency": "usd"}, "currency"),
        ({"decimals": 1}, "decimals"),
        ({"decimals": 0}, "decimals"),
        ({"amount": "-5000000"}, "amount"),
        ({"amount": "12.5"}, "amount"),
        ({"amount": ""}, "amount"),
    ],
)
async def test_a_share_payment_cannot_pay_as_told_is_refused_for_an_operator(
    overrides: dict[str, Any], field: str
) -> None:
    """Refused: the consumer raises, so the notice is retried, then parked."""
    nft = Nft()
    told = {"amount": "5000000"} | overrides
    owed = claimable(str(uuid.uuid4()), str(uuid.uuid4()), **told)
    with pytest.raises(DistributionNotPayable) as refused:
        await nft.says(owed)
    assert refused.value.code == "DISTRIBUTION_NOT_PAYABLE"
    assert refused.value.details["fields"][0]["field"] == field
    assert nft.log_length() == 0


async def test_another_share_told_for_a_paid_holder_and_distribution_is_refused() -> None:
    """nft owes one amount per account and distribution: a different one is an operator's."""
    nft = Nft()
    holder, distribution = str(uuid.uuid4()), str(uuid.uuid4())
    await nft.says(claimable(distribution, holder, "3000000"))
    with pytest.raises(TransactionIdTaken):
        await nft.says(claimable(distribution, holder, "4000000"))
    assert nft.available(holder) == 300


# --------------------------------------------------------------------------- the property

HOLDERS = [str(uuid.UUID(int=i)) for i in range(1, 5)]
DISTRIBUTIONS = [str(uuid.UUID(int=100 + i)) for i in range(4)]


@st.composite
def notices(draw: st.DrawFn) -> list[DistributionClaimable]:
    """What nft may say: each (distribution, holder) is owed one fixed amount, in a token of
    the distribution's decimals; notices come in any order, some of them repeated
    (redeliveries, republications), some for wallet holders."""
    decimals = {d: draw(st.integers(2, 18)) for d in DISTRIBUTIONS}
    owed = draw(
        st.dictionaries(
            st.tuples(st.sampled_from(DISTRIBUTIONS), st.sampled_from(HOLDERS)),
            st.tuples(st.integers(0, 10**9), st.booleans()),  # (whole cents, custody)
            min_size=1,
            max_size=12,
        )
    )
    facts = []
    for (distribution, holder), (cents, custody) in owed.items():
        per_cent = 10 ** (decimals[distribution] - 2)
        rest = draw(st.integers(0, per_cent - 1))
        facts.append(
            claimable(
                distribution,
                holder,
                str(cents * per_cent + rest),
                custody=custody,
                decimals=decimals[distribution],
            )
        )
    repeats = draw(st.lists(st.sampled_from(facts), max_size=12))
    return draw(st.permutations(facts + repeats))


@settings(max_examples=60, deadline=None)
@given(notices())
def test_balances_are_the_sum_of_each_distinct_share_in_whole_cents(
    said: list[DistributionClaimable],
) -> None:
    nft = Nft()

    async def deliver() -> None:
        for event in said:
            await nft.says(event)

    asyncio.run(deliver())

    expected: dict[str, int] = defaultdict(int)
    payouts = 0
    for e in {(e.distribution_id, e.account_id): e for e in said}.values():
        cents = int(e.amount) // 10 ** (e.decimals - 2)
        if e.custody and cents:
            expected[e.account_id] += cents
            payouts += 1
    for holder in HOLDERS:
        assert nft.available(holder) == expected[holder]
    report = verify_application(nft.app)
    assert report.ok, report.problems
    assert report.transactions == payouts
    paid = report.balances.get((PLATFORM_DISTRIBUTIONS, "USD"), ZERO)
    assert (paid.debits_posted, paid.credits_posted) == (sum(expected.values()), 0)


# ------------------------------------------------------------------- through the service

HOLDER = str(uuid.uuid4())


@dataclass
class Payment:
    url: str
    app: Litestar
    bus: InProcessBus
    signer: TokenSigner

    def headers(self, sub: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.signer.token(sub, roles=('fan',))}"}

    def runtime(self) -> Any:
        return self.app.state["runtime"]


@pytest.fixture
async def payment(postgres_url: str, tmp_path: Path) -> AsyncIterator[Payment]:
    signer = TokenSigner()

    @get("/.well-known/jwks.json", sync_to_thread=False)
    def jwks() -> dict[str, Any]:
        return signer.jwks()

    prefix = f"audifi_pd{uuid.uuid4().hex[:8]}_"
    async with served(Litestar([jwks])) as auth:
        settings = Settings(
            database_url=postgres_url,
            db_prefix=prefix,
            var_dir=tmp_path,
            poll_interval=0.2,
            jwks_url=f"{auth}/.well-known/jwks.json",
            pool_size=3,
        )
        # No Stripe call is made here: the SDK is pointed at nothing that answers.
        config = PaymentSettings(stripe_api_base="http://127.0.0.1:9", public_url=auth)
        bus = InProcessBus()
        app = create_app(settings, bus, config=config)
        try:
            async with served(app) as url:
                yield Payment(url, app, bus, signer)
        finally:
            await drop_databases(postgres_url, prefix)


def test_a_test_that_names_its_orders_queue_gets_its_own_distributions_queue() -> None:
    assert distributions_purpose_beside("orders") == "distributions"
    assert distributions_purpose_beside("orders-t1") == "distributions-t1"
    assert distributions_purpose_beside("mine") == "distributions-mine"


async def test_through_the_service_a_custody_holder_sees_their_share_once(
    payment: Payment,
) -> None:
    [worker] = [w for w in payment.runtime().workers if w.consumer.name.endswith("distributions")]
    distribution = str(uuid.uuid4())
    owed = claimable(distribution, HOLDER, "12345678")
    await payment.bus.publish([_message(owed, "nft-d1")])
    await payment.bus.publish([_message(owed, "nft-d1")])  # redelivered
    await payment.bus.publish([_message(owed, "nft-d2")])  # republished
    wallet = claimable(str(uuid.uuid4()), HOLDER, "5000000", custody=False)
    await payment.bus.publish([_message(wallet, "nft-w1")])

    await eventually(
        lambda: worker.handled + worker.duplicates == 4, within=20, what="4 deliveries"
    )
    assert (worker.handled, worker.duplicates, worker.parked) == (3, 1, 0)

    async with httpx.AsyncClient(base_url=payment.url) as c:
        mine = payment.headers(HOLDER)

        async def entries() -> list[dict[str, Any]]:
            return (await c.get("/ledger/entries", headers=mine)).json()["items"]

        [entry] = await eventually(entries, within=20, what="the holder's entry")
        assert (entry["type"], entry["amountCents"], entry["currency"]) == ("credit", 1234, "USD")
        assert (entry["eventSource"], entry["referenceId"]) == ("distribution", distribution)
        assert entry["transactionId"] == str(payout_id(distribution, HOLDER))
        balances = (await c.get("/balances/me", headers=mine)).json()["balances"]
        assert balances == [{"currency": "USD", "availableCents": 1234, "pendingCents": 0}]

    store = payment.runtime().store
    report = await asyncio.to_thread(verify_application, store.app)
    assert report.ok, report.problems
    assert report.transactions == 1
