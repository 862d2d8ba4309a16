"""The nft service's read models, fed from its own notification log: IPOs (for the IPO clock)
so far; masters, holdings and projects as clients list them are next."""

from __future__ import annotations

from audifi_kit.projections import Projection

from audifi_nft.projections.ipos import Ipos

PROJECTIONS: tuple[type[Projection], ...] = (Ipos,)
