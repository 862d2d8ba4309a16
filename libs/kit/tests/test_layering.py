"""The layers hold (issue 10), read from the source's syntax tree, not from a grep:

* a service's `domain/` and `application*` modules import no web framework, database driver,
  broker client or HTTP client — nor `audifi_kit.http`, which is Litestar by another name;
* the kit's chain adapter and runtime, and the web-free modules the layers share (the error
  vocabulary, the field rules, metrics, readiness, app state keys, the media port and its
  adapters), import no `audifi_kit.http` and no Litestar. `chain/devnode.py` is exempt: it
  is a web app (a JSON-RPC node over HTTP), not the adapter, and nothing of the adapter
  imports it.

Every import counts: at module level, inside a function, or under `TYPE_CHECKING` (the module
is still written against that layer).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
KIT = ROOT / "libs" / "kit" / "src" / "audifi_kit"

# Infrastructure a domain or an application is handed through a port, never imports.
INFRASTRUCTURE = ("litestar", "asyncpg", "psycopg", "psycopg_pool", "aio_pika", "httpx")
WEB = ("litestar", "audifi_kit.http")
WEB_FREE_KIT = ("errors.py", "fields.py", "metrics.py", "readiness.py", "app_state.py")
WEB_APPS_IN_CHAIN = {"devnode.py"}


def module_name(path: Path) -> str:
    """`audifi_auth.domain.account` for services/auth/src/audifi_auth/domain/account.py."""
    parts = path.with_suffix("").parts
    top = max(i for i, part in enumerate(parts) if part == "src") + 1
    names = list(parts[top:])
    if names[-1] == "__init__":
        names.pop()
    return ".".join(names)


def imported_modules(
    source: str, module: str, *, is_package: bool = False
) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `source`, the module `module`.

    `from a import b` yields `a.b` as well as `a`: `b` may be a submodule (`from audifi_kit
    import http`). Relative imports are resolved against `module`.
    """
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            found.append((node.lineno, origin))
            found += [(node.lineno, f"{origin}.{alias.name}") for alias in node.names]
    return found


def violations(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted(paths):
        module = module_name(path)
        source = path.read_text(encoding="utf-8")
        is_package = path.name == "__init__.py"
        for line, name in imported_modules(source, module, is_package=is_package):
            if any(name == bad or name.startswith(f"{bad}.") for bad in forbidden):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    return sorted(set(found))


def domain_and_application_modules() -> list[Path]:
    modules: list[Path] = []
    for package in sorted((ROOT / "services").glob("*/src/*")):
        if not package.is_dir():
            continue
        for layer in [package / "domain", *sorted(package.glob("application*"))]:
            if layer.is_file() and layer.suffix == ".py":
                modules.append(layer)
            elif layer.is_dir():
                modules += layer.rglob("*.py")
    return modules


def test_domains_and_applications_import_no_infrastructure() -> None:
    modules = domain_and_application_modules()
    # The scan sees what it must: every service's domain, and auth's application.
    assert {p.parents[1].name for p in modules if p.parent.name == "domain"} >= {"audifi_auth"}
    assert any("application" in p.relative_to(ROOT).as_posix() for p in modules)

    found = violations(modules, (*INFRASTRUCTURE, "audifi_kit.http"))
    assert not found, "a domain or an application imports infrastructure:\n" + "\n".join(found)


def test_the_chain_adapter_the_runtime_and_the_shared_vocabulary_import_no_web() -> None:
    chain = [p for p in (KIT / "chain").glob("*.py") if p.name not in WEB_APPS_IN_CHAIN]
    media = sorted((KIT / "media").glob("*.py"))
    modules = [*chain, *media, KIT / "runtime.py", *(KIT / name for name in WEB_FREE_KIT)]
    assert media and all(p.is_file() for p in modules)

    found = violations(modules, WEB)
    assert not found, "the kit's web-free modules import the web:\n" + "\n".join(found)


def test_no_module_of_the_chain_adapter_imports_the_dev_node() -> None:
    chain = [p for p in (KIT / "chain").glob("*.py") if p.name not in WEB_APPS_IN_CHAIN]
    found = violations(chain, tuple(f"audifi_kit.chain.{p[:-3]}" for p in WEB_APPS_IN_CHAIN))
    assert not found, "\n".join(found)


def test_every_way_of_writing_an_import_is_seen() -> None:
    source = """
import litestar.params
from audifi_kit import http
from audifi_kit.http.errors import envelope
from ..adapters import keys
from . import rules
def later():
    import httpx
if TYPE_CHECKING:
    from asyncpg import Pool
"""
    names = {n for _, n in imported_modules(source, "audifi_auth.domain.account")}
    assert {
        "litestar.params",
        "audifi_kit.http",
        "audifi_kit.http.errors",
        "audifi_auth.adapters.keys",
        "audifi_auth.domain.rules",
        "httpx",
        "asyncpg",
    } <= names
    package = {n for _, n in imported_modules("from .totp import x", "a.domain", is_package=True)}
    assert "a.domain.totp" in package
