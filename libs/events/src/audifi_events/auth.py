"""Events the auth service publishes."""

from __future__ import annotations

from datetime import datetime

from audifi_events.registry import IntegrationEvent, integration_event


@integration_event("auth.session.revoked")
class SessionRevoked(IntegrationEvent, kw_only=True):
    """A sign-in session ended (logout, refresh-token reuse, erasure, an admin's action).

    Access tokens carrying `sessionId` are refused from now on, at the gateway and by every
    service, although they have not expired yet. `accessTokensValidUntil` is when the last of
    them expires: after it, nobody needs to remember the revocation.
    """

    session_id: str
    user_id: str
    revoked_at: datetime
    access_tokens_valid_until: datetime
    reason: str
