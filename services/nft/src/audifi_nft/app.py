"""Wiring: settings and bus -> the nft service's Litestar app and background tasks.

Masters' media is kept by `LocalStorage` under `AUDIFI_NFT_MEDIA_DIR` (from the environment
or `settings.extra`), by default `nft-media` under the settings' `var_dir`.
"""

from __future__ import annotations

import os
from pathlib import Path

from audifi_kit.bus import Bus
from audifi_kit.chain.platform import PlatformChain
from audifi_kit.launch import AppSpec, service_app
from audifi_kit.settings import Settings
from audifi_kit.spec import ServiceSpec
from litestar import Litestar

from audifi_nft.adapters.storage_local import LocalStorage, MediaStorage
from audifi_nft.api.chain import ChainController
from audifi_nft.api.dependencies import CONTEXT_STATE_KEY, NftContext
from audifi_nft.api.ipos import IposController
from audifi_nft.api.masters import MastersController
from audifi_nft.application import NftApplication
from audifi_nft.consumers import orders_consumer
from audifi_nft.outbox import outbox

MEDIA_DIR_ENV = "AUDIFI_NFT_MEDIA_DIR"

spec = ServiceSpec(
    name="nft", application=NftApplication, outbox=outbox, consumers=(orders_consumer(),)
)


def media_dir(settings: Settings) -> Path:
    configured = settings.extra.get(MEDIA_DIR_ENV) or os.environ.get(MEDIA_DIR_ENV)
    return Path(configured) if configured else Path(settings.var_dir) / "nft-media"


def create_app(
    settings: Settings,
    bus: Bus,
    chain: PlatformChain | None = None,
    *,
    storage: MediaStorage | None = None,
) -> Litestar:
    """`chain`: the process's shared chain (`audifi up`); unset, the service starts its own.
    `storage` defaults to local files under `media_dir(settings)`."""
    context = NftContext(settings=settings, storage=storage or LocalStorage(media_dir(settings)))
    return service_app(
        spec,
        settings,
        bus,
        chain=chain or PlatformChain(settings),
        route_handlers=[ChainController, MastersController, IposController],
        state={CONTEXT_STATE_KEY: context},
    )


app = AppSpec(name="nft", factory=create_app, uses_chain=True)
