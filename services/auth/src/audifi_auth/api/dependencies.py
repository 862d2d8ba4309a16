"""What every auth handler works with, injected as the `auth` dependency."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from audifi_kit.eventstore import EventStore, run_command
from audifi_kit.runtime import RUNTIME_STATE_KEY, ServiceRuntime
from litestar import Request
from litestar.datastructures import State

from audifi_auth.adapters.brute_force import BruteForceGuard
from audifi_auth.adapters.seal_key import NotifySealKey
from audifi_auth.adapters.signing_keys import SigningKeys
from audifi_auth.application import AuthApplication, SignedIn
from audifi_auth.config import AuthConfig

T = TypeVar("T")
CONTEXT_STATE_KEY = "auth_context"


@dataclass(slots=True)
class AuthContext:
    config: AuthConfig
    keys: SigningKeys
    guard: BruteForceGuard
    seal_key: NotifySealKey
    runtime: ServiceRuntime | None = None

    @property
    def store(self) -> EventStore[AuthApplication]:
        assert self.runtime is not None
        return self.runtime.store

    @property
    def app(self) -> AuthApplication:
        return self.store.app

    async def run(self, command: Any, /, *args: Any) -> Any:
        return await run_command(self.store, command, *args)

    async def settle(self, position: int) -> None:
        """Read-your-writes: wait (briefly) until the read models include `position`."""
        if not position or self.runtime is None:
            return
        for runner in self.runtime.projections.values():
            with contextlib.suppress(TimeoutError):
                await runner.wait(position, timeout=5.0)

    def access_token(self, signed_in: SignedIn) -> tuple[str, datetime]:
        now = datetime.now(UTC)
        expires_at = now + self.config.access_ttl
        token = self.keys.sign(
            {
                "sub": str(signed_in.account_id),
                "roles": sorted(signed_in.roles),
                "sid": str(signed_in.session_id),
                "iat": int(now.timestamp()),
                "exp": int(expires_at.timestamp()),
            }
        )
        return token, expires_at


async def provide_auth(state: State) -> AuthContext:
    context: AuthContext = state[CONTEXT_STATE_KEY]
    if context.runtime is None:
        context.runtime = state[RUNTIME_STATE_KEY]
    return context


def client_ip(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"
