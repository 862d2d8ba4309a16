"""Stripe Connect (Express) onboarding: `POST /connect/accounts`, `GET /connect/accounts/me`.

The account is created once per user; each POST answers a fresh onboarding link. Its status
(pending, completed, rejected) follows Stripe's `account.updated`, read back from Stripe.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from audifi_kit.errors import NotFound, PaymentProviderError
from audifi_kit.http import Identity
from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide

from audifi_payment.api.dependencies import PaymentContext, provide_payment
from audifi_payment.domain.stripe_links import ConnectAccount


class ConnectAccountView(msgspec.Struct, rename="camel", kw_only=True):
    user_id: str
    stripe_account_id: str
    onboarding_status: str
    created_at: datetime
    updated_at: datetime
    onboarding_url: str | None = None


def _view(account: ConnectAccount, url: str | None = None) -> ConnectAccountView:
    return ConnectAccountView(
        user_id=account.user_id,
        stripe_account_id=account.stripe_account_id,
        onboarding_status=account.status,
        created_at=account.created_at,
        updated_at=account.updated_at,
        onboarding_url=url,
    )


class ConnectController(Controller):
    path = "/connect/accounts"
    dependencies = {"payment": Provide(provide_payment)}

    @post("/", status_code=201, raises=(PaymentProviderError,))
    async def onboard(
        self, identity: NamedDependency[Identity], payment: NamedDependency[PaymentContext]
    ) -> ConnectAccountView:
        """The caller's Express account (created once) and a link to onboard with Stripe."""
        account, url = await payment.service.onboard(identity.user_id, email=None)
        return _view(account, url)

    @get("/me", raises=(NotFound,))
    async def mine(
        self, identity: NamedDependency[Identity], payment: NamedDependency[PaymentContext]
    ) -> ConnectAccountView:
        """The caller's account and its onboarding status."""
        return _view(await payment.store.call(payment.app.connect_account, identity.user_id))
