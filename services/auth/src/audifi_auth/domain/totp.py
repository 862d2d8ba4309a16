"""Time-based one-time passwords (RFC 6238): which time step a six-digit code belongs to.

Pure computation on the shared secret; the Account decides what a matching step means (and
remembers the last one it accepted, so a code is never accepted twice).
"""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp

# One step either side of now, for the drift between the phone's clock and ours.
DRIFT_STEPS = 1


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, label: str, issuer: str = "AudiFi") -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=label, issuer_name=issuer)


def looks_like_code(code: str) -> bool:
    return code.isdigit() and len(code) == 6


def step_of(secret: str, code: str, now: datetime, *, after: int) -> int | None:
    """The time step near `now`, later than `after`, whose code is `code`; None if none is."""
    if not looks_like_code(code):
        return None
    generator = pyotp.TOTP(secret)
    current = generator.timecode(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if step > after and hmac.compare_digest(generator.generate_otp(step), code):
            return step
    return None
