"""`GET /.well-known/seal-key`: the public key auth seals magic links to."""

from __future__ import annotations

import msgspec
from litestar import get
from litestar.datastructures import State

from audifi_notify.adapters.seal_key import SealKey

SEAL_KEY_STATE = "notify_seal_key"


class SealKeyView(msgspec.Struct, rename="camel"):
    key_id: str
    public_key: str
    algorithm: str = "x25519-sealedbox"


@get("/.well-known/seal-key", opt={"public": True}, sync_to_thread=False)
def seal_key(state: State) -> SealKeyView:
    key: SealKey = state[SEAL_KEY_STATE]
    return SealKeyView(key_id=key.key_id, public_key=key.public_b64)
