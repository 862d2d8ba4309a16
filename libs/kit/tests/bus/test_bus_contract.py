"""The bus contract (audifi_kit/bus/base.py), checked against both transports alike."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from audifi_kit.bus import Delivery, PublishError, parking_queue
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.bus.rabbitmq import RabbitBus
from audifi_kit.messages import ORIGINAL_QUEUE, Message
from audifi_kit.testing import eventually
from bus_support import BusTestEnv


@pytest.fixture(params=["inprocess", "rabbitmq"])
async def env(request: pytest.FixtureRequest, unique_name: str) -> AsyncIterator[BusTestEnv]:
    if request.param == "rabbitmq":
        bus: InProcessBus | RabbitBus = RabbitBus(request.getfixturevalue("amqp_url"))
    else:
        bus = InProcessBus()
    await bus.connect()
    test_env = BusTestEnv(bus, f"bt{unique_name}")
    try:
        yield test_env
    finally:
        await test_env.close()


def ids(messages: list[Message]) -> list[str]:
    return [m.message_id for m in messages]


async def test_topic_routing_star_hash_and_misses(env: BusTestEnv) -> None:
    spec = await env.queue("routing", "nft.*.minted", "vstudio.#", "#.burned")
    routed = {
        "nft.share.minted": True,  # `*` = one word (also matches nothing else)
        "nft.share.burned": True,  # `#.burned`
        "nft.burned": True,  # `#` = zero words too
        "vstudio": True,  # `vstudio.#` with zero words
        "vstudio.vote.cast": True,
        "nft.minted": False,  # `*` needs exactly one word
        "nft.share.extra.minted": False,
        "nft.share.minted.late": False,
        "vstudios.vote": False,
        "other.thing": False,
    }
    await env.bus.publish([env.message(key, key) for key in routed])
    expected = sorted(k for k, hit in routed.items() if hit)
    assert await env.bus.queue_depth(spec.name) == len(expected)

    got: list[str] = []

    async def handler(delivery: Delivery) -> None:
        got.append(delivery.message.message_id)
        await delivery.ack()

    await env.consume(spec, handler)
    await eventually(lambda: len(got) >= len(expected))
    assert sorted(got) == expected


async def test_confirmed_batch_of_1000_arrives_exactly_once(env: BusTestEnv) -> None:
    spec = await env.queue("batch", "thing.*")
    sent = [env.message(f"m{i}") for i in range(1000)]
    await env.bus.publish(sent)  # returns only once every message is confirmed
    assert await env.bus.queue_depth(spec.name) == 1000

    got: Counter[str] = Counter()

    async def handler(delivery: Delivery) -> None:
        got[delivery.message.message_id] += 1
        await delivery.ack()

    await env.consume(spec, handler, prefetch=200)
    await eventually(lambda: got.total() >= 1000)
    await env.bus.publish([env.message("last")])
    await eventually(lambda: "last" in got)
    assert set(got) == {*ids(sent), "last"}
    assert set(got.values()) == {1}
    assert await env.bus.queue_depth(spec.name) == 0


async def test_envelope_round_trips(env: BusTestEnv) -> None:
    spec = await env.queue("envelope", "nft.master.registered")
    sent = Message(
        message_id="nft-42",
        routing_key=env.key("nft.master.registered"),
        body=b'{"master_id":"m-1","amount":"12.50"}',
        correlation_id="req-7",
        causation_id="vstudio-9",
        schema_version=3,
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        timestamp=datetime(2024, 5, 17, 12, 30, 45, 123456, tzinfo=UTC),
        headers={"x-tenant": "label-a"},
    )
    await env.bus.publish([sent])
    got: list[Delivery] = []

    async def handler(delivery: Delivery) -> None:
        got.append(delivery)
        await delivery.ack()

    await env.consume(spec, handler)
    await eventually(lambda: got)
    delivery = got[0]
    assert delivery.message == sent
    assert delivery.message.content_type == "application/json"
    assert delivery.queue == spec.name
    assert delivery.attempt == 1
    assert delivery.redelivered is False


async def test_prefetch_bounds_unsettled_deliveries(env: BusTestEnv) -> None:
    spec = await env.queue("prefetch", "thing.*")
    await env.bus.publish([env.message(f"m{i}") for i in range(20)])
    in_flight = 0
    most = 0
    done = 0
    gate = asyncio.Event()

    async def handler(delivery: Delivery) -> None:
        nonlocal in_flight, most, done
        in_flight += 1
        most = max(most, in_flight)
        await gate.wait()
        in_flight -= 1
        await delivery.ack()
        done += 1

    await env.consume(spec, handler, prefetch=5)
    await eventually(lambda: in_flight == 5)
    await asyncio.sleep(0.2)  # give a transport that ignores prefetch the chance to overshoot
    assert most == 5
    assert await env.bus.queue_depth(spec.name) == 15
    gate.set()
    await eventually(lambda: done == 20)
    assert most == 5


async def test_ack_removes_the_message(env: BusTestEnv) -> None:
    spec = await env.queue("ack", "thing.*")
    await env.bus.publish([env.message(f"m{i}") for i in range(3)])
    first: list[str] = []

    async def ack_all(delivery: Delivery) -> None:
        first.append(delivery.message.message_id)
        await delivery.ack()

    subscription = await env.consume(spec, ack_all)
    await eventually(lambda: len(first) == 3)
    await subscription.cancel()
    assert await env.bus.queue_depth(spec.name) == 0

    later: list[str] = []

    async def record(delivery: Delivery) -> None:
        later.append(delivery.message.message_id)
        await delivery.ack()

    await env.consume(spec, record)
    await env.bus.publish([env.message("after")])
    await eventually(lambda: later)
    assert later == ["after"]


async def test_acks_may_come_in_any_order(env: BusTestEnv) -> None:
    spec = await env.queue("unordered", "thing.*")
    names = [f"m{i}" for i in range(5)]
    await env.bus.publish([env.message(n) for n in names])
    release = {n: asyncio.Event() for n in names}
    started: list[str] = []
    acked: list[str] = []

    async def handler(delivery: Delivery) -> None:
        started.append(delivery.message.message_id)
        await release[delivery.message.message_id].wait()
        await delivery.ack()
        acked.append(delivery.message.message_id)

    subscription = await env.consume(spec, handler, prefetch=5)
    await eventually(lambda: len(started) == 5)
    for name in reversed(names):  # the last delivered is settled first
        release[name].set()
        await eventually(lambda name=name: name in acked)
    await subscription.cancel()
    assert acked == list(reversed(names))
    assert await env.bus.queue_depth(spec.name) == 0  # nothing came back unacked


async def test_retry_twice_then_ack(env: BusTestEnv) -> None:
    spec = await env.queue("retry", "thing.*", delays=(50, 100))
    await env.bus.publish([env.message("r1")])
    seen: list[tuple[int, float, str | None]] = []
    loop = asyncio.get_running_loop()

    async def handler(delivery: Delivery) -> None:
        seen.append((delivery.attempt, loop.time(), delivery.message.last_error))
        if delivery.attempt < 3:
            await delivery.retry(f"fail {delivery.attempt}")
        else:
            await delivery.ack()

    await env.consume(spec, handler)
    await eventually(lambda: len(seen) == 3)
    assert [attempt for attempt, _, _ in seen] == [1, 2, 3]
    assert [error for _, _, error in seen] == [None, "fail 1", "fail 2"]
    assert seen[1][1] - seen[0][1] >= 0.045  # waited retry_delays_ms[0]
    assert seen[2][1] - seen[1][1] >= 0.095  # waited retry_delays_ms[1]
    assert await env.bus.queue_depth(spec.name) == 0
    assert await env.bus.parked(spec.name) == []


async def test_always_failing_message_ends_parked(env: BusTestEnv) -> None:
    spec = await env.queue("failing", "thing.*", delays=(20, 40))
    sent = env.message("doomed", correlation_id="req-1")
    await env.bus.publish([sent])
    attempts: list[int] = []

    async def handler(delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        await delivery.retry(f"boom {delivery.attempt}")

    await env.consume(spec, handler)
    await eventually(lambda: env.bus.parked(spec.name), what="a parked message")
    assert attempts == [1, 2, 3] == list(range(1, spec.max_attempts + 1))
    [parked] = await env.bus.parked(spec.name)
    assert parked.message_id == "doomed"
    assert parked.body == sent.body
    assert parked.correlation_id == "req-1"
    assert parked.last_error == "boom 3"
    assert parked.headers[ORIGINAL_QUEUE] == spec.name
    assert parked.attempt == 3
    assert await env.bus.queue_depth(spec.name) == 0


async def test_handler_raising_without_settling_is_retried(env: BusTestEnv) -> None:
    spec = await env.queue("raising", "thing.*", delays=(20, 40))
    await env.bus.publish([env.message("x1")])
    seen: list[tuple[int, str | None]] = []

    async def handler(delivery: Delivery) -> None:
        seen.append((delivery.attempt, delivery.message.last_error))
        if delivery.attempt == 1:
            raise ValueError("kaput")
        await delivery.ack()

    await env.consume(spec, handler)
    await eventually(lambda: len(seen) == 2)
    assert seen == [(1, None), (2, "kaput")]


async def test_handler_returning_without_settling_is_retried(env: BusTestEnv) -> None:
    spec = await env.queue("forgetful", "thing.*", delays=(20, 40))
    await env.bus.publish([env.message("x1")])
    attempts: list[int] = []

    async def handler(delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        if delivery.attempt == 2:
            await delivery.ack()

    await env.consume(spec, handler)
    await eventually(lambda: len(attempts) == 2)
    assert attempts == [1, 2]


async def test_park_at_once(env: BusTestEnv) -> None:
    spec = await env.queue("park", "thing.*", delays=(20, 40))
    await env.bus.publish([env.message("bad")])
    handled = 0

    async def handler(delivery: Delivery) -> None:
        nonlocal handled
        handled += 1
        await delivery.park("bad payload")

    await env.consume(spec, handler)
    await eventually(lambda: env.bus.parked(spec.name), what="a parked message")
    [parked] = await env.bus.parked(spec.name)
    assert handled == 1
    assert parked.message_id == "bad"
    assert parked.last_error == "bad payload"
    assert parked.headers[ORIGINAL_QUEUE] == spec.name
    assert parked.attempt == 1
    assert await env.bus.queue_depth(spec.name) == 0


async def _park_all(env: BusTestEnv, spec_name: str, message_ids: list[str]) -> None:
    spec = next(s for s in env.specs if s.name == spec_name)

    async def park(delivery: Delivery) -> None:
        await delivery.park(f"cannot handle {delivery.message.message_id}")

    subscription = await env.bus.consume(spec.name, park)
    await env.bus.publish([env.message(i) for i in message_ids])

    async def all_parked() -> bool:
        return len(await env.bus.parked(spec.name)) == len(message_ids)

    await eventually(all_parked, what="all parked")
    await subscription.cancel()


async def test_parked_peeks_without_removing(env: BusTestEnv) -> None:
    spec = await env.queue("peek", "thing.*")
    await _park_all(env, spec.name, ["a", "b", "c"])
    first = await env.bus.parked(spec.name)
    second = await env.bus.parked(spec.name)
    assert sorted(ids(first)) == sorted(ids(second)) == ["a", "b", "c"]
    assert len(await env.bus.parked(spec.name, limit=2)) == 2
    assert await env.bus.queue_depth(parking_queue(spec.name)) == 3
    assert all(m.last_error == f"cannot handle {m.message_id}" for m in first)


async def test_redrive_returns_parked_messages_with_attempt_reset(env: BusTestEnv) -> None:
    spec = await env.queue("redrive", "thing.*")
    await _park_all(env, spec.name, ["a", "b"])
    got: list[Message] = []

    async def handler(delivery: Delivery) -> None:
        got.append(delivery.message)
        await delivery.ack()

    await env.consume(spec, handler)
    assert await env.bus.redrive(spec.name, ["a"]) == 1
    await eventually(lambda: got)
    [redriven] = got
    assert redriven.message_id == "a"
    assert redriven.attempt == 1
    assert redriven.last_error is None
    assert ORIGINAL_QUEUE not in redriven.headers
    assert ids(await env.bus.parked(spec.name)) == ["b"]

    assert await env.bus.redrive(spec.name) == 1
    await eventually(lambda: len(got) == 2)
    assert got[1].message_id == "b"
    assert await env.bus.parked(spec.name) == []
    assert await env.bus.redrive(spec.name) == 0


async def test_discard_drops_parked_messages(env: BusTestEnv) -> None:
    spec = await env.queue("discard", "thing.*")
    await _park_all(env, spec.name, ["a", "b", "c"])
    assert await env.bus.discard(spec.name, ["b"]) == 1
    assert sorted(ids(await env.bus.parked(spec.name))) == ["a", "c"]
    assert await env.bus.discard(spec.name) == 2
    assert await env.bus.parked(spec.name) == []
    assert await env.bus.queue_depth(spec.name) == 0


async def test_redeclaring_a_queue_is_harmless(env: BusTestEnv) -> None:
    spec = await env.queue("again", "thing.*")
    await env.bus.publish([env.message("m1"), env.message("m2")])
    await env.bus.declare_queue(spec)
    await env.bus.declare_queue(spec)
    assert await env.bus.queue_depth(spec.name) == 2
    got: list[str] = []

    async def handler(delivery: Delivery) -> None:
        got.append(delivery.message.message_id)
        await delivery.ack()

    await env.consume(spec, handler)
    await eventually(lambda: len(got) == 2)
    assert sorted(got) == ["m1", "m2"]  # and routing still works once, not twice
    await env.bus.publish([env.message("m3")])
    await eventually(lambda: len(got) == 3)
    assert got.count("m3") == 1


async def test_send_to_queue_bypasses_routing(env: BusTestEnv) -> None:
    spec = await env.queue("direct", "never.matches")
    await env.bus.send_to_queue(spec.name, [env.message("d1", key="unrelated.key")])
    assert await env.bus.queue_depth(spec.name) == 1
    got: list[Message] = []

    async def handler(delivery: Delivery) -> None:
        got.append(delivery.message)
        await delivery.ack()

    await env.consume(spec, handler)
    await eventually(lambda: got)
    assert got[0].message_id == "d1"
    assert got[0].routing_key == env.key("unrelated.key")
    with pytest.raises(PublishError):
        await env.bus.send_to_queue(f"{env.prefix}.missing", [env.message("lost")])


async def test_settling_twice_is_an_error(env: BusTestEnv) -> None:
    spec = await env.queue("twice", "thing.*")
    await env.bus.publish([env.message("t1")])
    errors: list[Exception] = []

    async def handler(delivery: Delivery) -> None:
        await delivery.ack()
        for settle in (delivery.ack(), delivery.retry("again"), delivery.park("again")):
            try:
                await settle
            except RuntimeError as exc:
                errors.append(exc)

    await env.consume(spec, handler)
    await eventually(lambda: len(errors) == 3)
    assert await env.bus.queue_depth(spec.name) == 0
    assert await env.bus.parked(spec.name) == []


async def test_cancel_waits_for_in_flight_handlers(env: BusTestEnv) -> None:
    spec = await env.queue("cancel", "thing.*")
    await env.bus.publish([env.message("slow")])
    started = asyncio.Event()
    gate = asyncio.Event()
    finished: list[str] = []

    async def handler(delivery: Delivery) -> None:
        started.set()
        await gate.wait()
        await delivery.ack()
        finished.append(delivery.message.message_id)

    subscription = await env.bus.consume(spec.name, handler)
    await asyncio.wait_for(started.wait(), 10)
    cancelling = asyncio.ensure_future(subscription.cancel())
    done, _ = await asyncio.wait({cancelling}, timeout=0.2)
    assert not done  # still waiting for the handler
    gate.set()
    await asyncio.wait_for(cancelling, 10)
    assert finished == ["slow"]
    assert await env.bus.queue_depth(spec.name) == 0
    await env.bus.publish([env.message("unseen")])
    assert await env.bus.queue_depth(spec.name) == 1  # nobody consumes any more


async def test_consuming_an_unknown_queue_fails(env: BusTestEnv) -> None:
    async def handler(delivery: Delivery) -> None:
        await delivery.ack()

    with pytest.raises(LookupError):
        await env.bus.consume(f"{env.prefix}.nowhere", handler)
    assert await env.bus.queue_depth(f"{env.prefix}.nowhere") == 0
    assert await env.bus.parked(f"{env.prefix}.nowhere") == []
