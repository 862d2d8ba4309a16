"""Split rules on the in-memory application: what an owner may define, one default per owner,
who may change a rule, and which shares apply to the owner's charges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from audifi_kit.errors import DomainError
from audifi_payment.bootstrap import in_memory
from audifi_payment.domain.split_rule import SplitRule

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
ARTIST, PRODUCER, MIXER, STRANGER, ADMIN = (str(uuid4()) for _ in range(5))


@pytest.fixture
def app() -> Any:
    return in_memory()


def seventy_thirty(app: Any, *, is_default: bool = True, name: str = "Album") -> SplitRule:
    return app.define_split_rule(
        ARTIST, name, [(ARTIST, 7000), (PRODUCER, 3000)], is_default=is_default, at=NOW, by=ARTIST
    )


def refusal(call: Any, *args: Any, **kwargs: Any) -> DomainError:
    with pytest.raises(DomainError) as info:
        call(*args, **kwargs)
    return info.value


def test_an_owner_defines_a_seventy_thirty_split_that_applies_to_their_charges(app: Any) -> None:
    rule = seventy_thirty(app)

    stored = app.split_rule(rule.id)
    assert (stored.owner_id, stored.name, stored.is_default) == (ARTIST, "Album", True)
    assert stored.recipients == [(ARTIST, 7000), (PRODUCER, 3000)]
    assert app.shares_for(ARTIST) == [(ARTIST, 7000), (PRODUCER, 3000)]


def test_without_a_default_rule_the_owner_receives_everything(app: Any) -> None:
    assert app.shares_for(ARTIST) == [(ARTIST, 10_000)]
    seventy_thirty(app, is_default=False)

    assert app.default_rule_for(ARTIST) is None
    assert app.shares_for(ARTIST) == [(ARTIST, 10_000)]


@pytest.mark.parametrize(
    ("recipients", "why"),
    [
        ([(PRODUCER, 7000), (MIXER, 2999)], "sum to 9999"),
        ([(PRODUCER, 7000), (MIXER, 3001)], "sum to 10001"),
        ([(PRODUCER, 10_000), (MIXER, 0)], "from 1 to"),
        ([(PRODUCER, 5000.0), (MIXER, 5000)], "from 1 to"),
        ([(PRODUCER, True), (MIXER, 9999)], "from 1 to"),
        ([(PRODUCER, 5000), (PRODUCER, 5000)], "twice"),
        ([], "1 to 20"),
        ([(str(uuid4()), 500) for _ in range(20)] + [(MIXER, 0)], "1 to 20"),
        ([("not-a-user", 10_000)], "UUID"),
    ],
)
def test_recipients_that_do_not_make_exactly_ten_thousand_points_are_a_400_naming_recipients(
    app: Any, recipients: list[tuple[str, Any]], why: str
) -> None:
    error = refusal(app.define_split_rule, ARTIST, "Bad", recipients, at=NOW, by=ARTIST)

    assert (error.status_code, error.code) == (400, "VALIDATION_ERROR")
    [field] = error.details["fields"]
    assert field["field"] == "recipients"
    assert why.lower() in field["message"].lower()
    assert app.rules_of(ARTIST) == []


@pytest.mark.parametrize("name", ["", "x" * 101, "two\nlines", None])
def test_a_rule_needs_a_one_line_name_of_1_to_100_characters(app: Any, name: Any) -> None:
    error = refusal(app.define_split_rule, ARTIST, name, [(ARTIST, 10_000)], at=NOW, by=ARTIST)

    assert error.status_code == 400
    assert error.details["fields"][0]["field"] == "name"


def test_making_another_rule_the_default_leaves_exactly_one_default(app: Any) -> None:
    first = seventy_thirty(app, name="First")
    second = app.define_split_rule(
        ARTIST, "Second", [(MIXER, 10_000)], is_default=True, at=NOW, by=ARTIST
    )

    defaults = [r.name for r in app.rules_of(ARTIST) if r.is_default]
    assert defaults == ["Second"]
    assert app.default_rule_for(ARTIST).id == second.id
    assert app.split_rule(first.id).is_default is False
    assert app.shares_for(ARTIST) == [(MIXER, 10_000)]

    app.revise_split_rule(first.id, "First", first.recipients, is_default=True, at=NOW, by=ARTIST)
    assert [r.name for r in app.rules_of(ARTIST) if r.is_default] == ["First"]
    assert app.shares_for(ARTIST) == [(ARTIST, 7000), (PRODUCER, 3000)]


def test_the_owner_revises_a_rule_and_its_new_shares_apply(app: Any) -> None:
    rule = seventy_thirty(app)
    later = NOW + timedelta(days=1)

    app.revise_split_rule(
        rule.id, "Album v2", [(ARTIST, 6000), (MIXER, 4000)], is_default=True, at=later, by=ARTIST
    )

    stored = app.split_rule(rule.id)
    assert (stored.name, stored.revised_at) == ("Album v2", later)
    assert app.shares_for(ARTIST) == [(ARTIST, 6000), (MIXER, 4000)]


def test_revising_recipients_that_do_not_sum_is_a_400_and_changes_nothing(app: Any) -> None:
    rule = seventy_thirty(app)

    error = refusal(
        app.revise_split_rule,
        rule.id,
        "Album",
        [(ARTIST, 7000)],
        is_default=True,
        at=NOW,
        by=ARTIST,
    )

    assert error.details["fields"][0]["field"] == "recipients"
    assert app.split_rule(rule.id).recipients == [(ARTIST, 7000), (PRODUCER, 3000)]


def test_dropping_the_default_flag_leaves_the_owner_without_a_default(app: Any) -> None:
    rule = seventy_thirty(app)

    app.revise_split_rule(rule.id, "Album", rule.recipients, is_default=False, at=NOW, by=ARTIST)

    assert app.default_rule_for(ARTIST) is None
    assert app.shares_for(ARTIST) == [(ARTIST, 10_000)]


def test_another_users_rule_cannot_be_changed_or_removed_nor_defined_for_them(app: Any) -> None:
    rule = seventy_thirty(app)

    revised = refusal(
        app.revise_split_rule,
        rule.id,
        "Mine now",
        [(STRANGER, 10_000)],
        is_default=True,
        at=NOW,
        by=STRANGER,
    )
    removed = refusal(app.remove_split_rule, rule.id, at=NOW, by=STRANGER)
    defined = refusal(
        app.define_split_rule, ARTIST, "For you", [(STRANGER, 10_000)], at=NOW, by=STRANGER
    )

    assert {e.status_code for e in (revised, removed, defined)} == {403}
    assert {e.code for e in (revised, removed, defined)} == {"FORBIDDEN"}
    assert app.shares_for(ARTIST) == [(ARTIST, 7000), (PRODUCER, 3000)]


def test_an_admin_may_change_and_remove_anyones_rule(app: Any) -> None:
    rule = seventy_thirty(app)

    app.revise_split_rule(
        rule.id, "Fixed", [(ARTIST, 10_000)], is_default=True, at=NOW, by=ADMIN, admin=True
    )
    assert app.shares_for(ARTIST) == [(ARTIST, 10_000)]
    app.remove_split_rule(rule.id, at=NOW, by=ADMIN, admin=True)
    assert app.rules_of(ARTIST) == []


def test_a_removed_rule_is_not_found_afterwards_and_no_longer_applies(app: Any) -> None:
    rule = seventy_thirty(app)
    other = seventy_thirty(app, is_default=False, name="Other")

    app.remove_split_rule(rule.id, at=NOW, by=ARTIST)

    for call in (
        lambda: app.split_rule(rule.id),
        lambda: app.remove_split_rule(rule.id, at=NOW, by=ARTIST),
        lambda: app.revise_split_rule(
            rule.id, "Back", [(ARTIST, 10_000)], is_default=True, at=NOW, by=ARTIST
        ),
    ):
        error = refusal(call)
        assert (error.status_code, error.code) == (404, "SPLIT_RULE_NOT_FOUND")
        assert error.details == {"ruleId": str(rule.id)}
    assert [r.id for r in app.rules_of(ARTIST)] == [other.id]
    assert app.default_rule_for(ARTIST) is None
    assert app.shares_for(ARTIST) == [(ARTIST, 10_000)]


def test_an_unknown_rule_is_not_found(app: Any) -> None:
    error = refusal(app.split_rule, uuid4())

    assert (error.status_code, error.code) == (404, "SPLIT_RULE_NOT_FOUND")


def test_rules_of_lists_only_that_owners_rules_oldest_first(app: Any) -> None:
    first = seventy_thirty(app, name="First")
    second = seventy_thirty(app, is_default=False, name="Second")
    app.define_split_rule(PRODUCER, "Theirs", [(PRODUCER, 10_000)], at=NOW, by=PRODUCER)

    assert [r.id for r in app.rules_of(ARTIST)] == [first.id, second.id]
    assert [r.name for r in app.rules_of(PRODUCER)] == ["Theirs"]
    assert app.rules_of(STRANGER) == []
