"""Wiring: settings and bus -> the notify service's Litestar app and background tasks.

Runs the kit's runtime (event store, `notification_history` projection, the
`notify.auth-events`, `notify.payment-events`, `notify.nft-events` and `notify.coin-events`
consumers) and, beside it, the sender and — when SMTP_URL is unset — the local SMTP sink whose
mail `GET /dev/mail` lists. Notify's own settings: see `config`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from audifi_kit.bus import Bus
from audifi_kit.launch import AppSpec, service_app
from audifi_kit.runtime import RUNTIME_STATE_KEY, ServiceRuntime
from audifi_kit.settings import Settings
from audifi_kit.spec import ServiceSpec
from litestar import Litestar

from audifi_notify import bootstrap
from audifi_notify.adapters.seal_key import SealKey
from audifi_notify.adapters.sink import MailSink
from audifi_notify.adapters.smtp import SmtpTransport
from audifi_notify.api import NotificationController, dev_mail, seal_key
from audifi_notify.api.dev_mail import SINK_STATE
from audifi_notify.api.seal_key import SEAL_KEY_STATE
from audifi_notify.application import NotifyApplication
from audifi_notify.config import NotifyConfig
from audifi_notify.consumers import (
    COIN_QUEUE_PURPOSE,
    NFT_QUEUE_PURPOSE,
    PAYMENT_QUEUE_PURPOSE,
    QUEUE_PURPOSE,
    auth_events_consumer,
    coin_events_consumer,
    nft_events_consumer,
    payment_events_consumer,
)
from audifi_notify.projections import NotificationHistory
from audifi_notify.sender import Sender

SENDER_STATE = "notify_sender"


def notify_spec(
    purpose: str = QUEUE_PURPOSE,
    slot: bootstrap.NotifierSlot | None = None,
    *,
    payment_purpose: str = PAYMENT_QUEUE_PURPOSE,
    nft_purpose: str = NFT_QUEUE_PURPOSE,
    coin_purpose: str = COIN_QUEUE_PURPOSE,
    config: NotifyConfig | None = None,
) -> ServiceSpec:
    slot = slot or bootstrap.NotifierSlot()
    config = config or NotifyConfig()
    return ServiceSpec(
        name="notify",
        application=NotifyApplication,
        projections=(NotificationHistory,),
        consumers=(
            auth_events_consumer(slot.get, purpose),
            payment_events_consumer(slot.get, config.billing_url, payment_purpose),
            nft_events_consumer(slot.get, config.public_url, nft_purpose),
            coin_events_consumer(slot.get, coin_purpose),
        ),
    )


spec = notify_spec()


def _purpose_beside(queue_purpose: str, base: str) -> str:
    if queue_purpose == QUEUE_PURPOSE:
        return base
    suffix = queue_purpose.removeprefix(QUEUE_PURPOSE)
    return base + (suffix if suffix != queue_purpose else f"-{queue_purpose}")


def payment_purpose_beside(queue_purpose: str) -> str:
    """The payment queue of a test that named its own auth queue, so that its notify never
    takes payment events from the service's shared queue (nor binds it to a test's exchange)."""
    return _purpose_beside(queue_purpose, PAYMENT_QUEUE_PURPOSE)


def nft_purpose_beside(queue_purpose: str) -> str:
    """The nft queue beside a test's own auth queue, for the same reason."""
    return _purpose_beside(queue_purpose, NFT_QUEUE_PURPOSE)


def coin_purpose_beside(queue_purpose: str) -> str:
    """The coin queue beside a test's own auth queue, for the same reason."""
    return _purpose_beside(queue_purpose, COIN_QUEUE_PURPOSE)


def load_seal_key(settings: Settings, config: NotifyConfig) -> SealKey:
    if config.seal_key:
        return SealKey.from_b64(config.seal_key)
    return SealKey.load_or_create(settings.var_dir / "notify" / "seal_key")


def create_app(
    settings: Settings,
    bus: Bus,
    *,
    config: NotifyConfig | None = None,
    queue_purpose: str = QUEUE_PURPOSE,
    payment_queue_purpose: str | None = None,
    nft_queue_purpose: str | None = None,
    coin_queue_purpose: str | None = None,
) -> Litestar:
    """`config` defaults to the environment (plus `settings.extra`); `queue_purpose`,
    `payment_queue_purpose`, `nft_queue_purpose` and `coin_queue_purpose` let tests consume
    from queues of their own. A test that names only its auth queue (`auth-events-<x>`) gets
    payment, nft and coin queues of its own beside it (`payment-events-<x>`, `nft-events-<x>`,
    `coin-events-<x>`), never the service's shared ones."""
    config = config or NotifyConfig.from_env({**os.environ, **settings.extra})
    slot = bootstrap.NotifierSlot()
    service_spec = notify_spec(
        queue_purpose,
        slot,
        payment_purpose=payment_queue_purpose or payment_purpose_beside(queue_purpose),
        nft_purpose=nft_queue_purpose or nft_purpose_beside(queue_purpose),
        coin_purpose=coin_queue_purpose or coin_purpose_beside(queue_purpose),
        config=config,
    )
    key = load_seal_key(settings, config)
    sink = MailSink(config.sink_port) if config.runs_sink else None

    @asynccontextmanager
    async def mail(app: Litestar) -> AsyncIterator[None]:
        runtime: ServiceRuntime = app.state[RUNTIME_STATE_KEY]
        if sink is not None:
            await sink.start()
        server = config.smtp or sink.server  # type: ignore[union-attr]
        transport = SmtpTransport(server, timeout=config.smtp_timeout)
        notifier = await bootstrap.on_postgres(runtime.store, runtime.pool, transport, key, config)
        slot.fill(notifier)
        sender = Sender(
            notifier,
            runtime.pool,
            runtime.projections[NotificationHistory.name],
            poll_interval=settings.poll_interval,
        )
        app.state[SENDER_STATE] = sender
        await sender.start()
        try:
            yield
        finally:
            await sender.stop()
            slot.empty()
            if sink is not None:
                await sink.stop()

    state: dict[str, Any] = {SEAL_KEY_STATE: key}
    handlers: list[Any] = [seal_key, NotificationController]
    if sink is not None:
        state[SINK_STATE] = sink
        handlers.append(dev_mail)
    return service_app(
        service_spec,
        settings,
        bus,
        route_handlers=handlers,
        lifespan=[mail],
        state=state,
    )


app = AppSpec(name="notify", factory=create_app)
