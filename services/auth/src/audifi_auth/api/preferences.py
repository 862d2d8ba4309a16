"""MediaID: `GET/PUT /mediaid/preferences` — interests, and which data brands may use."""

from __future__ import annotations

from uuid import UUID

import msgspec
from audifi_kit.errors import ValidationFailed
from audifi_kit.http import Identity
from litestar import Controller, get, put
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from audifi_auth.api import refusals
from audifi_auth.api.dependencies import AuthContext, provide_auth
from audifi_auth.application.errors import AccountNotFound
from audifi_auth.domain.preferences import MAX_INTERESTS, Interests, Privacy, TooManyInterests


class PreferencesView(msgspec.Struct, rename="camel", kw_only=True):
    interests: list[str] = []
    privacy: dict[str, bool] = {}


class PreferencesChoice(msgspec.Struct, rename="camel", kw_only=True):
    """`interests` are trimmed; blank and repeated ones are dropped."""

    interests: Interests = []
    privacy: Privacy = {}


def _account_id(identity: Identity) -> UUID:
    try:
        return UUID(identity.user_id)
    except ValueError:
        raise AccountNotFound() from None


async def _current(auth: AuthContext, account_id: UUID) -> PreferencesView:
    found = await auth.store.call(auth.app.preferences, account_id)
    if found is None:
        return PreferencesView()
    return PreferencesView(interests=list(found.interests), privacy=dict(found.privacy))


class PreferencesController(Controller):
    path = "/mediaid/preferences"
    dependencies = {"auth": Provide(provide_auth)}

    @get(raises=refusals.OWN_ACCOUNT)
    async def read(
        self, identity: NamedDependency[Identity], auth: NamedDependency[AuthContext]
    ) -> PreferencesView:
        return await _current(auth, _account_id(identity))

    @put(raises=refusals.OWN_ACCOUNT)
    async def choose(
        self,
        data: JSONBody[PreferencesChoice],
        identity: NamedDependency[Identity],
        auth: NamedDependency[AuthContext],
    ) -> PreferencesView:
        account_id = _account_id(identity)
        try:
            await auth.run(auth.app.choose_preferences, account_id, data.interests, data.privacy)
        except TooManyInterests:
            raise ValidationFailed(f"At most {MAX_INTERESTS} interests") from None
        return await _current(auth, account_id)
