"""Settings come from the environment only, parsed once into a typed object (ARCHITECTURE §9)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Settings:
    """What the kit needs to wire one service.

    `database_url` names a PostgreSQL *server*; each service keeps its own database on it,
    `<db_prefix><service>`, created when missing. Unset, an embedded PostgreSQL is started
    under `var_dir`. `amqp_url` unset selects the in-process bus.
    """

    database_url: str | None = None
    amqp_url: str | None = None
    redis_url: str | None = None
    var_dir: Path = Path("var")
    db_prefix: str = "audifi_"
    # Connections of the event store's (psycopg) pool, which also bounds to_thread concurrency.
    pool_size: int = 8
    # Base64 AES key (16, 24 or 32 bytes) encrypting stored event state; unset stores it plain.
    cipher_key: str | None = None
    compress: bool = False
    # Aggregates kept in memory per application. 0 turns it off.
    aggregate_cache_size: int = 1000
    # Whether this process is the only writer of its service's event store (one replica: the
    # embedded platform, compose, the k8s manifests as shipped). Then the cache is the truth
    # and a command reads nothing before it saves; a version conflict (someone wrote after
    # all, e.g. an ops command) evicts the aggregate and the next read loads it. Run replicas
    # with AUDIFI_STORE_SOLE_WRITER=n: every command then first reads the events newer than
    # its cached copy (fast-forward), one more round trip per command.
    sole_writer: bool = True
    # Prefetch per consumer queue: unsettled deliveries in flight.
    prefetch: int = 200
    relay_page_size: int = 500
    poll_interval: float = 1.0
    # A projection behind the log whose runner has not finished a step for this long is
    # stalled (AUDIFI_PROJECTION_STALL_SECONDS): the service's /ready fails. An idle runner
    # steps every poll_interval, so keep it well above that.
    projection_stall_seconds: float = 30.0
    # Where services listen and find each other: AUDIFI_HOST, AUDIFI_<NAME>_PORT and
    # AUDIFI_<NAME>_URL (a service elsewhere, e.g. `http://nft:8102` under compose).
    host: str = "127.0.0.1"
    ports: Mapping[str, int] = field(default_factory=dict)
    urls: Mapping[str, str] = field(default_factory=dict)
    # Auth's JWKS, against which every service verifies access tokens (§7). Unset: auth's own.
    jwks_url: str | None = None
    # Proxies in front of the *gateway* whose X-Forwarded-For names the real client
    # (AUDIFI_TRUSTED_PROXIES, comma-separated addresses or networks, `*` for any): behind a load
    # balancer the gateway then rate-limits per client, not per balancer. Unset: nobody — the
    # header is ignored and the client is the TCP peer, since whoever may set it chooses the
    # address every per-IP limit counts against. uvicorn's FORWARDED_ALLOW_IPS is never read.
    trusted_proxies: str | None = None
    # The addresses the gateway reaches the *services* from (AUDIFI_INTERNAL_PROXIES, same
    # syntax): a service takes the client address from the X-Forwarded-For of these peers only,
    # which auth's per-IP brute-force budgets need. Default loopback, where `make run` and
    # `make up` put the gateway; compose and Kubernetes set their network. The risk: any process
    # that reaches a service port from one of these addresses can claim any client address, so
    # service ports must be reachable only by the gateway (loopback here, a network policy there).
    internal_proxies: str = "127.0.0.1,::1"
    # The sockets one process may hold for connections, over all its servers
    # (AUDIFI_MAX_CONNECTIONS): above it a new connection is answered 503 (WebSocket handshakes
    # too) and closed, before the process runs out of file descriptors. The gateway's
    # connections count twice (each holds an upstream socket as well). Unset: the descriptor
    # limit (raised to its hard limit at start) less a reserve for database pools and files.
    max_connections: int | None = None
    # The chain (ARCHITECTURE.md §6): CHAIN_RPC_URL selects a JSON-RPC node, unset the embedded
    # in-process EVM. CHAIN_PRIVATE_KEY is the hex key the adapter signs with (unset embedded: a
    # funded tester account). CHAIN_CONFIRMATIONS is the indexer's lag and the payment check's
    # default depth; CHAIN_ID, when set, must match the node's or the adapter refuses to start.
    chain_rpc_url: str | None = None
    chain_private_key: str | None = None
    chain_confirmations: int = 0
    chain_id: int | None = None
    # Where the platform's contracts are on CHAIN_RPC_URL's chain: a JSON file or an http(s) URL
    # (`audifi chain deploy` writes it). Embedded, they are deployed at start instead.
    chain_deployment: str | None = None
    # `audifi chain node`'s port: the development chain `make up` runs when CHAIN_RPC_URL is unset.
    chain_node_port: int = 8545
    stripe_local_port: int = 8420
    # Which service operates which platform contract, where it differs from
    # `audifi_kit.chain.platform.DEFAULT_ROLES` (AUDIFI_CHAIN_ROLES: `Contract=service` pairs,
    # comma-separated, e.g. `Lottery=nft`). Read when the contracts are deployed.
    chain_roles: Mapping[str, str] = field(default_factory=dict)
    # The compiled contracts (contracts-abi/build); unset: found from the working directory.
    contracts_dir: Path | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def opt(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        return cls(
            database_url=opt("DATABASE_URL"),
            amqp_url=opt("AMQP_URL"),
            redis_url=opt("REDIS_URL"),
            var_dir=Path(opt("AUDIFI_VAR_DIR") or "var"),
            db_prefix=opt("AUDIFI_DB_PREFIX") or "audifi_",
            pool_size=int(opt("AUDIFI_POOL_SIZE") or 8),
            cipher_key=opt("AUDIFI_CIPHER_KEY"),
            compress=(opt("AUDIFI_COMPRESS") or "").lower() in ("1", "true", "yes", "y"),
            aggregate_cache_size=int(opt("AUDIFI_AGGREGATE_CACHE_SIZE") or 1000),
            sole_writer=(opt("AUDIFI_STORE_SOLE_WRITER") or "y").lower()
            in ("1", "true", "yes", "y"),
            prefetch=int(opt("AUDIFI_PREFETCH") or 200),
            relay_page_size=int(opt("AUDIFI_RELAY_PAGE_SIZE") or 500),
            poll_interval=float(opt("AUDIFI_POLL_INTERVAL") or 1.0),
            projection_stall_seconds=float(opt("AUDIFI_PROJECTION_STALL_SECONDS") or 30.0),
            host=opt("AUDIFI_HOST") or "127.0.0.1",
            ports={
                name: int(value)
                for name in DEFAULT_PORTS
                if (value := opt(f"AUDIFI_{name.upper()}_PORT"))
            },
            urls={
                name: value.rstrip("/")
                for name in DEFAULT_PORTS
                if (value := opt(f"AUDIFI_{name.upper()}_URL"))
            },
            jwks_url=opt("AUDIFI_JWKS_URL"),
            trusted_proxies=opt("AUDIFI_TRUSTED_PROXIES"),
            internal_proxies=opt("AUDIFI_INTERNAL_PROXIES") or "127.0.0.1,::1",
            max_connections=int(m) if (m := opt("AUDIFI_MAX_CONNECTIONS")) else None,
            chain_rpc_url=opt("CHAIN_RPC_URL"),
            chain_private_key=opt("CHAIN_PRIVATE_KEY"),
            chain_confirmations=int(opt("CHAIN_CONFIRMATIONS") or 0),
            chain_id=int(chain_id) if (chain_id := opt("CHAIN_ID")) else None,
            chain_deployment=opt("CHAIN_DEPLOYMENT"),
            chain_node_port=int(opt("AUDIFI_CHAIN_NODE_PORT") or 8545),
            stripe_local_port=int(opt("AUDIFI_STRIPE_LOCAL_PORT") or 8420),
            chain_roles=_pairs("AUDIFI_CHAIN_ROLES", opt("AUDIFI_CHAIN_ROLES")),
            contracts_dir=Path(d) if (d := opt("AUDIFI_CONTRACTS_DIR")) else None,
        )

    def port(self, name: str) -> int:
        """The port service `name` listens on (ARCHITECTURE.md §9)."""
        try:
            return self.ports.get(name) or DEFAULT_PORTS[name]
        except KeyError:
            raise LookupError(f"no port is known for service {name!r}") from None

    def service_url(self, name: str) -> str:
        """Base URL at which the other parts of the platform reach service `name` (the first
        of its replicas when AUDIFI_<NAME>_URL lists several)."""
        return self.service_urls(name)[0]

    def service_urls(self, name: str) -> list[str]:
        """Every replica of service `name`: AUDIFI_<NAME>_URL may list several, comma-separated
        (the gateway spreads clients over them), else the one local URL."""
        configured = [u.strip() for u in self.urls.get(name, "").split(",") if u.strip()]
        return configured or [f"http://{_loopback(self.host)}:{self.port(name)}"]

    @property
    def chain_node_url(self) -> str:
        """Where `audifi chain node` (the development chain of `make up`) answers."""
        return f"http://{_loopback(self.host)}:{self.chain_node_port}"

    @property
    def auth_jwks_url(self) -> str:
        return self.jwks_url or f"{self.service_url('auth')}/.well-known/jwks.json"

    def database_name(self, service: str) -> str:
        return f"{self.db_prefix}{service}"

    def __repr__(self) -> str:  # a secret never reaches a log line
        return (
            f"Settings(database_url={_redact(self.database_url)!r}, "
            f"amqp_url={_redact(self.amqp_url)!r}, redis_url={_redact(self.redis_url)!r}, "
            f"var_dir={str(self.var_dir)!r}, db_prefix={self.db_prefix!r}, "
            f"cipher_key={'set' if self.cipher_key else None}, "
            f"chain_rpc_url={_redact_rpc(self.chain_rpc_url)!r}, "
            f"chain_private_key={'set' if self.chain_private_key else None})"
        )


DEFAULT_PORTS: dict[str, int] = {
    "gateway": 8080,
    "auth": 8101,
    "nft": 8102,
    "vstudio": 8103,
    "coin": 8104,
    "payment": 8105,
    "analytics": 8106,
    "notify": 8107,
}


def _loopback(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _redact(url: str | None) -> str | None:
    if not url or "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def _redact_rpc(url: str | None) -> str | None:
    """Scheme and host only: node providers put the API key in the path or the query."""
    if not url:
        return url
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/***"


def _pairs(name: str, text: str | None) -> dict[str, str]:
    """`key=value` pairs, comma-separated; a malformed one stops the start, naming `name`."""
    pairs: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key or not value:
            raise ValueError(f"{name}: {item.strip()!r} is not a key=value pair")
        pairs[key] = value
    return pairs
