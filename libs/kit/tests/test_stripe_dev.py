"""The local Stripe of `make run`: started as a child process, answering, stopped."""

from __future__ import annotations

import httpx
from audifi_kit import stripe_dev
from audifi_kit.settings import Settings
from audifi_kit.testing import free_port


def test_the_local_stripe_is_wanted_only_without_a_configured_one() -> None:
    assert stripe_dev.wanted({})
    assert not stripe_dev.wanted({"STRIPE_SECRET_KEY": "sk_live_x"})
    assert not stripe_dev.wanted({"STRIPE_API_BASE": "http://stripe:8420"})


async def test_the_local_stripe_starts_answers_with_its_env_and_stops() -> None:
    settings = Settings(stripe_local_port=free_port(), ports={"gateway": free_port()})
    env = stripe_dev.local_stripe_env(settings, {})
    assert env["STRIPE_WEBHOOK_SECRET"].startswith("whsec_")
    assert env["STRIPE_LOCAL_WEBHOOK_URLS"].endswith("/api/v1/stripe/webhook")
    assert env != stripe_dev.local_stripe_env(settings, {})  # a secret per run
    local = stripe_dev.LocalStripe(settings, env)
    await local.start()
    try:
        async with httpx.AsyncClient() as client:
            health = await client.get(f"{env['STRIPE_API_BASE']}/healthz")
            customer = await client.post(
                f"{env['STRIPE_API_BASE']}/v1/customers",
                headers={"Authorization": f"Bearer {env['STRIPE_SECRET_KEY']}"},
                data={"email": "ada@example.com"},
            )
        assert health.status_code == 200
        assert customer.json()["id"].startswith("cus_")
    finally:
        await local.stop()
    assert local.process is None
