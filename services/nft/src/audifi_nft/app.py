"""Wiring: settings and bus -> the nft service's Litestar app and background tasks."""

from __future__ import annotations

from audifi_kit.bus import Bus
from audifi_kit.chain.platform import PlatformChain
from audifi_kit.launch import AppSpec, service_app
from audifi_kit.settings import Settings
from audifi_kit.spec import ServiceSpec
from litestar import Litestar

from audifi_nft.api.chain import ChainController
from audifi_nft.application import NftApplication

spec = ServiceSpec(name="nft", application=NftApplication)


def create_app(settings: Settings, bus: Bus, chain: PlatformChain | None = None) -> Litestar:
    """`chain`: the process's shared chain (`audifi up`); unset, the service starts its own."""
    return service_app(
        spec,
        settings,
        bus,
        chain=chain or PlatformChain(settings),
        route_handlers=[ChainController],
    )


app = AppSpec(name="nft", factory=create_app, uses_chain=True)
