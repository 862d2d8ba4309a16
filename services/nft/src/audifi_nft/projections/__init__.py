"""The nft service's read models, fed from its own notification log: IPOs (for the IPO clock),
the minting queue (for the minter), holdings (who holds which master's shares, from the
chain), wallets' owners, distributions, Coda projects with their investments, and Bucket's
lockers."""

from __future__ import annotations

from audifi_kit.projections import Projection

from audifi_nft.projections.distributions import Distributions
from audifi_nft.projections.holdings import Holdings
from audifi_nft.projections.ipos import Ipos
from audifi_nft.projections.locker import Locker
from audifi_nft.projections.minting import MintingQueue
from audifi_nft.projections.projects import Projects
from audifi_nft.projections.wallets import WalletOwners

PROJECTIONS: tuple[type[Projection], ...] = (
    Ipos,
    MintingQueue,
    Holdings,
    WalletOwners,
    Distributions,
    Projects,
    Locker,
)
