"""Payment's own settings, from the environment (12-factor), parsed once.

- STRIPE_SECRET_KEY: the key the SDK uses (a local Stripe accepts any `sk_test_...`).
- STRIPE_API_BASE: where the SDK sends its calls; unset with a real key: Stripe itself. The
  embedded platform (`make run`) sets it to the local Stripe it starts.
- STRIPE_WEBHOOK_SECRET: the `whsec_...` webhooks are signed with (required to take webhooks).
- STRIPE_WEBHOOK_TOLERANCE: seconds a signature stays valid (Stripe's default, 300).
- PLATFORM_FEE_BPS: the platform's share of every paid charge, in basis points (500 = 5 %).
- AUDIFI_PUBLIC_URL: where the checkout sends the buyer back by default.
- ORDER_SWEEP_SECONDS: how often orders past their expiry are looked for and expired (15).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from audifi_payment.application.payments import PaymentConfig

LOCAL_STRIPE_KEY = "sk_test_audifi_local"


@dataclass(frozen=True)
class PaymentSettings:
    stripe_secret_key: str = LOCAL_STRIPE_KEY
    stripe_api_base: str | None = None
    stripe_webhook_secret: str | None = None
    webhook_tolerance: int = 300
    platform_fee_bps: int = 500
    public_url: str = "http://127.0.0.1:8080"
    order_sweep_seconds: float = 15.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PaymentSettings:
        env = os.environ if env is None else env
        fee = int(env.get("PLATFORM_FEE_BPS", "500"))
        if not 0 <= fee <= 10_000:
            raise ValueError(f"PLATFORM_FEE_BPS must be 0..10000, not {fee}")
        return cls(
            stripe_secret_key=env.get("STRIPE_SECRET_KEY") or LOCAL_STRIPE_KEY,
            stripe_api_base=env.get("STRIPE_API_BASE") or None,
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET") or None,
            webhook_tolerance=int(env.get("STRIPE_WEBHOOK_TOLERANCE", "300")),
            platform_fee_bps=fee,
            public_url=env.get("AUDIFI_PUBLIC_URL", "http://127.0.0.1:8080"),
            order_sweep_seconds=float(env.get("ORDER_SWEEP_SECONDS", "15")),
        )

    @property
    def payment_config(self) -> PaymentConfig:
        return PaymentConfig(platform_fee_bps=self.platform_fee_bps, public_url=self.public_url)
