"""Python's recursion limit, put back after a chain library raised it on import.

py_ecc sets it to 100,000 when imported (web3 and eth_account import it) and py-evm to 12,288
(twelve Python frames for each of the EVM's 1,024 call-depth levels). A limit that high no
longer guards anything: C code that recurses once per nesting level, msgspec's JSON decoder
among them, overflows the C stack long before it and the process dies with SIGSEGV (a
50,000-deep JSON array did) instead of raising `RecursionError`.

What this stack really needs is far below Python's default of 1,000: the chain tests peak at
54 frames (our contracts make one nested call at most), py_ecc's deepest recursion
(`FQ.__pow__`, one frame per exponent bit) about 256, and a BN128 or BLS12-381 pairing still
completes with 700 frames already on the stack. Only an EVM call chain more than about 70
calls deep would need more; none of the platform's contracts nests calls like that.

`audifi_kit.chain` restores the limit right after it imports the chain stack; `serve` restores
it again once every app is built, for processes (auth) that import eth_account on their own.
This module imports nothing heavy.
"""

from __future__ import annotations

import sys

PYTHON_DEFAULT_LIMIT = 1000
# What py-evm and py_ecc set; a limit found at one of these was raised by an import of them,
# not chosen by the process.
SET_BY_LIBRARIES = frozenset({12_288, 100_000})


def restore_recursion_limit(before: int | None = None) -> None:
    """Set the limit back to `before` (default: the current one), or Python's default if a
    chain library had set it."""
    limit = sys.getrecursionlimit() if before is None else before
    if limit in SET_BY_LIBRARIES:
        limit = PYTHON_DEFAULT_LIMIT
    sys.setrecursionlimit(max(limit, PYTHON_DEFAULT_LIMIT))


__all__ = ["PYTHON_DEFAULT_LIMIT", "SET_BY_LIBRARIES", "restore_recursion_limit"]
