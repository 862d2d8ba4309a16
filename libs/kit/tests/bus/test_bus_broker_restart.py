"""RabbitBus across a broker restart, on a private RabbitMQ node (`scratch_rabbit`).

Each test leaves the node running, whatever happens in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from audifi_kit.broker_node import ScratchRabbitNode
from audifi_kit.bus import Delivery, PublishError
from audifi_kit.bus.rabbitmq import RabbitBus
from audifi_kit.messages import Message
from audifi_kit.testing import eventually
from bus_support import BusTestEnv

pytestmark = pytest.mark.slow


@pytest.fixture
def node(scratch_rabbit: ScratchRabbitNode) -> Iterator[ScratchRabbitNode]:
    scratch_rabbit.start()  # no-op when running
    yield scratch_rabbit
    scratch_rabbit.thaw()
    scratch_rabbit.start()


@pytest.fixture
async def env(node: ScratchRabbitNode, unique_name: str) -> AsyncIterator[BusTestEnv]:
    bus = RabbitBus(node.url, publish_timeout=3.0, reconnect_interval=0.3)
    await bus.connect()
    test_env = BusTestEnv(bus, f"rs{unique_name}")
    try:
        yield test_env
    finally:
        await test_env.close()


async def restart(node: ScratchRabbitNode) -> None:
    await asyncio.to_thread(node.restart)


async def publish_when_back(bus: RabbitBus, messages: list[Message]) -> None:
    """What the outbox relay does: publish again until the broker confirms."""

    async def attempt() -> bool:
        try:
            await bus.publish(messages)
        except PublishError:
            return False
        return True

    await eventually(attempt, within=30, what="a confirmed publish after the restart")


async def test_persistent_confirmed_messages_survive_a_restart(
    env: BusTestEnv, node: ScratchRabbitNode
) -> None:
    spec = await env.queue("durable", "thing.*")
    await env.bus.publish([env.message(f"m{i}") for i in range(50)])
    await restart(node)

    async with RabbitBus(node.url) as reader:
        assert await reader.queue_depth(spec.name) == 50
        got: list[str] = []

        async def handler(delivery: Delivery) -> None:
            got.append(delivery.message.message_id)
            await delivery.ack()

        subscription = await reader.consume(spec.name, handler)
        await eventually(lambda: len(got) == 50)
        await subscription.cancel()
    assert sorted(got) == sorted(f"m{i}" for i in range(50))


async def test_consumer_resumes_after_a_restart(env: BusTestEnv, node: ScratchRabbitNode) -> None:
    spec = await env.queue("resume", "thing.*")
    got: list[str] = []

    async def handler(delivery: Delivery) -> None:
        got.append(delivery.message.message_id)
        await delivery.ack()

    await env.consume(spec, handler, prefetch=10)
    await env.bus.publish([env.message("before")])
    await eventually(lambda: got == ["before"])

    await restart(node)
    await publish_when_back(env.bus, [env.message("after")])  # type: ignore[arg-type]
    await eventually(lambda: "after" in got, within=30, what="delivery to the old consumer")
    assert got == ["before", "after"]


async def test_publish_while_the_broker_is_down_raises(
    env: BusTestEnv, node: ScratchRabbitNode
) -> None:
    await env.queue("down", "thing.*")
    await asyncio.to_thread(node.stop)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(PublishError):
        await env.bus.publish([env.message("lost")])
    assert loop.time() - started < 3.0 + 1.0  # publish_timeout, with a margin
    await asyncio.to_thread(node.start)
    await publish_when_back(env.bus, [env.message("later")])  # type: ignore[arg-type]


async def test_publish_to_a_hung_broker_times_out(env: BusTestEnv, node: ScratchRabbitNode) -> None:
    await env.queue("hung", "thing.*")
    node.freeze()  # connection stays open, no confirm ever comes
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(PublishError, match="not confirmed within"):
            await env.bus.publish([env.message("stuck")])
        assert 3.0 <= loop.time() - started < 3.0 + 1.0
    finally:
        node.thaw()
    await publish_when_back(env.bus, [env.message("later")])  # type: ignore[arg-type]
