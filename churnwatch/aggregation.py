"""Business rules of the windowed feedback aggregates: pure functions, no Beam.

An event contributes to one row per dimension it has a value for::

    feedback event  -> all, segment, channel, topic, team, cause, audience
    customer event  -> all, segment, audience          (no channel / topic / team / cause)
    churn outcome   -> all, segment, audience (+ team when the outcome names one)

Missing values become ``"unknown"`` so a row total always equals the ``all`` row.

``audience`` is "internal vs external customer": ``internal`` when the segment is
``internal`` or the serving team's name starts with ``internal`` (e.g. ``internal_it``:
internal teams are customers too), else ``external``.

The accumulator (:class:`Tally`) is what the Beam ``CombineFn`` carries: counters plus
the few customer ids needed to count churned customers distinctly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

UNKNOWN = "unknown"
ALL = "all"
FEEDBACK_DIMENSIONS = ("segment", "channel", "topic", "team", "cause", "audience")
CUSTOMER_DIMENSIONS = ("segment", "audience")
DIMENSIONS = (ALL, *FEEDBACK_DIMENSIONS)
CHURN_TYPES = frozenset({"CANCELLATION", "ACCOUNT_CLOSED"})
INTERNAL = "internal"


def audience(segment: str | None, team: str | None) -> str:
    """``internal`` for internal customers (segment or serving team), else ``external``."""
    if (segment or "").lower() == INTERNAL or (team or "").lower().startswith(INTERNAL):
        return INTERNAL
    return "external"


def nps(promoters: int, passives: int, detractors: int) -> float | None:
    """Net Promoter Score: % promoters minus % detractors, -100..100; None without answers."""
    answers = promoters + passives + detractors
    if answers == 0:
        return None
    return 100.0 * (promoters - detractors) / answers


def nps_bucket(score: int) -> str:
    """0-6 detractor, 7-8 passive, 9-10 promoter (the standard NPS bands)."""
    if not 0 <= score <= 10:
        raise ValueError(f"NPS answer {score} outside 0..10")
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


def _value(row: Mapping[str, Any], name: str) -> str:
    if name == "audience":
        return audience(row.get("segment"), row.get("team"))
    value = row.get(name)
    return UNKNOWN if value is None or value == "" else str(value)


def dimension_keys(row: Mapping[str, Any], dimensions: Iterable[str]) -> list[tuple[str, str]]:
    """``[(dimension, value), ...]`` for one row, ``("all", "all")`` first."""
    return [(ALL, ALL)] + [(d, _value(row, d)) for d in dimensions]


@dataclass
class Tally:
    """Mutable accumulator for one (window, dimension, value)."""

    events: int = 0
    complaints: int = 0
    survey_responses: int = 0
    promoters: int = 0
    passives: int = 0
    detractors: int = 0
    csat_sum: int = 0
    csat_n: int = 0
    churned: set[str] = field(default_factory=set)  # customers with a churn event
    silent: set[str] = field(default_factory=set)  # from churn outcomes
    vocal: set[str] = field(default_factory=set)  # from churn outcomes
    revenue: dict[str, float] = field(default_factory=dict)  # customer -> revenue lost

    def add_feedback(self, row: Mapping[str, Any]) -> Tally:
        self.events += 1
        self.complaints += row.get("kind") == "COMPLAINT"
        score, csat = row.get("nps_score"), row.get("csat_score")
        if score is not None or csat is not None:
            self.survey_responses += 1
        if score is not None:
            bucket = nps_bucket(score)
            self.promoters += bucket == "promoter"
            self.passives += bucket == "passive"
            self.detractors += bucket == "detractor"
        if csat is not None:
            self.csat_sum += csat
            self.csat_n += 1
        return self

    def add_customer(self, row: Mapping[str, Any]) -> Tally:
        self.events += 1
        if row.get("type") in CHURN_TYPES:
            self.churned.add(row["customer_id"])
        return self

    def add_churn_revenue(self, row: Mapping[str, Any]) -> Tally:
        """A churn event with the customer's ``annual_revenue`` attached: revenue lost."""
        customer = row["customer_id"]
        self.revenue[customer] = max(
            self.revenue.get(customer, 0.0), float(row.get("annual_revenue") or 0.0)
        )
        return self

    def add_outcome(self, row: Mapping[str, Any]) -> Tally:
        """A churn outcome: the customer churned; silent or vocal; revenue it took along."""
        customer = row["customer_id"]
        self.churned.add(customer)
        (self.silent if row.get("silent") else self.vocal).add(customer)
        self.revenue[customer] = max(
            self.revenue.get(customer, 0.0), float(row.get("revenue_lost") or 0.0)
        )
        return self

    def merge(self, other: Tally) -> Tally:
        for name in (
            "events",
            "complaints",
            "survey_responses",
            "promoters",
            "passives",
            "detractors",
            "csat_sum",
            "csat_n",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.churned |= other.churned
        self.silent |= other.silent
        self.vocal |= other.vocal
        for customer, value in other.revenue.items():
            self.revenue[customer] = max(self.revenue.get(customer, 0.0), value)
        return self

    def measures(self) -> dict[str, Any]:
        """The measure columns of a ``FeedbackAggregate`` row."""
        return {
            "events": self.events,
            "complaints": self.complaints,
            "survey_responses": self.survey_responses,
            "promoters": self.promoters,
            "passives": self.passives,
            "detractors": self.detractors,
            "nps": nps(self.promoters, self.passives, self.detractors),
            "csat_mean": self.csat_sum / self.csat_n if self.csat_n else None,
            "churned_customers": len(self.churned),
            "silent_churned": len(self.silent),
            "vocal_churned": len(self.vocal - self.silent),
            "revenue_lost": round(sum(self.revenue.values()), 2),
        }


@dataclass(frozen=True)
class AggregateConfig:
    """Window lengths in customer days; converted with ``day_seconds`` (86400 in production).

    * fixed windows of ``fixed_days`` (a "daily" row);
    * sliding windows of ``sliding_days`` every ``sliding_period_days`` ("last 7 days");
    * early panes every ``early_firing_seconds`` of processing time (wall clock, not
      compressed: it is how fresh a dashboard is) while a window is open;
    * late data accepted for ``allowed_lateness_days`` (but never less than
      ``min_lateness_seconds`` of wall clock: the pipeline's own lag is not compressed by
      ``day_seconds``, so a 0.2 s demo day must not turn lateness into 0.6 s) after the
      watermark passed the
      window end; each late event fires a late pane that updates the row.
    """

    day_seconds: float = 86400.0
    fixed_days: float = 1.0
    sliding_days: float = 7.0
    sliding_period_days: float = 1.0
    allowed_lateness_days: float = 3.0
    min_lateness_seconds: float = 60.0
    early_firing_seconds: int | None = 10  # whole seconds; None: no early panes (batch)

    def __post_init__(self) -> None:
        if self.day_seconds <= 0:
            raise ValueError("day_seconds must be positive")
        for name in ("fixed_days", "sliding_days", "sliding_period_days"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.early_firing_seconds is not None and (
            int(self.early_firing_seconds) != self.early_firing_seconds
            or self.early_firing_seconds < 1
        ):
            raise ValueError("early_firing_seconds must be a whole number of seconds >= 1")
        if self.allowed_lateness_days < 0 or self.min_lateness_seconds < 0:
            raise ValueError("allowed_lateness_days and min_lateness_seconds must be >= 0")
        if self.sliding_period_days > self.sliding_days:
            raise ValueError("sliding_period_days must not exceed sliding_days (gaps in coverage)")

    def seconds(self, days: float) -> float:
        return days * self.day_seconds

    @property
    def lateness_seconds(self) -> float:
        return max(self.seconds(self.allowed_lateness_days), self.min_lateness_seconds)
