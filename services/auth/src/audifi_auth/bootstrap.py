"""The one place auth's application is built: on PostgreSQL for the service, in memory for
tests that need no database.

The kit's runtime (and the ops CLI) open the event store with `spec.application`, calling it
with the event store's environment: `on_postgres` is that builder. It opens the adapters that
do I/O (the key vault, in the service's own database) and hands them to the application,
whose constructor and mapper do none. `in_memory` builds the same application on
eventsourcing's POPO persistence with in-memory twins: the application tests run in
milliseconds.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import timedelta

from audifi_kit.eventstore import IN_MEMORY
from audifi_kit.settings import Settings

from audifi_auth.adapters.key_vault import KeyVault, MemoryKeyVault
from audifi_auth.adapters.postgres_key_vault import PostgresKeyVault
from audifi_auth.application import AuthApplication
from audifi_auth.application.core import Clock
from audifi_auth.config import AuthConfig

ApplicationBuilder = Callable[[Mapping[str, str]], AuthApplication]

# Argon2's lowest costs: hashing stays real, and a test's sign-up takes a millisecond.
TEST_CONFIG = AuthConfig(
    index_secret=b"in-memory index secret",
    admin_emails=frozenset(),
    admin_wallets=frozenset(),
    magic_link_url="http://gateway.test/magic-link",
    notify_url="http://notify.test",
    siwe_domain="audifi.test",
    siwe_uri="https://audifi.test",
    siwe_chain_id=1,
    argon2_time_cost=1,
    argon2_memory_kib=64,
    argon2_parallelism=1,
    two_factor_lock=timedelta(minutes=15),
)


def on_postgres(config: AuthConfig | None = None) -> ApplicationBuilder:
    """The builder the kit calls with the event store's environment (POSTGRES_* names the
    service's database). Without `config` (the ops CLI), it is read from the environment."""

    def build(env: Mapping[str, str]) -> AuthApplication:
        vault = PostgresKeyVault.beside_event_store(env)
        try:
            return AuthApplication(env, vault=vault, config=config or _config_from_environment())
        except BaseException:
            vault.close()
            raise

    return build


def in_memory(
    config: AuthConfig = TEST_CONFIG,
    *,
    vault: KeyVault | None = None,
    clock: Clock | None = None,
) -> AuthApplication:
    """The application on eventsourcing's POPO persistence, with in-memory adapters."""
    return AuthApplication(
        IN_MEMORY,
        vault=vault or MemoryKeyVault(),
        config=config,
        clock=clock,
    )


def _config_from_environment() -> AuthConfig:
    settings = Settings.from_env()
    return AuthConfig.from_env(settings, os.environ)


__all__ = ["TEST_CONFIG", "ApplicationBuilder", "in_memory", "on_postgres"]
