"""Imports the chain libraries that raise the recursion limit, then puts it back.

Imported first by `audifi_kit.chain`; why the limit matters: `audifi_kit.recursion`.
"""

from __future__ import annotations

import sys

from audifi_kit.recursion import PYTHON_DEFAULT_LIMIT, restore_recursion_limit

_before = sys.getrecursionlimit()

import eth  # noqa: E402, F401  (py-evm: raises the limit once, on first import)
import py_ecc  # noqa: E402, F401  (raises it once, on first import)

restore_recursion_limit(_before)

__all__ = ["PYTHON_DEFAULT_LIMIT", "restore_recursion_limit"]
