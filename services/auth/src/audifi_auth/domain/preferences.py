"""MediaID preferences: what a fan is into, and which of their data brands' analytics may use."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID, uuid5

from audifi_kit.fields import ListOf, MappingOf, SingleLineText, check, text_type
from eventsourcing.domain import Aggregate, event

from audifi_auth.domain.personal_data import CarriesPersonalData

PREFERENCES_NAMESPACE = UUID("5d1b2f0e-7c1a-4f55-9a1e-2b8f6c1d9e01")
MAX_INTERESTS = 50
MAX_PRIVACY_SETTINGS = 50

Interest = SingleLineText(64, description="A tag the fan is into")
Interests = ListOf(Interest, max_length=MAX_INTERESTS)
# Setting names are the platform's identifiers (e.g. brandAnalytics), read by analytics.
PrivacySetting = text_type(
    "[A-Za-z][A-Za-z0-9_.:-]{0,63}",
    max_length=64,
    description="A privacy setting's name: a letter, then letters, digits, '_', '.', ':', '-'",
)
Privacy = MappingOf(
    PrivacySetting,
    bool,
    max_length=MAX_PRIVACY_SETTINGS,
    description="Which of the fan's data brands' analytics may use: setting name -> allowed",
)


class TooManyInterests(ValueError):
    pass


def preferences_id(account_id: UUID) -> UUID:
    return uuid5(PREFERENCES_NAMESPACE, str(account_id))


class Preferences(Aggregate):
    class Chosen(Aggregate.Created, CarriesPersonalData):
        personal_data: ClassVar[tuple[str, ...]] = ("interests", "privacy")
        data_subject: ClassVar[str] = "account_id"
        account_id: UUID
        interests: list[str]
        privacy: dict[str, bool]

    class ChosenAgain(Aggregate.Event, CarriesPersonalData):
        personal_data: ClassVar[tuple[str, ...]] = ("interests", "privacy")
        data_subject: ClassVar[str] = "account_id"
        account_id: UUID
        interests: list[str]
        privacy: dict[str, bool]

    @event(Chosen)
    def __init__(
        self, id: UUID, account_id: UUID, interests: list[str], privacy: dict[str, bool]
    ) -> None:
        self.account_id = account_id
        self.interests = list(interests or [])
        self.privacy = dict(privacy or {})

    @staticmethod
    def check(
        interests: list[str], privacy: dict[str, bool] | None = None
    ) -> tuple[list[str], dict[str, bool]]:
        """The choice as it is kept (interests trimmed, blank and repeated ones dropped); a
        text outside its rule, whoever sends it, is refused (ValidationFailed)."""
        for n, interest in enumerate(interests):
            check(Interest, interest, field=f"interests[{n}]")
        privacy = check(Privacy, dict(privacy or {}), field="privacy")
        cleaned = list(dict.fromkeys(i.strip() for i in interests if i.strip()))
        if len(cleaned) > MAX_INTERESTS:
            raise TooManyInterests(len(cleaned))
        return cleaned, privacy

    def choose(self, interests: list[str], privacy: dict[str, bool]) -> None:
        self._changed(account_id=self.account_id, interests=interests, privacy=privacy)

    @event(ChosenAgain)
    def _changed(self, account_id: UUID, interests: list[str], privacy: dict[str, bool]) -> None:
        self.interests = list(interests or [])
        self.privacy = dict(privacy or {})
