"""Waiting in tests: poll a condition until it holds or a deadline passes, then fail saying what.

One place for the deadline (``TIMEOUT``, scaled by ``PB_TEST_TIMEOUT_SCALE`` on slow machines)
and the polling interval, so no test sleeps as synchronisation: it polls what it waits for.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

from tests.conftest import TIMEOUT

__all__ = ["poll", "wait_for"]

#: How often a condition is checked: often enough not to slow a test, not so often as to load it.
INTERVAL_S = 0.02


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    """``predicate()``'s first truthy value; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(INTERVAL_S)


async def poll(check: Callable[[], Any], what: str, wait_s: float = TIMEOUT) -> Any:
    """The asyncio form: ``check`` may be a plain or an async function."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {wait_s:g} s waiting for {what}")
        await asyncio.sleep(INTERVAL_S)
