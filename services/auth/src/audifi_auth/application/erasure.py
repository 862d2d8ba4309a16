"""Erasure (the treasury's GDPR deletion): the person is forgotten, their ids stay valid."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from audifi_auth.application.core import AuthCore
from audifi_auth.domain.address_index import AddressIndex
from audifi_auth.domain.session import Session
from audifi_auth.domain.wallet import Wallet


class ErasureCommands(AuthCore):
    def erase(self, account_id: UUID, session_ids: Iterable[UUID]) -> int:
        """Releases the account's addresses (anyone may register them again), ends the
        sessions named, and shreds the account's key: its personal data reads as None in every
        event from now on."""
        account = self.account(account_id)
        now = self.clock()
        released = []
        keys = [("email", account.email.lower())] if account.email else []
        keys += [("wallet", Wallet(a, c).key) for a, c in account.wallets.items()]
        for kind, value in keys:
            index = self._get(self.index_id(kind, value))
            if isinstance(index, AddressIndex) and index.account_id == account.id:
                index.release()
                released.append(index)
        sessions = []
        for session_id in session_ids:
            session = self._get(session_id)
            if isinstance(session, Session) and session.account_id == account.id:
                if session.revoke("account_erased", now):
                    sessions.append(session)
        account.erase(now)
        position = self._save(account, *released, *sessions)
        self.vault.shred(account.id)
        return position
