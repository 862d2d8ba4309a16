"""Split rules: recipients in basis points, one default per owner.

Each command loads what it needs, lets the aggregates decide and saves everything it changed
in one `save`: the rule, the owner's book and, when the default moves, the rule that was the
default before. Two concurrent changes of one owner's book conflict on its version (409);
neither leaves two defaults.

`by` is the caller's user id and `admin` whether the caller is an admin: only the owner or an
admin defines, revises or removes an owner's rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError

from audifi_payment.application.core import PaymentCore
from audifi_payment.domain.split_rule import (
    SplitRule,
    SplitRuleBook,
    SplitRuleNotFound,
    SplitRuleNotYours,
    split_rule_book_id,
    whole_to,
)


class SplitRuleCommands(PaymentCore):
    """Split rules: recipients in basis points, one default per owner."""

    def define_split_rule(
        self,
        owner_id: str,
        name: Any,
        recipients: Any,
        *,
        is_default: bool = False,
        at: datetime,
        by: str,
        admin: bool = False,
    ) -> SplitRule:
        if not admin and by != owner_id:
            raise SplitRuleNotYours("Split rules are defined by their owner or an admin")
        rule = SplitRule.define(
            rule_id=uuid4(),
            owner_id=owner_id,
            name=name,
            recipients=recipients,
            is_default=is_default,
            at=at,
            by=by,
        )
        book = self._split_rule_book(owner_id) or SplitRuleBook(owner_id=owner_id)
        book.enter(rule.id)
        previous = self._make_default(book, rule, at) if rule.is_default else None
        self.save(book, rule, previous)
        return rule

    def revise_split_rule(
        self,
        rule_id: UUID,
        name: Any,
        recipients: Any,
        *,
        is_default: bool,
        at: datetime,
        by: str,
        admin: bool = False,
    ) -> SplitRule:
        """Replaces the rule's name, recipients and default flag (PUT: the whole rule)."""
        rule = self.split_rule(rule_id)
        rule.may_be_changed_by(by, admin=admin)
        if not rule.revise(name=name, recipients=recipients, is_default=is_default, at=at, by=by):
            return rule
        book = self._book_of(rule)
        previous = None
        if rule.is_default:
            previous = self._make_default(book, rule, at)
        elif book.default_rule_id == rule.id:
            book.choose_default(None)
        self.save(book, rule, previous)
        return rule

    def remove_split_rule(
        self, rule_id: UUID, *, at: datetime, by: str, admin: bool = False
    ) -> None:
        """The rule is gone (404 from now on); removing the default leaves none."""
        rule = self.split_rule(rule_id)
        rule.may_be_changed_by(by, admin=admin)
        rule.remove(at=at, by=by)
        book = self._book_of(rule)
        book.strike(rule.id)
        self.save(book, rule)

    # --- queries ------------------------------------------------------------------------

    def split_rule(self, rule_id: UUID) -> SplitRule:
        try:
            rule = self.repository.get(rule_id)
        except AggregateNotFoundError:
            rule = None
        if not isinstance(rule, SplitRule) or rule.removed:
            raise SplitRuleNotFound(details={"ruleId": str(rule_id)})
        return rule

    def rules_of(self, owner_id: str) -> list[SplitRule]:
        """The owner's rules, oldest first."""
        book = self._split_rule_book(owner_id)
        return [self.split_rule(rule_id) for rule_id in book.rule_ids] if book else []

    def default_rule_for(self, owner_id: str) -> SplitRule | None:
        book = self._split_rule_book(owner_id)
        if book is None or book.default_rule_id is None:
            return None
        return self.split_rule(book.default_rule_id)

    def shares_for(self, owner_id: str) -> Sequence[tuple[str, int]]:
        """The (recipient, basis points) applied to the owner's paid charges: the default
        rule's, or 100 % to the owner when there is none."""
        rule = self.default_rule_for(owner_id)
        return list(rule.recipients) if rule else whole_to(owner_id)

    # --- the owner's book ---------------------------------------------------------------

    def _split_rule_book(self, owner_id: str) -> SplitRuleBook | None:
        try:
            book = self.repository.get(split_rule_book_id(owner_id))
        except AggregateNotFoundError:
            return None
        return book if isinstance(book, SplitRuleBook) else None

    def _book_of(self, rule: SplitRule) -> SplitRuleBook:
        book = self._split_rule_book(rule.owner_id)
        if book is None:  # every rule is entered in its owner's book in the same save
            raise RuntimeError(f"split rule {rule.id} has no book")
        return book

    def _make_default(self, book: SplitRuleBook, rule: SplitRule, at: datetime) -> SplitRule | None:
        """Names `rule` the owner's default; the previous default (returned, to be saved in
        the same transaction) stops being one."""
        previous_id = book.default_rule_id
        book.choose_default(rule.id)
        if previous_id is None or previous_id == rule.id:
            return None
        previous = self.split_rule(previous_id)
        previous.pass_default_on(rule.id, at)
        return previous
