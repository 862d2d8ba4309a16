"""`GET /.well-known/jwks.json`: the public keys every verifier of access tokens reads."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.datastructures import State

from audifi_auth.adapters.signing_keys import SigningKeys

KEYS_STATE_KEY = "signing_keys"


@get("/.well-known/jwks.json", opt={"public": True}, sync_to_thread=False)
def jwks(state: State) -> Response[dict[str, Any]]:
    keys: SigningKeys = state[KEYS_STATE_KEY]
    # Verifiers cache by kid and refetch on an unknown one, so a short max-age is enough.
    return Response(keys.jwks(), headers={"Cache-Control": "public, max-age=300"})
