"""Users' Stripe customers and Connect accounts, one of each per user."""

from __future__ import annotations

from datetime import datetime

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from audifi_payment.application.core import PaymentCore
from audifi_payment.domain.stripe_links import (
    ConnectAccount,
    ConnectAccountNotFound,
    CustomerLink,
    connect_account_id,
    customer_link_id,
)


class StripeLinkCommands(PaymentCore):
    def stripe_customer_of(self, user_id: str) -> str | None:
        try:
            link: CustomerLink = self.repository.get(customer_link_id(user_id))
        except AggregateNotFoundError:
            return None
        return link.customer_id

    def link_stripe_customer(self, user_id: str, customer_id: str, *, at: datetime) -> str:
        """The user's customer from now on; when another request linked one first, that one
        (the customer created here is then left unused at Stripe)."""
        try:
            self.save(CustomerLink(user_id=user_id, customer_id=customer_id, linked_at=at))
        except IntegrityError:
            return self.stripe_customer_of(user_id) or customer_id
        return customer_id

    def connect_account(self, user_id: str) -> ConnectAccount:
        try:
            return self.repository.get(connect_account_id(user_id))
        except AggregateNotFoundError:
            raise ConnectAccountNotFound() from None

    def find_connect_account(self, user_id: str) -> ConnectAccount | None:
        try:
            return self.connect_account(user_id)
        except ConnectAccountNotFound:
            return None

    def create_connect_account(
        self, user_id: str, stripe_account_id: str, *, at: datetime
    ) -> ConnectAccount:
        try:
            self.save(
                ConnectAccount(user_id=user_id, stripe_account_id=stripe_account_id, created_at=at)
            )
        except IntegrityError:
            pass  # a concurrent request created it: theirs stands
        return self.connect_account(user_id)

    def observe_connect_account(
        self,
        user_id: str,
        *,
        details_submitted: bool,
        charges_enabled: bool,
        disabled_reason: str | None,
        at: datetime,
    ) -> ConnectAccount:
        account = self.connect_account(user_id)
        account.observe(
            details_submitted=details_submitted,
            charges_enabled=charges_enabled,
            disabled_reason=disabled_reason,
            at=at,
        )
        self.save(account)
        return account
