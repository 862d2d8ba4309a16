"""Auth's own settings, read once from the environment beside the kit's `Settings`.

AUTH_INDEX_SECRET     key of the digests that name the e-mail and wallet index aggregates
                      (unset: generated once under <var_dir>/auth/, mode 0600)
ADMIN_EMAILS          comma-separated e-mails that get the admin role at registration/sign-in
ADMIN_WALLETS         comma-separated wallet addresses, likewise
AUDIFI_MAGIC_LINK_URL where magic links point (default: the gateway's /magic-link)
AUTH_SIWE_DOMAIN / AUTH_SIWE_URI / AUTH_SIWE_CHAIN_ID   what wallet challenges name
AUTH_ARGON2_TIME_COST / AUTH_ARGON2_MEMORY_KIB / AUTH_ARGON2_PARALLELISM   password hashing
AUTH_LIMIT_WINDOW_SECONDS, AUTH_LOGIN_MAX_FAILURES, AUTH_LOGIN_MAX_FAILURES_PER_IP,
AUTH_MAGIC_LINK_MAX, AUTH_CHALLENGE_MAX, AUTH_PER_IP_MAX   brute-force limits
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from audifi_kit.settings import Settings

INDEX_SECRET_FILE = Path("auth") / "index-secret"
ACCESS_TOKEN_TTL = timedelta(minutes=15)


def _load_index_secret(env: Mapping[str, str], var_dir: Path) -> bytes:
    configured = env.get("AUTH_INDEX_SECRET", "").strip()
    if configured:
        return configured.encode()
    path = var_dir / INDEX_SECRET_FILE
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as f:
        f.write(value)
    return value


def _csv(env: Mapping[str, str], name: str) -> frozenset[str]:
    return frozenset(v.strip().lower() for v in env.get(name, "").split(",") if v.strip())


@dataclass(frozen=True, slots=True)
class AuthConfig:
    index_secret: bytes
    admin_emails: frozenset[str]
    admin_wallets: frozenset[str]  # lower-cased (EVM) or as given, lower-cased for matching
    magic_link_url: str
    notify_url: str
    siwe_domain: str
    siwe_uri: str
    siwe_chain_id: int
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    access_ttl: timedelta = ACCESS_TOKEN_TTL
    refresh_ttl: timedelta = timedelta(days=30)
    magic_link_ttl: timedelta = timedelta(minutes=15)
    challenge_ttl: timedelta = timedelta(minutes=5)
    two_factor_ttl: timedelta = timedelta(minutes=5)
    limit_window_seconds: int = 300
    login_max_failures: int = 5
    login_max_failures_per_ip: int = 50
    # Wrong second-factor codes in a row, across logins, before the account's 2FA step locks.
    two_factor_max_failures: int = 10
    two_factor_lock: timedelta = timedelta(minutes=15)
    magic_link_max: int = 5
    challenge_max: int = 20
    per_ip_max: int = 100

    @classmethod
    def from_env(cls, settings: Settings, env: Mapping[str, str] | None = None) -> AuthConfig:
        env = os.environ if env is None else env
        gateway = settings.service_url("gateway")
        magic = env.get("AUDIFI_MAGIC_LINK_URL", "").strip() or f"{gateway}/magic-link"
        uri = env.get("AUTH_SIWE_URI", "").strip() or gateway
        domain = env.get("AUTH_SIWE_DOMAIN", "").strip() or (urlsplit(uri).netloc or "audifi")

        def num(name: str, default: int) -> int:
            value = env.get(name, "").strip()
            return int(value) if value else default

        return cls(
            index_secret=_load_index_secret(env, settings.var_dir),
            admin_emails=_csv(env, "ADMIN_EMAILS"),
            admin_wallets=_csv(env, "ADMIN_WALLETS"),
            magic_link_url=magic,
            notify_url=settings.service_url("notify"),
            siwe_domain=domain,
            siwe_uri=uri,
            siwe_chain_id=num("AUTH_SIWE_CHAIN_ID", 1),
            argon2_time_cost=num("AUTH_ARGON2_TIME_COST", 3),
            argon2_memory_kib=num("AUTH_ARGON2_MEMORY_KIB", 65536),
            argon2_parallelism=num("AUTH_ARGON2_PARALLELISM", 4),
            limit_window_seconds=num("AUTH_LIMIT_WINDOW_SECONDS", 300),
            login_max_failures=num("AUTH_LOGIN_MAX_FAILURES", 5),
            login_max_failures_per_ip=num("AUTH_LOGIN_MAX_FAILURES_PER_IP", 50),
            two_factor_max_failures=num("AUTH_2FA_MAX_FAILURES", 10),
            two_factor_lock=timedelta(seconds=num("AUTH_2FA_LOCK_SECONDS", 900)),
            magic_link_max=num("AUTH_MAGIC_LINK_MAX", 5),
            challenge_max=num("AUTH_CHALLENGE_MAX", 20),
            per_ip_max=num("AUTH_PER_IP_MAX", 100),
        )
