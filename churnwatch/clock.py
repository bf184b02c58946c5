"""Wall-clock helpers, in one place so tests and the simulator agree on units."""

from __future__ import annotations

import time

MILLIS_PER_SECOND = 1000


def now_ms() -> int:
    return int(time.time() * MILLIS_PER_SECOND)


def days_to_ms(days: float, day_seconds: float) -> int:
    """A duration in (possibly compressed) days as milliseconds."""
    return int(days * day_seconds * MILLIS_PER_SECOND)


def ms_to_days(millis: float, day_seconds: float) -> float:
    return millis / (day_seconds * MILLIS_PER_SECOND)
