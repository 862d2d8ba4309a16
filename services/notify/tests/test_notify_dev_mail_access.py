"""`GET /dev/mail` holds every magic link: it answers a caller on this machine only (issue 9,
finding 7) — directly, or through the gateway when the developer's browser is on loopback;
anyone else, directly or through the gateway, gets the 404 a deployment without the sink
gives."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from audifi_gateway.app import create_app as create_gateway
from audifi_gateway.config import GatewayConfig
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.settings import DEFAULT_PORTS, Settings
from audifi_kit.testing import eventually, free_port, served
from audifi_notify.app import create_app
from audifi_notify.config import NotifyConfig


def _this_machines_other_address() -> str:
    """An address of this machine that is not loopback (a UDP connect only picks the route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent
            address = probe.getsockname()[0]
        except OSError:
            address = "127.0.0.1"
    if address.startswith("127."):
        pytest.skip("this machine has no network address besides loopback")
    return address


@asynccontextmanager
async def notify_on_every_interface(
    settings: Settings, config: NotifyConfig, unique_name: str
) -> AsyncIterator[int]:
    """notify served on 0.0.0.0 (uvicorn believes X-Forwarded-For from loopback, as a service
    believes the gateway's); yields its port."""
    app = create_app(
        settings, InProcessBus(), config=config, queue_purpose=f"auth-events-{unique_name}"
    )
    async with served(app, host="0.0.0.0") as url:
        yield int(url.rsplit(":", 1)[1])


def _refused(response: httpx.Response, email: str) -> None:
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "NOT_FOUND"
    assert email not in response.text


async def test_a_caller_on_this_machine_reads_the_mail_and_one_elsewhere_gets_404(
    start_notify, config
) -> None:
    async with start_notify(InProcessBus(), config) as notify:
        _, email = await notify.register("dev")
        await eventually(lambda: notify.mail(email))
        ask = notify.client.get

        local = await ask("/dev/mail", params={"to": email})
        assert local.status_code == 200 and local.json()[0]["to"] == email
        # A proxy on this machine forwarding a caller on this machine.
        through_local_proxy = await ask("/dev/mail", headers={"X-Forwarded-For": "127.0.0.1"})
        assert through_local_proxy.status_code == 200

        # What the gateway sends for a client elsewhere, and what other proxies say.
        for named in (
            {"X-Forwarded-For": "203.0.113.7"},
            {"X-Forwarded-For": "127.0.0.1, 203.0.113.7"},
            {"X-Forwarded-For": "::1, 2001:db8::7"},
            {"X-Forwarded-For": "unknown"},
            {"X-Real-IP": "203.0.113.7"},
            {"Forwarded": 'for="[2001:db8::7]:4711";proto=https'},
            {"Forwarded": "for=127.0.0.1, for=_hidden"},
        ):
            _refused(await ask("/dev/mail", params={"to": email}, headers=named), email)


async def test_a_direct_caller_from_another_address_gets_404(settings, config, unique_name) -> None:
    address = _this_machines_other_address()
    async with notify_on_every_interface(settings, config, unique_name) as port:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
            assert (await client.get(f"http://127.0.0.1:{port}/dev/mail")).status_code == 200
            _refused(await client.get(f"http://{address}:{port}/dev/mail"), "@")


async def test_through_the_gateway_only_a_browser_on_this_machine_reads_the_mail(
    settings, config, unique_name
) -> None:
    address = _this_machines_other_address()
    async with notify_on_every_interface(settings, config, unique_name) as notify_port:
        dead = f"http://127.0.0.1:{free_port()}"
        gateway_settings = Settings(
            urls={name: dead for name in DEFAULT_PORTS}
            | {"notify": f"http://127.0.0.1:{notify_port}"}
        )
        gateway = create_gateway(
            gateway_settings,
            InProcessBus(),
            config=GatewayConfig(
                key_prefix=f"gwtest:{unique_name}",
                revocation_queue=f"gateway.session-revocations.test-{unique_name}",
            ),
        )
        async with (
            served(gateway, host="0.0.0.0") as url,
            httpx.AsyncClient(trust_env=False, timeout=10) as client,
        ):
            port = int(url.rsplit(":", 1)[1])
            local = await client.get(f"http://127.0.0.1:{port}/api/v1/dev/mail")
            assert local.status_code == 200, local.text
            _refused(await client.get(f"http://{address}:{port}/api/v1/dev/mail"), "@")
