"""A service's own secret key: from the environment, else made once and kept on the machine.

For secrets a service derives things from (vstudio's voter pseudonyms, the lottery's round
seeds): `service_key(settings, "AUDIFI_..._KEY", "file-name.key")` reads the variable (hex;
every replica must be given the same) or, unset, a key made on first use and kept in the
settings' var_dir (a single machine: `make run`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from audifi_kit.settings import Settings

MIN_KEY_BYTES = 16


def service_key(settings: Settings, env: str, file_name: str) -> bytes:
    configured = settings.extra.get(env) or os.environ.get(env)
    if configured:
        key = bytes.fromhex(configured)
        if len(key) < MIN_KEY_BYTES:
            raise RuntimeError(f"{env} must be at least {MIN_KEY_BYTES} bytes (hex)")
        return key
    path = Path(settings.var_dir) / file_name
    if not path.exists():
        # Written aside, then linked into place: a replica starting at the same moment reads
        # either no file or a whole key, and the first link made is everyone's key.
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(f".{file_name}.{secrets.token_hex(8)}")
        aside.write_text(secrets.token_hex(32))
        try:
            with contextlib.suppress(FileExistsError):
                os.link(aside, path)
        finally:
            aside.unlink()
    key = bytes.fromhex(path.read_text().strip())
    if len(key) < MIN_KEY_BYTES:
        raise RuntimeError(f"{path} holds no key: remove it or set {env}")
    return key
