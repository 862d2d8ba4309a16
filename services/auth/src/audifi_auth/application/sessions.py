"""Sessions: a refresh token is swapped for a new one; a retired one coming back revokes the
whole family; logout (or an admin) ends a session."""

from __future__ import annotations

from uuid import UUID

from audifi_auth.application.core import AuthCore, new_refresh_token, sha256
from audifi_auth.application.errors import InvalidRefreshToken
from audifi_auth.application.results import Revoked, SignedIn
from audifi_auth.domain.account import Account
from audifi_auth.domain.session import (
    RefreshTokenReused,
    Session,
    SessionEnded,
    UnknownRefreshToken,
)


class SessionCommands(AuthCore):
    def refresh(self, refresh_token: str) -> SignedIn | Revoked:
        """A new refresh token for the presented one; on reuse, the revocation (saved)."""
        session_hex, _, _ = refresh_token.partition(".")
        try:
            session_id = UUID(hex=session_hex)
        except ValueError:
            raise InvalidRefreshToken() from None
        session = self._get(session_id)
        if not isinstance(session, Session):
            raise InvalidRefreshToken()
        new_token = new_refresh_token(session_id)
        try:
            session.rotate(sha256(refresh_token), sha256(new_token), self.clock())
        except RefreshTokenReused:
            position = self._save(session)
            return Revoked(session.id, session.account_id, position)
        except (UnknownRefreshToken, SessionEnded):
            raise InvalidRefreshToken() from None
        account = self._get(session.account_id)
        if not isinstance(account, Account) or account.erased:
            raise InvalidRefreshToken()
        position = self._save(session)
        return SignedIn(account.id, session.id, list(account.roles), new_token, position)

    def revoke_session(self, session_id: UUID, account_id: UUID | None, reason: str) -> int:
        """Ends the session (only `account_id`'s, when given); 0 when there was none to end."""
        session = self._get(session_id)
        if not isinstance(session, Session) or (
            account_id is not None and session.account_id != account_id
        ):
            return 0
        session.revoke(reason, self.clock())
        return self._save(session)
