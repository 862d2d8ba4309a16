"""`GET /auth/session`: the caller's session, as its verified access token states it."""

from __future__ import annotations

import msgspec
from audifi_kit.http import Identity
from litestar import get
from litestar.di import NamedDependency


class SessionView(msgspec.Struct, rename="camel"):
    user_id: str
    roles: list[str]
    session_id: str | None


@get("/auth/session", sync_to_thread=False)
def current_session(identity: NamedDependency[Identity]) -> SessionView:
    return SessionView(
        user_id=identity.user_id, roles=sorted(identity.roles), session_id=identity.session_id
    )
