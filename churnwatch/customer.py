"""One customer's compact history, folded event by event (no alert logic here).

The detector (``churnwatch.detection``), the risk model's features
(``churnwatch.model.features``), model fitting and ``churnwatch evaluate`` all read the
same :class:`Customer`, built by the same :func:`fold`, so what is learned and measured
offline is what the stream computes. The record keeps running summaries, not the event
list: its size does not grow with a customer's age (``benchmarks/state_size.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

CHURN_TYPES = frozenset({"CANCELLATION", "ACCOUNT_CLOSED"})
TRANSACTION_TYPES = frozenset({"SIGNUP", "PURCHASE", "RENEWAL"})
EXIT_TOPICS = frozenset({"data_export", "cancellation", "cancel", "export"})
KEEP_RECENT = 6  # recent gaps and order amounts kept per customer


def is_negative_feedback(row: dict[str, Any]) -> bool:
    """A complaint, a detractor NPS (<= 6) or a low CSAT (<= 2): the customer spoke up."""
    nps, csat = row.get("nps_score"), row.get("csat_score")
    return (
        row.get("kind") == "COMPLAINT"
        or (nps is not None and nps <= 6)
        or (csat is not None and csat <= 2)
    )


def asks_about_leaving(row: dict[str, Any]) -> bool:
    """A question about exporting data or cancelling."""
    if row.get("kind") != "QUESTION":
        return False
    topic = (row.get("topic") or "").lower()
    text = (row.get("text") or "").lower()
    return topic in EXIT_TOPICS or "export" in text or "cancel" in text


@dataclass(slots=True)
class Customer:
    """Per-customer state: BG/NBD summary, rhythm, orders, feedback, signals, episode."""

    first_ms: int | None = None  # first transaction (signup or purchase): BG/NBD birth
    last_purchase_ms: int | None = None  # last transaction
    repeat_purchases: int = 0  # x
    gaps_days: list[float] = field(default_factory=list)  # recent gaps
    gap_n: int = 0  # all gaps: count, sum and sum of squares of log(1 + gap)
    gap_log_sum: float = 0.0
    gap_log_sq: float = 0.0
    amounts: list[float] = field(default_factory=list)  # recent PURCHASE amounts (orders)
    last_activity_ms: int = 0  # transaction or feedback
    feedback_n: int = 0
    first_feedback_ms: int | None = None
    last_feedback_ms: int | None = None
    last_negative_ms: int | None = None
    last_feedback_kind: str | None = None
    last_nps: int | None = None
    prev_nps: int | None = None
    monthly_revenue: float = 0.0
    peak_monthly_revenue: float = 0.0
    downgraded_ms: int | None = None
    asked_about_leaving_ms: int | None = None
    churned_ms: int | None = None
    segment: str | None = None
    # detector bookkeeping
    deadline_ms: int | None = None
    alerted_ms: dict[str, int] = field(default_factory=dict)
    episode_basis: str | None = None  # open AT_RISK episode: the situation it is about
    episode_revision: int = 0
    episode_level: int = 0  # 1 = raised, 2 = escalated

    def typical_gap_days(self) -> float | None:
        """Geometric mean of all gaps (robust to one long pause), None without gaps."""
        if not self.gap_n:
            return None
        return math.exp(self.gap_log_sum / self.gap_n) - 1.0


def fold(c: Customer, row: dict[str, Any], day_ms: float) -> str:
    """Fold one event into ``c``; returns what it was: transaction, churn, feedback, other.

    Events may arrive out of order within a customer; summaries use max() where the order
    matters, so a late event never moves "last seen" backwards.
    """
    t = row["occurred_at"]
    c.segment = row.get("segment") or c.segment
    if "type" in row:
        kind = row["type"]
        revenue = row.get("monthly_revenue")
        if revenue is not None and kind not in CHURN_TYPES:
            c.monthly_revenue = float(revenue)
            c.peak_monthly_revenue = max(c.peak_monthly_revenue, c.monthly_revenue)
        if kind in TRANSACTION_TYPES:
            # renewal and signup amounts are plan prices, not orders: a plan's price
            # beside an add-on's would read as "shrinking orders" (revenue_drop covers plans)
            _transaction(c, t, row.get("amount") if kind == "PURCHASE" else None, day_ms)
            return "transaction"
        if kind == "DOWNGRADE":
            c.downgraded_ms = max(c.downgraded_ms or 0, t)
            return "signal"
        if kind in CHURN_TYPES:
            if c.churned_ms is None:
                c.churned_ms = t
                return "churn"
            return "other"
        return "other"
    c.last_feedback_kind = row["kind"]
    nps = row.get("nps_score")
    if nps is not None:
        c.prev_nps, c.last_nps = c.last_nps, nps
    if is_negative_feedback(row):
        c.last_negative_ms = max(c.last_negative_ms or 0, t)
    c.feedback_n += 1
    c.first_feedback_ms = t if c.first_feedback_ms is None else min(c.first_feedback_ms, t)
    c.last_feedback_ms = max(c.last_feedback_ms or 0, t)
    c.last_activity_ms = max(c.last_activity_ms, t)
    if asks_about_leaving(row):
        c.asked_about_leaving_ms = max(c.asked_about_leaving_ms or 0, t)
        return "signal"
    return "feedback"


def _transaction(c: Customer, t: int, amount: float | None, day_ms: float) -> None:
    if c.first_ms is None or t < c.first_ms:
        c.first_ms = t
    if c.last_purchase_ms is not None and t > c.last_purchase_ms:
        gap = (t - c.last_purchase_ms) / day_ms
        _push(c.gaps_days, gap)
        log_gap = math.log1p(gap)
        c.gap_n += 1
        c.gap_log_sum += log_gap
        c.gap_log_sq += log_gap * log_gap
    if c.last_purchase_ms is None or t != c.last_purchase_ms:
        if c.last_purchase_ms is not None:
            c.repeat_purchases += 1
        c.last_purchase_ms = max(c.last_purchase_ms or t, t)
    if amount:
        _push(c.amounts, float(amount))
    c.last_activity_ms = max(c.last_activity_ms, t)


def _push(values: list[float], value: float) -> None:
    values.append(round(value, 3))
    if len(values) > KEEP_RECENT:
        del values[0]


def event_order(row: dict[str, Any]) -> tuple[int, str]:
    """Event time, then event id: the one order every replay of the same events uses."""
    return row["occurred_at"], row.get("event_id") or ""
