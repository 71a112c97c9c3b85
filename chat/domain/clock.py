"""Time as an injectable dependency, so tests can drive it where it matters."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]
"""Seconds since the epoch."""


def system_clock() -> float:
    return time.time()


def now_ms(clock: Clock) -> int:
    return int(clock() * 1000)
