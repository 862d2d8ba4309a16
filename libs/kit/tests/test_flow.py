"""An event saved by one service reaches another service's handler and takes effect once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import UUID

import asyncpg
import pytest
from audifi_kit.bus import Bus
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.bus.rabbitmq import RabbitBus
from audifi_kit.eventstore import EventStore, GroupCommit
from audifi_kit.inbox import Consumer, HandlerContext, InboxWorker
from audifi_kit.relay import OutboxRelay, build_messages
from audifi_kit.settings import Settings
from audifi_kit.testing import eventually
from flow_support import delete_queues, ledger_total, run_cli
from kit_sample import Bank, ledger_consumer, outbox


@pytest.fixture(params=["rabbitmq", "inprocess"])
async def bus(request: pytest.FixtureRequest, amqp_url: str) -> AsyncIterator[Bus]:
    transport: Bus = RabbitBus(amqp_url) if request.param == "rabbitmq" else InProcessBus()
    await transport.connect()
    yield transport
    await transport.close()


@pytest.fixture
def purpose(unique_name: str) -> str:
    return f"sample-events-{unique_name}"


@pytest.fixture
async def queues(amqp_url: str, purpose: str) -> AsyncIterator[None]:
    yield
    await delete_queues(amqp_url, f"ledger.{purpose}")


async def open_with_credits(bank: EventStore[Bank], amounts: list[int]) -> tuple[UUID, int]:
    account_id = await bank.call(bank.app.open_account, "Ada")
    last = 0
    for amount in amounts:
        last = await bank.call(bank.app.credit, account_id, amount)
    return account_id, last


async def test_credits_reach_the_ledger_exactly_once_even_when_republished(
    bank: EventStore[Bank], bus: Bus, ledger_pool: asyncpg.Pool, purpose: str, queues: None
) -> None:
    worker = InboxWorker(ledger_consumer(purpose), bus, ledger_pool)
    await worker.start()
    relay = OutboxRelay(bank, bus, outbox)
    await relay.start()
    try:
        account_id, last = await open_with_credits(bank, list(range(1, 21)))
        await relay.wait_caught_up(last)
        await eventually(lambda: _total_is(ledger_pool, account_id, (210, 20)))

        # The whole log again (an operator's republish): every message is a duplicate now.
        conn = await bank.connect()
        try:
            from audifi_kit.notifications import NotificationLog

            page = await NotificationLog(bank.table).read(conn, 0, 1000)
        finally:
            await conn.close()
        await bus.publish(build_messages(bank, outbox, page))
        await eventually(lambda: worker.duplicates == 20)
        assert await ledger_total(ledger_pool, account_id) == (210, 20)
    finally:
        await relay.stop()
        await worker.stop()


async def _total_is(pool: asyncpg.Pool, account_id: UUID, expected: tuple[int, int]) -> bool:
    return await ledger_total(pool, account_id) == expected


class RelayCrash(BaseException):
    """The process dying: not an error the relay's own retry loop may catch and survive."""


class RelayDyingAfterPublish(OutboxRelay):
    """Publishes, then dies before it can store its new position."""

    async def _store_position(self, conn, position: int) -> None:
        raise RelayCrash(f"killed after publishing up to {position}")


async def test_a_relay_dying_between_publish_and_position_loses_and_doubles_nothing(
    bank: EventStore[Bank], bus: Bus, ledger_pool: asyncpg.Pool, purpose: str, queues: None
) -> None:
    worker = InboxWorker(ledger_consumer(purpose), bus, ledger_pool)
    await worker.start()
    account_id, last = await open_with_credits(bank, [5] * 10)
    dying = RelayDyingAfterPublish(bank, bus, outbox)
    with pytest.raises(RelayCrash):
        await dying.run()
    await eventually(lambda: _total_is(ledger_pool, account_id, (50, 10)))

    relay = OutboxRelay(bank, bus, outbox)  # the restarted process, from the stored position
    await relay.start()
    try:
        await relay.wait_caught_up(last)
        await eventually(lambda: worker.duplicates == 10)
        assert await ledger_total(ledger_pool, account_id) == (50, 10)
        assert relay.published == 11  # opened + 10 credits, all published a second time
    finally:
        await relay.stop()
        await worker.stop()


def flaky_consumer(purpose: str, failures_per_message: int | None) -> tuple[Consumer, dict]:
    """A ledger consumer whose handler fails N times per message (None: always)."""
    seen: dict[str, list[int]] = {}
    consumer = Consumer("ledger", purpose, retry_delays_ms=(50, 100, 150))
    state = {"fixed": False, "seen": seen}

    @consumer.handler("sample.account.credited")
    async def on_credited(e, ctx: HandlerContext) -> None:
        attempts = seen.setdefault(ctx.message.message_id, [])
        attempts.append(ctx.message.attempt)
        failing = failures_per_message is None or len(attempts) <= failures_per_message
        if failing and not state["fixed"]:
            raise RuntimeError("ledger is not ready for this account")
        await ctx.conn.execute(
            "INSERT INTO ledger_totals VALUES ($1, $2, 1) ON CONFLICT (account_id) DO UPDATE "
            "SET credited = ledger_totals.credited + $2, credits = ledger_totals.credits + 1",
            e.account_id,
            e.amount,
        )

    return consumer, state


async def test_a_handler_failing_twice_then_succeeding_applies_once(
    bank: EventStore[Bank], bus: Bus, ledger_pool: asyncpg.Pool, purpose: str, queues: None
) -> None:
    consumer, state = flaky_consumer(purpose, failures_per_message=2)
    worker = InboxWorker(consumer, bus, ledger_pool)
    await worker.start()
    relay = OutboxRelay(bank, bus, outbox)
    await relay.start()
    try:
        account_id, _ = await open_with_credits(bank, [7, 8])
        await eventually(lambda: _total_is(ledger_pool, account_id, (15, 2)))
        assert sorted(state["seen"].values()) == [[1, 2, 3], [1, 2, 3]]
        assert await bus.parked(f"ledger.{purpose}") == []
    finally:
        await relay.stop()
        await worker.stop()


async def test_an_always_failing_handler_parks_and_a_redrive_applies_it_once(
    bank: EventStore[Bank],
    ledger_pool: asyncpg.Pool,
    purpose: str,
    queues: None,
    settings: Settings,
    amqp_url: str,
) -> None:
    bus = RabbitBus(amqp_url)
    await bus.connect()
    consumer, state = flaky_consumer(purpose, failures_per_message=None)
    queue = f"ledger.{purpose}"
    worker = InboxWorker(consumer, bus, ledger_pool)
    await worker.start()
    relay = OutboxRelay(bank, bus, outbox)
    await relay.start()
    try:
        account_id, _ = await open_with_credits(bank, [42])

        async def parked() -> bool:
            return len(await bus.parked(queue)) == 1

        await eventually(parked)
        listed = run_cli(settings, "dlq", "list", queue)
        assert listed.returncode == 0, listed.stderr
        assert "sample.account.credited" in listed.stdout
        assert "ledger is not ready" in listed.stdout
        assert await ledger_total(ledger_pool, account_id) == (0, 0)
        assert len(next(iter(state["seen"].values()))) == consumer.spec.max_attempts

        state["fixed"] = True  # the operator deploys the fix, then redrives
        redriven = run_cli(settings, "dlq", "redrive", queue)
        assert redriven.returncode == 0, redriven.stderr
        assert "redrove 1 message" in redriven.stdout
        await eventually(lambda: _total_is(ledger_pool, account_id, (42, 1)))
        assert await bus.parked(queue) == []
        again = run_cli(settings, "dlq", "redrive", queue)  # nothing left: nothing applied twice
        assert "redrove 0 message" in again.stdout
        # A later credit takes the same road (relay, queue, worker) behind anything a redrive
        # put back: once it is in, a second application of the 42 would be too.
        await bank.call(bank.app.credit, account_id, 8)
        await eventually(lambda: _total_is(ledger_pool, account_id, (50, 2)))
    finally:
        await relay.stop()
        await worker.stop()
        await bus.close()


async def test_an_undecodable_message_is_parked_at_once(
    bus: Bus, ledger_pool: asyncpg.Pool, purpose: str, queues: None
) -> None:
    from audifi_kit.messages import Message

    consumer = ledger_consumer(purpose)
    worker = InboxWorker(consumer, bus, ledger_pool)
    await worker.start()
    try:
        await bus.publish(
            [Message("sample-999999", "sample.account.credited", b'{"accountId": "not-a-uuid"}')]
        )

        async def parked() -> bool:
            return len(await bus.parked(consumer.name)) == 1

        await eventually(parked)
        [message] = await bus.parked(consumer.name)
        assert message.attempt == 1
        assert "undecodable" in (message.last_error or "")
    finally:
        await worker.stop()


@pytest.mark.slow
async def test_all_1000_events_arrive_when_rabbitmq_restarts_mid_write(
    bank: EventStore[Bank], ledger_pool: asyncpg.Pool, purpose: str, scratch_rabbit
) -> None:
    bus = RabbitBus(scratch_rabbit.url)
    await bus.connect()
    worker = InboxWorker(ledger_consumer(purpose), bus, ledger_pool)
    await worker.start()
    relay = OutboxRelay(bank, bus, outbox, retry_delay=0.2)
    await relay.start()
    account_id = await bank.call(bank.app.open_account, "Ada")
    group = GroupCommit(bank)
    try:

        async def write_1000() -> None:
            for chunk in range(50):  # 20 credits at a time, paced over about 5 s
                await asyncio.gather(
                    *(
                        group.submit(lambda: bank.app.decide_credit(account_id, 1))
                        for _ in range(20)
                    )
                )
                await asyncio.sleep(0.1)
                del chunk

        writer = asyncio.create_task(write_1000())
        # The outage must fall while events flow: stop the broker once some have arrived.
        await eventually(lambda: worker.handled >= 40)
        await asyncio.to_thread(scratch_rabbit.stop)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(scratch_rabbit.start)
        await writer
        await eventually(lambda: _total_is(ledger_pool, account_id, (1000, 1000)), within=90)
        assert worker.handled == 1000
        assert relay.publish_failures > 0, "the outage did not overlap the relay's publishing"
    finally:
        await group.close()
        await relay.stop()
        await worker.stop()
        await bus.close()


async def test_an_idle_relay_and_projection_stop_promptly(bank: EventStore[Bank]) -> None:
    from audifi_kit.projections import ProjectionRunner
    from kit_sample import Balances

    bus = InProcessBus()
    await bus.connect()
    await bank.call(bank.app.open_account, "Ada")
    try:
        for _ in range(10):  # shutdown must never hang, whatever the follower was waiting on
            relay = OutboxRelay(bank, bus, outbox)
            runner = ProjectionRunner(bank, Balances())
            await relay.start()
            await runner.start()
            await relay.wait_caught_up(1)
            await runner.wait(1)
            await asyncio.sleep(0.05)
            async with asyncio.timeout(5):
                await relay.stop()
                await runner.stop()
    finally:
        await bus.close()


async def test_a_consumer_changing_its_event_store_applies_a_message_once(
    bank: EventStore[Bank], bus: Bus, purpose: str, queues: None, settings: Settings
) -> None:
    """`store=True` handlers save aggregates with the inbox row in the event store's transaction."""
    from audifi_kit.eventstore import open_event_store

    # The "rewards" service keeps its own event store (a Bank too, in its own database).
    rewards = await open_event_store("rewards", Bank, settings)
    rewards_pool = await rewards.create_pool()
    wallet = await rewards.call(rewards.app.open_account, "rewards for Ada")
    consumer = Consumer("rewards", purpose, retry_delays_ms=(50, 100))

    @consumer.handler("sample.account.credited", store=True)
    async def reward(e, ctx: HandlerContext) -> None:
        account = await rewards.call(rewards.app.decide_credit, wallet, e.amount // 10)
        await ctx.save(account)

    worker = InboxWorker(consumer, bus, rewards_pool, store=rewards)
    await worker.start()
    relay = OutboxRelay(bank, bus, outbox)
    await relay.start()
    try:
        account_id, _ = await open_with_credits(bank, [100, 200])
        await eventually(lambda: _balance_is(rewards, wallet, 30))
        conn = await bank.connect()
        try:
            from audifi_kit.notifications import NotificationLog

            page = await NotificationLog(bank.table).read(conn, 0, 100)
        finally:
            await conn.close()
        messages = build_messages(bank, outbox, page)
        await bus.publish(messages)  # every message again
        await bus.publish([m for m in messages if m.routing_key.endswith("credited")][:1])
        await eventually(lambda: worker.duplicates == 3)
        assert await rewards.call(rewards.app.balance, wallet) == 30
        events = await rewards.call(lambda: list(rewards.app.events.get(wallet)))
        assert len(events) == 3  # opened + one reward per credit, never more
        del account_id
    finally:
        await relay.stop()
        await worker.stop()
        await rewards_pool.close()
        rewards.close()


async def _balance_is(store: EventStore[Bank], account_id: UUID, expected: int) -> bool:
    return await store.call(store.app.balance, account_id) == expected


async def test_a_backlog_is_applied_in_batches_and_one_poisoned_message_spoils_none_of_the_rest(
    bank: EventStore[Bank], bus: Bus, ledger_pool: asyncpg.Pool, purpose: str, queues: None
) -> None:
    consumer = Consumer("ledger", purpose, retry_delays_ms=(50, 100))
    applied: list[str] = []

    @consumer.handler("sample.account.credited")
    async def on_credited(e, ctx: HandlerContext) -> None:
        if e.amount == 13:
            raise RuntimeError("13 is refused")
        await ctx.conn.execute(
            "INSERT INTO ledger_totals VALUES ($1, $2, 1) ON CONFLICT (account_id) DO UPDATE "
            "SET credited = ledger_totals.credited + $2, credits = ledger_totals.credits + 1",
            e.account_id,
            e.amount,
        )
        applied.append(ctx.message.message_id)

    worker = InboxWorker(consumer, bus, ledger_pool, prefetch=500)
    await bus.declare_queue(consumer.spec)  # the backlog waits in the queue for the worker
    relay = OutboxRelay(bank, bus, outbox)
    await relay.start()
    try:
        account_id = await bank.call(bank.app.open_account, "Ada")
        group = GroupCommit(bank)
        amounts = [1 + i % 20 for i in range(300)]  # 15 of them are the poisoned 13
        try:
            positions = await asyncio.gather(
                *(group.submit(lambda a=a: bank.app.decide_credit(account_id, a)) for a in amounts)
            )
        finally:
            await group.close()
        await relay.wait_caught_up(max(p for ps in positions for p in ps))
        await worker.start()
        good = [a for a in amounts if a != 13]
        await eventually(lambda: _total_is(ledger_pool, account_id, (sum(good), len(good))))
        await eventually(lambda: worker.parked == amounts.count(13), within=30)
        parked = await bus.parked(f"ledger.{purpose}")
        assert len(parked) == amounts.count(13)
        # Counted once each delivery's transaction is back, a moment after it commits.
        await eventually(lambda: worker.handled == len(good))
        assert worker.duplicates == 0
        assert worker.batches < len(good) / 5  # far fewer transactions than messages
        # Handlers ran again only after a rollback; what committed did so once.
        assert await ledger_total(ledger_pool, account_id) == (sum(good), len(good))
    finally:
        await relay.stop()
        await worker.stop()
