"""Sessions: `POST /auth/refresh` (rotation; reuse revokes the family), `POST /auth/logout`,
`GET /auth/session` (AudiFi; Coda's session and logout)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
from audifi_kit.fields import Token
from audifi_kit.http import Identity
from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from audifi_auth.api import refusals
from audifi_auth.api.dependencies import AuthContext, provide_auth
from audifi_auth.api.signing_in import TokenResponse, tokens_for
from audifi_auth.application import Revoked
from audifi_auth.application.errors import InvalidRefreshToken


class SessionView(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=True):
    """The verified identity; with the session's own record when auth knows it."""

    user_id: str
    roles: list[str]
    session_id: str | None
    active: bool | None = None
    method: str | None = None
    started_at: datetime | None = None
    expires_at: datetime | None = None


class RefreshRequest(msgspec.Struct, rename="camel"):
    refresh_token: Token


class LoggedOut(msgspec.Struct, rename="camel"):
    success: bool
    session_id: str | None


class SessionController(Controller):
    dependencies = {"auth": Provide(provide_auth)}

    @get("/auth/session")
    async def current_session(
        self, identity: NamedDependency[Identity], auth: NamedDependency[AuthContext]
    ) -> SessionView:
        view = SessionView(
            user_id=identity.user_id, roles=sorted(identity.roles), session_id=identity.session_id
        )
        try:
            session_id = UUID(identity.session_id or "")
        except ValueError:
            return view
        row = await auth.runtime.pool.fetchrow(  # type: ignore[union-attr]
            "SELECT * FROM sessions.sessions WHERE id = $1 AND account_id::text = $2",
            session_id,
            identity.user_id,
        )
        if row is not None:
            view.active = row["revoked_at"] is None
            view.method = row["method"]
            view.started_at = row["started_at"]
            view.expires_at = row["expires_at"]
        return view

    @post("/auth/refresh", opt={"public": True}, status_code=200, raises=refusals.REFRESH)
    async def refresh(
        self, data: JSONBody[RefreshRequest], auth: NamedDependency[AuthContext]
    ) -> TokenResponse:
        result = await auth.run(auth.app.refresh, data.refresh_token)
        if isinstance(result, Revoked):
            raise InvalidRefreshToken(
                "This refresh token was used already: the session is revoked; sign in again",
                code="REFRESH_TOKEN_REUSED",
            )
        return await tokens_for(auth, result)

    @post("/auth/logout", status_code=200)
    async def log_out(
        self, identity: NamedDependency[Identity], auth: NamedDependency[AuthContext]
    ) -> LoggedOut:
        try:
            session_id = UUID(identity.session_id or "")
            account_id = UUID(identity.user_id)
        except ValueError:
            return LoggedOut(success=True, session_id=identity.session_id)
        position = await auth.run(auth.app.revoke_session, session_id, account_id, "logout")
        await auth.settle(position)
        return LoggedOut(success=True, session_id=str(session_id))
