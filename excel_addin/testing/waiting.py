"""Waiting for something another process does: a training to start, a server to answer, a status to show."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T],
    timeout: float = 120.0,
    what: str | Callable[[], str] = "condition",
    interval: float = 0.1,
) -> T:
    """Call ``condition`` every ``interval`` seconds until it returns something truthy, and return that.

    After ``timeout`` seconds, TimeoutError names ``what`` (a callable: its text then, e.g. a log's end).
    An exception from ``condition`` (a process that exited early) ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"timed out after {timeout:g} s waiting for {what() if callable(what) else what}"
            )
        time.sleep(interval)
