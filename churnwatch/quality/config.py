"""Stream quality settings: window length in customer days (with a floor), lateness, rules."""

from __future__ import annotations

from dataclasses import dataclass, field

from churnwatch.quality.rules import QualityRules

#: Tables whose valid rows the stream checks, per window, before they reach the warehouse.
STREAM_TABLES = ("feedback_events", "customer_events")


@dataclass(frozen=True)
class QualityConfig:
    """Fixed event-time windows of ``window_days`` (x ``day_seconds``), one batch each.

    ``min_window_seconds`` floors the window in event-time seconds: a demo that compresses
    a day to 0.5 s would otherwise validate hundreds of tiny batches (each validation
    costs ~0.1 s whatever its size). A window is validated when the watermark passes its
    end; rows behind the watermark (common in a demo, whose pipeline lag is not compressed)
    re-validate their whole window in a late pane (one per bundle of late rows), for the
    allowed lateness (as the aggregates: never below ``min_lateness_seconds``).
    """

    day_seconds: float = 86400.0
    window_days: float = 1.0
    min_window_seconds: float = 10.0
    allowed_lateness_days: float = 3.0
    min_lateness_seconds: float = 60.0
    rules: QualityRules = field(default_factory=QualityRules.load)

    def __post_init__(self) -> None:
        if self.day_seconds <= 0 or self.window_days <= 0:
            raise ValueError("quality day_seconds and window_days must be positive")
        if self.min_window_seconds < 0 or self.allowed_lateness_days < 0:
            raise ValueError("quality min_window_seconds and allowed_lateness_days must be >= 0")
        if self.min_lateness_seconds < 0:
            raise ValueError("quality min_lateness_seconds must be >= 0")

    @property
    def window_seconds(self) -> float:
        return max(self.window_days * self.day_seconds, self.min_window_seconds)

    @property
    def lateness_seconds(self) -> float:
        return max(self.allowed_lateness_days * self.day_seconds, self.min_lateness_seconds)

    @property
    def tolerance_ms(self) -> int:
        return int(self.rules.future_tolerance_seconds * 1000)
