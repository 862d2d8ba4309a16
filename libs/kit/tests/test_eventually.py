"""`audifi_kit.testing.eventually`: the one polling helper every suite waits with."""

from __future__ import annotations

import itertools
import time

import pytest
from audifi_kit.testing import eventually, eventually_sync


async def test_it_returns_the_first_truthy_answer_of_a_sync_or_async_check() -> None:
    calls = itertools.count(1)
    assert await eventually(lambda: (n := next(calls)) >= 3 and n) == 3

    answers = iter([[], None, ["mail"]])

    async def mailbox() -> list[str] | None:
        return next(answers)

    assert await eventually(mailbox) == ["mail"]


async def test_an_assertion_means_not_yet() -> None:
    calls = itertools.count(1)

    def check() -> int:
        n = next(calls)
        assert n >= 3, f"only {n}"
        return n

    assert await eventually(check) == 3


async def test_it_fails_in_time_naming_the_last_answer() -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"the inbox: not met within 0.2s; last answer: \[\]"):
        await eventually(lambda: [], within=0.2, what="the inbox")
    assert time.monotonic() - started < 2

    def refuses() -> None:
        raise AssertionError("still 1 of 2")

    with pytest.raises(AssertionError, match="last answer: AssertionError: still 1 of 2"):
        await eventually(refuses, within=0.1)


async def test_another_exception_fails_at_once() -> None:
    calls = itertools.count(1)

    def broken() -> None:
        next(calls)
        raise KeyError("boom")

    with pytest.raises(KeyError):
        await eventually(broken)
    assert next(calls) == 2


def test_the_sync_twin_waits_the_same_way() -> None:
    calls = itertools.count(1)
    assert eventually_sync(lambda: (n := next(calls)) >= 2 and n, every=0.01) == 2
    with pytest.raises(AssertionError, match=r"not met within 0\.1s; last answer: 0"):
        eventually_sync(lambda: 0, within=0.1, every=0.01)
