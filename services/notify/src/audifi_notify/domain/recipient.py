"""Who a notification goes to: an account's address, or the fact that it was erased."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Recipient:
    account_id: str
    email: str
    display_name: str | None


class RecipientErased(Exception):
    """The account asked to be forgotten: it is never written to again."""
