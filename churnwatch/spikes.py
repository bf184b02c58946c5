"""Issue spikes: is a topic reported by one customer, a few, or many? Pure rules, no Beam.

A problem seen by one customer is a ticket, by a few a pattern, by many a recall-level
issue. "Many" is relative to the topic's own history: the count of distinct customers in
the current window is tested against the counts of the topic's trailing windows.

Test (one-sided Poisson tail)::

    lam   = max(mean(baseline counts), baseline_floor)
    p     = P(X >= count | X ~ Poisson(lam))
    MANY  if count >= many_min_customers and p <= many_p_value
    ONE   if count <= 1
    FEW   otherwise

``baseline_floor`` keeps a quiet or brand-new topic (no history: lam = floor) from calling
two reports "many"; ``many_min_customers`` is the absolute minimum a lead wants paged for.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

ONE, FEW, MANY = "ONE", "FEW", "MANY"
MODEL_VERSION = "issue-spikes-poisson-v1"


@dataclass(frozen=True)
class SpikeConfig:
    """Spike windows in customer days (x ``day_seconds``) and the classification thresholds."""

    day_seconds: float = 86400.0
    window_days: float = 2.0
    period_days: float = 1.0
    allowed_lateness_days: float = 3.0
    min_lateness_seconds: float = 60.0  # wall-clock floor, as in AggregateConfig
    baseline_windows: int = 14  # trailing, non-overlapping periods the baseline looks at
    min_baseline_windows: int = 3  # fewer known periods: lam = baseline_floor
    baseline_floor: float = 1.0
    many_min_customers: int = 5
    many_p_value: float = 0.001
    critical_customers: int = 20  # MANY with at least this many customers -> CRITICAL
    example_ids: int = 5

    def __post_init__(self) -> None:
        if self.day_seconds <= 0 or self.window_days <= 0 or self.period_days <= 0:
            raise ValueError("day_seconds, spike window_days and period_days must be positive")
        if self.period_days > self.window_days:
            raise ValueError("spike period_days must not exceed window_days")
        if self.allowed_lateness_days < 0 or self.min_lateness_seconds < 0:
            raise ValueError("spike allowed_lateness_days and min_lateness_seconds must be >= 0")
        if self.baseline_windows < 1 or not 0 <= self.min_baseline_windows <= self.baseline_windows:
            raise ValueError("need baseline_windows >= 1 and 0 <= min_baseline_windows <= it")
        if self.baseline_floor <= 0:
            raise ValueError("spike baseline_floor must be positive")
        if self.many_min_customers < 2:
            raise ValueError("spike many_min_customers must be >= 2 (one customer is ONE)")
        if not 0 < self.many_p_value < 1:
            raise ValueError("spike many_p_value must be within (0, 1)")
        if self.critical_customers < self.many_min_customers or self.example_ids < 1:
            raise ValueError("need critical_customers >= many_min_customers, example_ids >= 1")

    def ms(self, days: float) -> int:
        return int(days * self.day_seconds * 1000)

    @property
    def lateness_seconds(self) -> float:
        return max(self.allowed_lateness_days * self.day_seconds, self.min_lateness_seconds)


def poisson_tail(count: int, lam: float) -> float:
    """P(X >= count) for X ~ Poisson(lam), summed exactly (counts here are small).

    Above the mean the upper terms are summed directly, so a far tail stays a tiny
    positive number instead of ``1 - 0.999...`` rounding to 0.
    """
    if count <= 0:
        return 1.0
    if count <= lam:
        term = math.exp(-lam)  # P(X = 0)
        below = term
        for k in range(1, count):
            term *= lam / k
            below += term
        return min(1.0, max(0.0, 1.0 - below))
    term = math.exp(-lam + count * math.log(lam) - math.lgamma(count + 1))  # P(X = count)
    tail, k = 0.0, count
    while term > tail * 1e-17:
        tail += term
        k += 1
        term *= lam / k
    return min(1.0, tail)


@dataclass(frozen=True)
class Classification:
    level: str  # ONE | FEW | MANY
    count: int
    baseline_mean: float | None  # None when the history was too short
    expected: float  # lam used in the test
    p_value: float


def classify(count: int, baseline: Sequence[int], cfg: SpikeConfig) -> Classification:
    """One, a few or many distinct customers, relative to the topic's trailing windows."""
    if count < 0 or any(c < 0 for c in baseline):
        raise ValueError("counts must be non-negative")
    known = len(baseline) >= cfg.min_baseline_windows and len(baseline) > 0
    mean = sum(baseline) / len(baseline) if known else None
    lam = max(mean if mean is not None else 0.0, cfg.baseline_floor)
    p = poisson_tail(count, lam)
    if count <= 1:
        level = ONE
    elif count >= cfg.many_min_customers and p <= cfg.many_p_value:
        level = MANY
    else:
        level = FEW
    return Classification(level, count, mean, lam, p)


def severity(affected_customers: int, cfg: SpikeConfig) -> str:
    """Every spike is recall-level (HIGH); a very broad one is CRITICAL."""
    return "CRITICAL" if affected_customers >= cfg.critical_customers else "HIGH"


def spike_alert_id(topic: str, window_start_ms: int, window_end_ms: int) -> str:
    """Deterministic: the same topic and window give the same id on every replay / re-fire."""
    key = f"ISSUE_SPIKE|{topic}|{window_start_ms}|{window_end_ms}"
    return "spike-" + hashlib.sha256(key.encode()).hexdigest()[:24]


def baseline_counts(
    history: dict[int, int], window_start_ms: int, period_ms: int, windows: int, first_end_ms: int
) -> list[int]:
    """Counts of the trailing windows that end at or before ``window_start_ms``.

    Sliding windows overlap, so only windows that do not overlap the current one are
    baseline. A window with no report produced no row; it counts as 0 if it ends after
    the topic was first seen (``first_end_ms``), and as unknown (left out) before that.
    """
    out = []
    for k in range(windows):
        end = window_start_ms - k * period_ms
        if end < first_end_ms:
            break
        out.append(history.get(end, 0))
    return out
