"""The deployment files stay true to the code: deploy/ and docker-compose.yml.

No container engine is needed. The manifests are parsed and held against what the code
declares: the deployables (entry points `audifi.apps`) and the services with a database
(`audifi.services`), their ports (`DEFAULT_PORTS`), the settings parser (`Settings.from_env`),
the bus's exchange (`audifi_kit.bus.EXCHANGE`), the workspace and its lock.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import importlib.util
import json
import re
import shlex
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from audifi_kit.bus import EXCHANGE
from audifi_kit.chain.devnode import dev_private_key
from audifi_kit.launch import APP_GROUP, deployables, load_app
from audifi_kit.settings import DEFAULT_PORTS, Settings
from audifi_kit.spec import ENTRY_POINT_GROUP as SERVICE_GROUP
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"
HEALTHCHECK = DEPLOY / "healthcheck.py"
COMPOSE = ROOT / "docker-compose.yml"
DEFINITIONS = DEPLOY / "rabbitmq" / "definitions.json"
RABBITMQ_CONF = DEPLOY / "rabbitmq" / "rabbitmq.conf"
POSTGRES_INIT = DEPLOY / "postgres" / "init.sql"

INFRA = ("postgres", "rabbitmq", "redis")
CHAIN_USERS = ("nft", "coin", "payment")  # sign on chain; share compose's development node
# Metadata only: which deployables `audifi serve NAME` can be asked for (nothing imported).
DEPLOYABLES = sorted(deployables())
WITH_DATABASE = sorted({ep.name for ep in entry_points(group=SERVICE_GROUP)})
SHARED_SECRETS = ("DATABASE_URL", "AMQP_URL", "REDIS_URL")
GATEWAY_SETTINGS = ("AUDIFI_RATE_LIMITS", "AUDIFI_CORS_ORIGINS")
AUTH_SETTINGS = ("ADMIN_EMAILS", "ADMIN_WALLETS")
URL_VAR = re.compile(r"AUDIFI_([A-Z0-9]+)_URL")


# --------------------------------------------------------------------------- loading


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def compose_service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}"
    return services[name]


def compose_env(name: str) -> dict[str, str]:
    env = compose_service(name).get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


@cache
def kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


@cache
def k8s_objects() -> dict[tuple[str, str], dict[str, Any]]:
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is None:
                continue
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in objects, f"{path.name}: {key} is defined twice"
            objects[key] = doc
    return objects


def k8s(kind: str, name: str) -> dict[str, Any]:
    found = k8s_objects().get((kind, name))
    assert found is not None, f"deploy/k8s has no {kind} {name!r}"
    return found


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {name: obj for (k, name), obj in k8s_objects().items() if k == kind}


def secret_data(secret: dict[str, Any]) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    return {**data, **(secret.get("stringData") or {})}


@cache
def definitions() -> dict[str, Any]:
    return json.loads(DEFINITIONS.read_text())


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in dockerfile.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    result = []
    for line in logical:
        word, _, rest = line.partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


@cache
def stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages; stage 0 is what precedes the first FROM (global ARGs)."""
    found: list[list[tuple[str, str]]] = [[]]
    for instruction in instructions(DOCKERFILE.read_text()):
        if instruction[0] == "FROM":
            found.append([])
        found[-1].append(instruction)
    return found


def final_stage() -> list[tuple[str, str]]:
    return stages()[-1]


def global_args() -> dict[str, str]:
    args = {}
    for word, rest in stages()[0]:
        if word == "ARG" and "=" in rest:
            key, value = rest.split("=", 1)
            args[key] = value.strip("\"'")
    return args


def expand(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), m.group(0)), text)


def env_instructions(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in stage:
        if word == "ENV":
            for token in shlex.split(rest):
                key, _, value = token.partition("=")
                env[key] = value
    return env


def load_healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audifi_deploy_healthcheck", HEALTHCHECK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- the code's side


def test_the_deployables_are_discovered() -> None:
    assert DEPLOYABLES, f"no entry points in group {APP_GROUP!r}: is the workspace synced?"
    assert DEPLOYABLES == sorted({ep.name for ep in entry_points(group=APP_GROUP)})
    assert set(WITH_DATABASE) <= set(DEPLOYABLES)


@pytest.mark.parametrize("name", DEPLOYABLES)
def test_every_deployable_loads_as_the_app_it_is_named_after(name: str) -> None:
    """What `audifi serve NAME` does first in the container: a failure here is a crash loop."""
    assert load_app(name).name == name


def test_every_deployable_has_a_default_port() -> None:
    assert set(DEPLOYABLES) == set(DEFAULT_PORTS)
    assert len(set(DEFAULT_PORTS.values())) == len(DEFAULT_PORTS), "two deployables, one port"


# --------------------------------------------------------------------------- Dockerfile


def test_image_is_python_3_11_slim_matching_the_workspace() -> None:
    assert len(stages()) >= 3, "a multi-stage build: build, then runtime"
    bases = {expand(stage[0][1].split()[0], global_args()) for stage in stages()[1:]}
    assert bases == {"python:3.11-slim"}
    version = bases.pop().split(":")[1].removesuffix("-slim")
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert f"{version}.0" in SpecifierSet(root["project"]["requires-python"])


def test_uv_comes_from_pypi_and_syncs_the_locked_workspace_without_dev() -> None:
    text = " ".join(f"{word} {rest}" for stage in stages() for word, rest in stage)
    assert not re.search(r"\b(curl|wget)\b", text), "no installer downloads: uv comes from PyPI"
    runs = [rest for stage in stages() for word, rest in stage if word == "RUN"]
    assert any(re.search(r"\bpip install\b.*[\"']?uv==", run) for run in runs)
    syncs = [run for run in runs if "uv sync" in run]
    assert syncs and all("--frozen" in s and "--no-dev" in s for s in syncs)
    last_sync = syncs[-1]
    assert "--no-install-workspace" not in last_sync and "--no-install-project" not in last_sync
    build_env = env_instructions(stages()[1])
    assert build_env.get("UV_PROJECT_ENVIRONMENT") == "/app/.venv"
    copies = [rest for word, rest in final_stage() if word == "COPY"]
    assert any(c.startswith("--from=") and "/app/.venv /app/.venv" in c for c in copies)


def test_every_workspace_member_is_in_the_dependency_layer() -> None:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members = sorted(
        path.parent.relative_to(ROOT).as_posix()
        for pattern in root["tool"]["uv"]["workspace"]["members"]
        for path in ROOT.glob(f"{pattern}/pyproject.toml")
    )
    copied = {
        rest.split()[0]
        for stage in stages()
        for word, rest in stage
        if word == "COPY" and not rest.startswith("--")
    }
    assert members
    missing = [m for m in members if f"{m}/pyproject.toml" not in copied]
    assert not missing, f"deploy/Dockerfile does not COPY these members' pyproject.toml: {missing}"


def test_runtime_has_libpq_when_psycopg_is_the_pure_python_build() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    names = {package["name"] for package in lock["package"]}
    if "psycopg" in names and not names & {"psycopg-binary", "psycopg-c"}:
        runs = " ".join(rest for word, rest in final_stage() if word == "RUN")
        assert re.search(r"apt-get install .*\blibpq5\b", runs)


def test_runtime_runs_as_a_numeric_non_root_user_listening_on_all_interfaces() -> None:
    users = [rest for word, rest in final_stage() if word == "USER"]
    assert users, "the runtime stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric and not root, for runAsNonRoot"
    env = env_instructions(final_stage())
    assert env.get("AUDIFI_HOST") == "0.0.0.0"
    assert "/app/.venv/bin" in env.get("PATH", "")


def test_entrypoint_serves_the_deployable_named_by_SERVICE() -> None:
    entrypoints = [rest for word, rest in final_stage() if word == "ENTRYPOINT"]
    assert entrypoints
    argv = json.loads(entrypoints[-1])
    if argv[:2] in (["/bin/sh", "-c"], ["sh", "-c"]):
        argv = shlex.split(argv[2])
    if argv[0] == "exec":
        argv = argv[1:]
    assert argv[:2] == ["audifi", "serve"]
    assert len(argv) == 3 and re.fullmatch(r"\$\{?SERVICE\b.*\}?", argv[2]), argv


def test_healthcheck_is_python_against_health() -> None:
    checks = [rest for word, rest in final_stage() if word == "HEALTHCHECK"]
    assert checks
    command = checks[-1].split(" CMD ", 1)[1]
    argv = json.loads(command)
    assert argv[0] == "python"
    assert argv[1] == healthcheck_path_in_image()
    assert argv[2:] == ["/health"]


def test_image_carries_the_compiled_contracts_where_the_settings_point() -> None:
    copies = [rest.split() for word, rest in final_stage() if word == "COPY"]
    target = next(dst for src, dst, *_ in copies if src == "contracts-abi/build")
    env = env_instructions(final_stage())
    assert Settings.from_env(env).contracts_dir == Path(target)
    assert env["AUDIFI_CONTRACTS_DIR"] == target


def healthcheck_path_in_image() -> str:
    for word, rest in final_stage():
        if word == "COPY" and rest.split()[0] == "deploy/healthcheck.py":
            return rest.split()[1]
    raise AssertionError("deploy/healthcheck.py is not copied into the runtime stage")


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule (simplified): the last pattern matching the path or one of
    its parent directories decides; `!` re-includes."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        variants = [pattern] + ([pattern[3:]] if pattern.startswith("**/") else [])
        if any(fnmatch.fnmatchcase(p, v) for p in prefixes for v in variants):
            verdict = not negate
    return verdict


def test_dockerignore_sends_what_the_build_copies_and_nothing_local() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    needed = ["pyproject.toml", "uv.lock", "deploy/healthcheck.py"]
    needed += [p.relative_to(ROOT).as_posix() for p in (ROOT / "contracts-abi/build").glob("*")]
    for tree in ("libs", "services"):
        for member in sorted((ROOT / tree).iterdir()):
            if (member / "pyproject.toml").exists():
                needed.append(f"{tree}/{member.name}/pyproject.toml")
                needed += [
                    p.relative_to(ROOT).as_posix()
                    for p in (member / "src").rglob("*.py")
                    if "__pycache__" not in p.parts
                ]
    wrongly = [p for p in needed if _ignored(p, patterns)]
    assert not wrongly, f"ignored but needed by the build: {wrongly[:10]}"
    local = [
        ".venv/bin/python",
        "var/postgres/data/PG_VERSION",
        ".git/HEAD",
        "libs/kit/src/audifi_kit/__pycache__/cli.cpython-311.pyc",
        "libs/kit/tests/test_bus.py",
        "docker-compose.yml",
        "contracts-abi/node_modules/solc/package.json",
        "contracts-abi/src/MasterShares.sol",
        "services/nft/build/lib/audifi_nft/app.py",
    ]
    sent = [p for p in local if not _ignored(p, patterns)]
    assert not sent, f"sent to the build context: {sent}"


# --------------------------------------------------------------------------- healthcheck.py


class _Probe(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = {"/health": 200, "/ready": 503}.get(self.path, 404)
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def probe_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Probe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_healthcheck_asks_the_port_of_SERVICE(
    probe_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = load_healthcheck()
    monkeypatch.setenv("SERVICE", "nft")
    monkeypatch.setenv("AUDIFI_NFT_PORT", str(probe_port))
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # a loopback probe ignores proxies
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    assert check.main(["healthcheck.py", "/health"]) == 0
    assert check.main(["healthcheck.py"]) == 0
    assert check.main(["healthcheck.py", "/ready"]) == 1
    monkeypatch.setenv("SERVICE", "no-such-service")
    assert check.main(["healthcheck.py", "/health"]) == 1
    monkeypatch.delenv("SERVICE")
    assert check.main(["healthcheck.py", "/health"]) == 1


def test_healthcheck_fails_when_nothing_listens() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"SERVICE": "gateway", "AUDIFI_GATEWAY_PORT": str(port), "PATH": ""}
    done = subprocess.run(
        [sys.executable, str(HEALTHCHECK), "/health"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert f"127.0.0.1:{port}/health" in done.stderr


# --------------------------------------------------------------------------- docker-compose.yml


def test_compose_runs_exactly_the_deployables_and_the_servers() -> None:
    assert set(compose()["services"]) == set(DEPLOYABLES) | set(INFRA) | {"chain", "stripe"}


def test_compose_payment_talks_to_the_local_stripe_which_signs_webhooks_for_the_gateway() -> None:
    stripe = compose_service("stripe")
    assert stripe["image"] == compose_service(DEPLOYABLES[0])["image"]
    command = stripe["entrypoint"]
    assert command[:3] == ["python", "-m", "audifi_stripe_local"]
    port = Settings.from_env(compose_env("stripe")).stripe_local_port
    assert f"--port={port}" in command
    gateway_port = Settings.from_env(compose_env("gateway")).port("gateway")
    assert f"--webhook-url=http://gateway:{gateway_port}/api/v1/stripe/webhook" in command
    env = compose_env("payment")
    assert f"--webhook-secret={env['STRIPE_WEBHOOK_SECRET']}" in command
    assert env["STRIPE_API_BASE"] == f"http://stripe:{port}"
    assert compose_service("payment")["depends_on"]["stripe"]["condition"] == "service_healthy"
    assert stripe["healthcheck"]["test"][1:] == ["python", healthcheck_path_in_image(), "/healthz"]
    assert [n for n in DEPLOYABLES if load_app(n).uses_stripe] == ["payment"]


def test_compose_chain_is_the_development_node_from_the_one_image() -> None:
    node = compose_service("chain")
    assert node["image"] == compose_service(DEPLOYABLES[0])["image"]
    assert node["entrypoint"] == ["audifi", "chain", "node"]
    settings = Settings.from_env(compose_env("chain"))
    assert settings.host == "0.0.0.0"
    assert node["healthcheck"]["test"][1:] == ["python", healthcheck_path_in_image(), "/health"]
    assert compose_env("chain")["SERVICE"] == "chain"  # the healthcheck's port: the node's


@pytest.mark.parametrize("name", CHAIN_USERS)
def test_compose_chain_users_share_the_node_and_sign_with_their_own_keys(name: str) -> None:
    settings = Settings.from_env(compose_env(name))
    node_port = Settings.from_env(compose_env("chain")).chain_node_port
    assert settings.chain_rpc_url == f"http://chain:{node_port}"
    assert settings.chain_deployment == f"http://chain:{node_port}/deployment"
    assert settings.chain_private_key == dev_private_key(name)
    assert compose_service(name)["depends_on"]["chain"]["condition"] == "service_healthy"
    assert load_app(name).uses_chain


def test_only_the_chain_users_get_a_chain() -> None:
    users = {name for name in DEPLOYABLES if load_app(name).uses_chain}
    assert users == set(CHAIN_USERS)
    for name in set(DEPLOYABLES) - users:
        assert "CHAIN_PRIVATE_KEY" not in compose_env(name), name


def test_compose_servers_have_their_images_and_healthchecks() -> None:
    images = {name: compose_service(name)["image"] for name in INFRA}
    assert images["postgres"].split(":")[1].split(".")[0] == "16"
    assert images["rabbitmq"] == "rabbitmq:3.13-management"
    assert images["redis"].split(":")[1].split(".")[0] == "7"
    for name in INFRA:
        assert compose_service(name).get("healthcheck", {}).get("test"), name
    assert "pg_isready" in " ".join(compose_service("postgres")["healthcheck"]["test"])


@pytest.mark.parametrize("name", DEPLOYABLES)
def test_compose_builds_each_deployable_from_the_one_image(name: str) -> None:
    service = compose_service(name)
    build = service["build"]
    assert (ROOT / build["context"]).resolve() == ROOT
    assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    assert compose_env(name)["SERVICE"] == name
    assert service["image"] == compose_service(DEPLOYABLES[0])["image"]


@pytest.mark.parametrize("name", DEPLOYABLES)
def test_compose_settings_reach_the_compose_services(name: str) -> None:
    env = compose_env(name)
    settings = Settings.from_env(env)
    assert settings.host == "0.0.0.0"
    for url, server in (
        (settings.database_url, "postgres"),
        (settings.amqp_url, "rabbitmq"),
        (settings.redis_url, "redis"),
    ):
        assert url and urlsplit(url).hostname == server, (name, url)
    for var in env:
        match = URL_VAR.fullmatch(var)
        if match:
            assert match.group(1).lower() in DEPLOYABLES, f"{name}: {var} names no deployable"
    for other in DEPLOYABLES:
        assert other in settings.urls, f"{name}: AUDIFI_{other.upper()}_URL is not set"
        listens_on = Settings.from_env(compose_env(other)).port(other)
        assert settings.service_url(other) == f"http://{other}:{listens_on}"
    assert settings.auth_jwks_url.startswith(f"http://auth:{DEFAULT_PORTS['auth']}/")


@pytest.mark.parametrize("name", DEPLOYABLES)
def test_compose_waits_for_healthy_dependencies_and_probes_readiness(name: str) -> None:
    service = compose_service(name)
    depends = service["depends_on"]
    assert isinstance(depends, dict)
    needed = set(INFRA) | ({*DEPLOYABLES} - {"gateway"} if name == "gateway" else set())
    for dependency in needed:
        assert depends.get(dependency, {}).get("condition") == "service_healthy", dependency
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "python"
    assert test[2] == healthcheck_path_in_image()
    assert test[3] in ("/health", "/ready")


def _published(port_spec: Any) -> tuple[int, int]:
    if isinstance(port_spec, dict):
        return int(port_spec["published"]), int(port_spec["target"])
    parts = str(port_spec).split("/")[0].split(":")
    return int(parts[-2]), int(parts[-1])


def test_compose_publishes_the_gateway_on_its_port() -> None:
    port = Settings.from_env(compose_env("gateway")).port("gateway")
    published = [_published(p) for p in compose_service("gateway").get("ports", [])]
    assert (8080, port) in published
    for name in set(DEPLOYABLES) - {"gateway"}:
        assert not compose_service(name).get("ports"), f"{name} is reached through the gateway"


def test_compose_gateway_and_auth_settings_are_present() -> None:
    for var in GATEWAY_SETTINGS:
        assert compose_env("gateway").get(var), var
    for var in AUTH_SETTINGS:
        assert var in compose_env("auth"), var


def test_compose_credentials_match_the_servers() -> None:
    database = urlsplit(compose_env(DEPLOYABLES[0])["DATABASE_URL"])
    postgres = compose_env("postgres")
    assert unquote(database.username or "") == postgres["POSTGRES_USER"]
    assert unquote(database.password or "") == postgres["POSTGRES_PASSWORD"]
    amqp = urlsplit(compose_env(DEPLOYABLES[0])["AMQP_URL"])
    vhost = unquote(amqp.path[1:]) or "/"
    user = unquote(amqp.username or "")
    assert_rabbit_user(user, unquote(amqp.password or ""), vhost)


def _bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """target -> source for the service's bind mounts (short syntax `./src:target[:ro]`)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = (
            (volume["source"], volume["target"])
            if isinstance(volume, dict)
            else (
                volume.split(":")[0],
                volume.split(":")[1],
            )
        )
        if source.startswith((".", "/")):
            mounts[target] = (ROOT / source).resolve()
    return mounts


def test_compose_mounts_exist_and_rabbitmq_loads_the_definitions() -> None:
    for name in compose()["services"]:
        for target, source in _bind_mounts(compose_service(name)).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) is missing"
    mounts = _bind_mounts(compose_service("rabbitmq"))
    conf_targets = [t for t, s in mounts.items() if s == RABBITMQ_CONF.resolve()]
    assert conf_targets and all(
        t == "/etc/rabbitmq/rabbitmq.conf" or re.fullmatch(r"/etc/rabbitmq/conf\.d/.+\.conf", t)
        for t in conf_targets
    ), conf_targets
    load = re.findall(r"^\s*load_definitions\s*=\s*(\S+)", RABBITMQ_CONF.read_text(), re.M)
    assert len(load) == 1
    assert mounts.get(load[0]) == DEFINITIONS.resolve()
    init = [t for t, s in _bind_mounts(compose_service("postgres")).items() if s.suffix == ".sql"]
    assert all(t.startswith("/docker-entrypoint-initdb.d/") for t in init)


# --------------------------------------------------------------------------- RabbitMQ


def assert_rabbit_user(user: str, password: str, vhost: str) -> None:
    users = {u["name"]: u for u in definitions()["users"]}
    assert user in users, f"definitions.json has no user {user!r}"
    entry = users[user]
    assert "password" not in entry, "a hash, never the password itself"
    assert entry["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    raw = base64.b64decode(entry["password_hash"])
    salt, digest = raw[:4], raw[4:]
    assert hashlib.sha256(salt + password.encode()).digest() == digest, "password mismatch"
    granted = [p for p in definitions()["permissions"] if p["user"] == user and p["vhost"] == vhost]
    assert granted and all(granted[0][k] == ".*" for k in ("configure", "write", "read"))


def test_definitions_declare_the_kits_exchange_as_durable_topic() -> None:
    vhosts = {v["name"] for v in definitions()["vhosts"]}
    assert "/" in vhosts
    exchanges = {(e["vhost"], e["name"]): e for e in definitions()["exchanges"]}
    exchange = exchanges.get(("/", EXCHANGE))
    assert exchange is not None, f"{EXCHANGE!r} is not declared"
    # Must equal what RabbitBus.connect declares, or the broker refuses its declaration.
    assert exchange["type"] == "topic"
    assert exchange["durable"] is True
    assert exchange["auto_delete"] is False
    assert exchange["internal"] is False
    assert not exchange.get("arguments")


def test_definitions_leave_queues_to_the_consumers() -> None:
    """Queues (quorum, retry, parking) are declared by the code; a different declaration here
    would make the consumer's own fail with PRECONDITION_FAILED."""
    assert definitions().get("queues", []) == []
    assert definitions().get("bindings", []) == []


# --------------------------------------------------------------------------- PostgreSQL


def test_postgres_init_creates_every_services_database() -> None:
    created = set(re.findall(r"CREATE DATABASE (\w+)", POSTGRES_INIT.read_text()))
    settings = Settings.from_env(compose_env(DEPLOYABLES[0]))
    assert created == {settings.database_name(name) for name in WITH_DATABASE}


# --------------------------------------------------------------------------- Kubernetes


def test_kustomization_lists_every_manifest_and_one_namespace() -> None:
    listed = kustomization()["resources"]
    on_disk = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk
    namespace = kustomization()["namespace"]
    assert set(of_kind("Namespace")) == {namespace}
    assert [image["name"] for image in kustomization().get("images", [])] == ["audifi"]


def test_k8s_has_exactly_one_deployment_and_service_per_deployable() -> None:
    assert set(of_kind("Deployment")) == set(DEPLOYABLES)
    assert set(of_kind("Service")) == set(DEPLOYABLES)


def container_of(name: str) -> dict[str, Any]:
    containers = k8s("Deployment", name)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def pod_env(name: str) -> dict[str, str]:
    """Every variable the deployable's container sees (values of secrets included)."""
    container = container_of(name)
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(k8s("ConfigMap", source["configMapRef"]["name"])["data"])
        if "secretRef" in source:
            env.update(secret_data(k8s("Secret", source["secretRef"]["name"])))
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
        elif "secretKeyRef" in var["valueFrom"]:
            ref = var["valueFrom"]["secretKeyRef"]
            data = secret_data(k8s("Secret", ref["name"]))
            assert ref["key"] in data, f"{name}: secret {ref['name']} has no {ref['key']}"
            env[var["name"]] = data[ref["key"]]
        elif "configMapKeyRef" in var["valueFrom"]:
            ref = var["valueFrom"]["configMapKeyRef"]
            env[var["name"]] = k8s("ConfigMap", ref["name"])["data"][ref["key"]]
    return env


def container_port(name: str, ref: int | str) -> int:
    for port in container_of(name)["ports"]:
        if ref in (port.get("name"), port["containerPort"]):
            return int(port["containerPort"])
    raise AssertionError(f"{name}: no container port {ref!r}")


@pytest.mark.parametrize("name", DEPLOYABLES)
def test_k8s_deployment_runs_the_deployable_on_its_port_with_probes(name: str) -> None:
    container = container_of(name)
    assert container["image"].split(":")[0] == "audifi"
    env = pod_env(name)
    assert env["SERVICE"] == name
    listens_on = Settings.from_env(env).port(name)
    assert [p["containerPort"] for p in container["ports"]] == [listens_on]
    for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/ready")):
        get = container[probe]["httpGet"]
        assert get["path"] == path, (name, probe)
        assert container_port(name, get["port"]) == listens_on
    startup = container.get("startupProbe")
    if startup:
        assert startup["httpGet"]["path"] == "/health"


@pytest.mark.parametrize("name", DEPLOYABLES)
def test_k8s_deployment_is_bounded_and_unprivileged(name: str) -> None:
    pod = k8s("Deployment", name)["spec"]["template"]["spec"]
    container = container_of(name)
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), (name, kind)
    non_root = container.get("securityContext", {}).get(
        "runAsNonRoot", pod.get("securityContext", {}).get("runAsNonRoot")
    )
    assert non_root is True
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    if security.get("readOnlyRootFilesystem"):
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        assert "/tmp" in mounts, "a read-only root needs a writable /tmp"


@pytest.mark.parametrize("name", DEPLOYABLES)
def test_k8s_service_selects_the_deployment_on_its_port(name: str) -> None:
    deployment = k8s("Deployment", name)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = k8s("Service", name)
    assert service["spec"]["selector"].items() <= labels.items()
    for other in set(DEPLOYABLES) - {name}:
        other_labels = k8s("Deployment", other)["spec"]["template"]["metadata"]["labels"]
        assert not service["spec"]["selector"].items() <= other_labels.items()
    listens_on = Settings.from_env(pod_env(name)).port(name)
    (port,) = service["spec"]["ports"]
    assert port["port"] == listens_on
    assert container_port(name, port.get("targetPort", port["port"])) == listens_on


@pytest.mark.parametrize("name", DEPLOYABLES)
def test_k8s_settings_reach_the_cluster_services(name: str) -> None:
    env = pod_env(name)
    settings = Settings.from_env(env)
    assert settings.host == "0.0.0.0"
    for var in SHARED_SECRETS:
        assert env.get(var), f"{name} gets no {var}"
    namespace = kustomization()["namespace"]
    for var in env:
        match = URL_VAR.fullmatch(var)
        if match:
            assert match.group(1).lower() in DEPLOYABLES, f"{var} names no deployable"
    for other in DEPLOYABLES:
        assert other in settings.urls, f"{name}: AUDIFI_{other.upper()}_URL is not set"
        url = urlsplit(settings.service_url(other))
        host = (url.hostname or "").split(".")
        assert host[0] == other and (len(host) == 1 or host[1] == namespace), url.geturl()
        assert url.port == k8s("Service", host[0])["spec"]["ports"][0]["port"]


def test_k8s_config_is_all_strings_and_has_the_gateway_and_auth_settings() -> None:
    for name, config in of_kind("ConfigMap").items():
        for key, value in config["data"].items():
            assert isinstance(value, str), f"ConfigMap {name}: {key} must be a string"
    for var in GATEWAY_SETTINGS:
        assert pod_env("gateway").get(var), var
    for var in AUTH_SETTINGS:
        assert var in pod_env("auth"), var


def test_k8s_secrets_are_placeholders_and_the_signing_key_reaches_auth_only() -> None:
    values = {k: v for s in of_kind("Secret").values() for k, v in secret_data(s).items()}
    assert set(values) >= {*SHARED_SECRETS, "JWT_PRIVATE_KEY"}
    for key, value in values.items():
        assert "REPLACE-ME" in value, f"{key}: only an obvious placeholder may be committed"
    for name in DEPLOYABLES:
        assert ("JWT_PRIVATE_KEY" in pod_env(name)) == (name == "auth"), name
    for config in of_kind("ConfigMap").values():
        assert not set(config["data"]) & {*SHARED_SECRETS, "JWT_PRIVATE_KEY"}


@pytest.mark.parametrize("name", DEPLOYABLES)
def test_k8s_chain_settings_reach_the_chain_users_only(name: str) -> None:
    env = pod_env(name)
    if name not in CHAIN_USERS:
        assert "CHAIN_PRIVATE_KEY" not in env and "CHAIN_RPC_URL" not in env
        return
    settings = Settings.from_env(env)
    assert settings.chain_rpc_url and settings.chain_private_key, name
    assert f"{name}-operator" in settings.chain_private_key  # its own key, not a shared one
    mounts = {m["name"]: m["mountPath"] for m in container_of(name)["volumeMounts"]}
    volumes = {v["name"]: v for v in k8s("Deployment", name)["spec"]["template"]["spec"]["volumes"]}
    deployment_file = Path(settings.chain_deployment or "")
    (volume,) = [v for v, path in mounts.items() if Path(path) == deployment_file.parent]
    assert volumes[volume]["configMap"]["name"] == "audifi-chain-deployment"


@pytest.mark.parametrize("name", DEPLOYABLES)
def test_a_deployables_own_process_environment_is_set_wherever_it_runs(name: str) -> None:
    """`AppSpec.environment` (vstudio: PYTHONMALLOC=malloc) is read by the interpreter before
    any code runs: `make up` passes it, and compose and k8s must say the same."""
    wanted = load_app(name).environment
    compose, pod = compose_env(name), pod_env(name)
    assert {k: compose.get(k) for k in wanted} == dict(wanted)
    assert {k: pod.get(k) for k in wanted} == dict(wanted)


def test_vstudio_runs_with_glibcs_allocator() -> None:
    assert load_app("vstudio").environment == {"PYTHONMALLOC": "malloc"}
