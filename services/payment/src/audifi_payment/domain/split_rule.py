"""Split rules: how an owner's (artist's, host's) paid charges are shared between recipients.

A rule lists recipients with basis points summing to exactly 10,000 (the seed's percents, in
hundredths, so 33.33 % is expressible and the sum is exact). An owner may keep several rules;
at most one is their default, and the default is the rule applied to every paid charge of the
owner's products. Without a default, the owner receives 100 %.

`SplitRuleBook` (one per owner, id derived from the owner) lists the owner's rules and names
the default. Choosing a new default changes the book, the new rule and the old default in one
save, and the book's version makes two concurrent choices conflict instead of leaving two
defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from audifi_kit.errors import Forbidden, NotFound
from audifi_kit.fields import SingleLineText, check
from eventsourcing.domain import Aggregate, event

from audifi_payment.domain.allocation import WHOLE
from audifi_payment.domain.values import invalid, user_id

NAMESPACE = UUID("4f7c2a1e-9b3d-4e6f-8a21-c5d0e9b7a312")
MAX_RECIPIENTS = 20

SplitRuleName = SingleLineText(100, min_length=1, description="The rule's name")

Recipients = list[tuple[str, int]]


class SplitRuleNotFound(NotFound):
    code = "SPLIT_RULE_NOT_FOUND"
    default_message = "No such split rule"


class SplitRuleNotYours(Forbidden):
    default_message = "Only the rule's owner or an admin may change it"


def checked_recipients(recipients: Any) -> Recipients:
    """(recipient id, basis points) pairs as a rule may hold them, else a 400 naming
    `recipients`: 1 to 20 distinct users, each 1 to 10,000 bps, summing to exactly 10,000."""
    if not isinstance(recipients, list | tuple) or not 1 <= len(recipients) <= MAX_RECIPIENTS:
        raise invalid("recipients", f"Expected 1 to {MAX_RECIPIENTS} recipients")
    checked: Recipients = []
    for entry in recipients:
        if not isinstance(entry, list | tuple) or len(entry) != 2:
            raise invalid("recipients", "Each recipient is a user id and basis points")
        recipient, bps = entry
        recipient = user_id(recipient, field="recipients")
        if isinstance(bps, bool) or not isinstance(bps, int) or not 1 <= bps <= WHOLE:
            raise invalid("recipients", f"Basis points are integers from 1 to {WHOLE}")
        checked.append((recipient, bps))
    if len({r for r, _ in checked}) != len(checked):
        raise invalid("recipients", "A recipient appears twice")
    total = sum(bps for _, bps in checked)
    if total != WHOLE:
        raise invalid("recipients", f"Basis points sum to {total}, not {WHOLE}")
    return checked


def checked_name(name: Any) -> str:
    return str(check(SplitRuleName, name, field="name"))


class SplitRule(Aggregate):
    @classmethod
    def define(
        cls,
        *,
        rule_id: UUID,
        owner_id: str,
        name: Any,
        recipients: Any,
        is_default: bool,
        at: datetime,
        by: str,
    ) -> SplitRule:
        return cls(
            id=rule_id,
            owner_id=owner_id,
            name=checked_name(name),
            recipients=checked_recipients(recipients),
            is_default=bool(is_default),
            defined_at=at,
            defined_by=by,
        )

    @event("Defined")
    def __init__(
        self,
        id: UUID,
        owner_id: str,
        name: str,
        recipients: Recipients,
        is_default: bool,
        defined_at: datetime,
        defined_by: str,
    ) -> None:
        self.owner_id = owner_id
        self.name = name
        self.recipients: Recipients = [(r, bps) for r, bps in recipients]
        self.is_default = is_default
        self.defined_at = defined_at
        self.revised_at = defined_at
        self.removed = False

    def may_be_changed_by(self, by: str, *, admin: bool) -> None:
        if not admin and by != self.owner_id:
            raise SplitRuleNotYours()

    def require_present(self) -> None:
        if self.removed:
            raise SplitRuleNotFound(details={"ruleId": str(self.id)})

    def revise(
        self, *, name: Any, recipients: Any, is_default: bool, at: datetime, by: str
    ) -> bool:
        """Replaces the rule's name, recipients and default flag; False when nothing differs."""
        self.require_present()
        name, recipients = checked_name(name), checked_recipients(recipients)
        if (name, recipients, bool(is_default)) == (self.name, self.recipients, self.is_default):
            return False
        self._revised(
            name=name, recipients=recipients, is_default=bool(is_default), revised_at=at, by=by
        )
        return True

    def pass_default_on(self, to_rule_id: UUID, at: datetime) -> None:
        """Another rule of the owner became the default."""
        if self.is_default:
            self._default_passed_on(to_rule_id=to_rule_id, at=at)

    def remove(self, *, at: datetime, by: str) -> None:
        self.require_present()
        self._removed(removed_at=at, by=by)

    @event("Revised")
    def _revised(
        self, name: str, recipients: Recipients, is_default: bool, revised_at: datetime, by: str
    ) -> None:
        self.name = name
        self.recipients = [(r, bps) for r, bps in recipients]
        self.is_default = is_default
        self.revised_at = revised_at

    @event("DefaultPassedOn")
    def _default_passed_on(self, to_rule_id: UUID, at: datetime) -> None:
        self.is_default = False

    @event("Removed")
    def _removed(self, removed_at: datetime, by: str) -> None:
        self.removed = True
        self.is_default = False


class SplitRuleBook(Aggregate):
    """An owner's rules, in the order they were defined, and which one is the default."""

    @staticmethod
    def create_id(owner_id: str) -> UUID:
        return split_rule_book_id(owner_id)

    @event("Opened")
    def __init__(self, owner_id: str) -> None:
        self.owner_id = owner_id
        self.rule_ids: list[UUID] = []
        self.default_rule_id: UUID | None = None

    def enter(self, rule_id: UUID) -> None:
        self._entered(rule_id=rule_id)

    def strike(self, rule_id: UUID) -> None:
        if rule_id in self.rule_ids:
            self._struck(rule_id=rule_id)

    def choose_default(self, rule_id: UUID | None) -> None:
        if rule_id != self.default_rule_id:
            self._default_chosen(rule_id=rule_id)

    @event("Entered")
    def _entered(self, rule_id: UUID) -> None:
        self.rule_ids.append(rule_id)

    @event("Struck")
    def _struck(self, rule_id: UUID) -> None:
        self.rule_ids.remove(rule_id)
        if self.default_rule_id == rule_id:
            self.default_rule_id = None

    @event("DefaultChosen")
    def _default_chosen(self, rule_id: UUID | None) -> None:
        self.default_rule_id = rule_id


def split_rule_book_id(owner_id: str) -> UUID:
    return uuid5(NAMESPACE, f"split-rule-book:{owner_id}")


def whole_to(owner_id: str) -> Sequence[tuple[str, int]]:
    """The shares that apply when an owner has no default rule: everything to the owner."""
    return [(owner_id, WHOLE)]
