"""The vstudio service's read models, fed from its own notification log: sessions (a master's
list) and their decisions (for the clock that closes them at `closesAt`)."""

from __future__ import annotations

from audifi_kit.projections import Projection

from audifi_vstudio.projections.sessions import Sessions

PROJECTIONS: tuple[type[Projection], ...] = (Sessions,)
