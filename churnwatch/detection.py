"""Silent-churn rules as pure functions over a compact per-customer record.

The stateful DoFn (``transforms/track_customers.py``) and ``churnwatch evaluate`` both
drive these functions, so what is measured offline is what runs in the stream.

Per customer we keep only what the rules need (:class:`Customer`): purchase count and
first/last purchase (the BG/NBD summary x, t_x, T), a few recent gaps and order amounts,
the last negative feedback, behavioural signals and cooldowns.

* ``SILENT_CHURN``: a cancellation or account closure with no complaint, NPS <= 6 or
  CSAT <= 2 within the lookback. Raised at once.
* ``AT_RISK_SILENT``: no negative feedback in the lookback, and P(alive) reaches the
  threshold. The crossing time is closed-form, so each customer has one deadline that new
  activity moves. Behavioural signals (a downgrade, a question about exporting data or
  cancelling, shrinking orders) raise the threshold, i.e. alert earlier, and are named
  in the reason codes. With too little history (fewer than ``min_repeat_purchases``
  repeat purchases) the deadline is ``fallback_gap_multiplier`` x the customer's own
  median gap (or ``default_gap_days``) after their last activity.
* Vocal churn (a cancellation after complaining) is an outcome, not an alert.
* A cooldown per customer and alert type prevents alert storms::

      purchase ─────── deadline: AT_RISK ── cooldown ───────────────┐
                                 (one alert per quiet spell; new     │
                                  activity sets a new deadline)      └─> may alert again
"""

from __future__ import annotations

import hashlib
import statistics
from dataclasses import dataclass, field
from typing import Any

from churnwatch.model.bgnbd import BGNBDParams, alive_crossing_time, expected_purchases, p_alive
from churnwatch.routing import RoutingPolicy

SILENT_CHURN = "SILENT_CHURN"
AT_RISK_SILENT = "AT_RISK_SILENT"
CHURN_TYPES = frozenset({"CANCELLATION", "ACCOUNT_CLOSED"})
TRANSACTION_TYPES = frozenset({"SIGNUP", "PURCHASE", "RENEWAL"})
EXIT_TOPICS = frozenset({"data_export", "cancellation", "cancel", "export"})
KEEP_RECENT = 6  # gaps and order amounts kept per customer

#: Signals and how much each raises the P(alive) threshold (alerting earlier).
SIGNAL_BOOSTS = {"downgraded": 0.5, "asked_about_leaving": 0.7, "shrinking_orders": 0.3}


@dataclass(frozen=True)
class DetectorConfig:
    """Detection settings; every duration is in customer days (see ``day_seconds``)."""

    day_seconds: float = 86400.0
    lookback_days: float = 180.0
    p_alive_threshold: float = 0.2
    min_repeat_purchases: int = 2
    fallback_gap_multiplier: float = 5.0
    gap_floor_multiplier: float = 1.5  # never due before this x own median gap of quiet
    default_gap_days: float = 14.0
    cooldown_days: float = 60.0
    horizon_days: float = 90.0
    signals: frozenset[str] = frozenset(SIGNAL_BOOSTS)
    drain_guard_seconds: float | None = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.p_alive_threshold < 1:
            raise ValueError("p_alive_threshold must be within (0, 1)")
        for name in (
            "day_seconds",
            "lookback_days",
            "fallback_gap_multiplier",
            "default_gap_days",
            "horizon_days",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.cooldown_days < 0 or self.min_repeat_purchases < 1:
            raise ValueError("cooldown_days must be >= 0 and min_repeat_purchases >= 1")
        unknown = set(self.signals) - set(SIGNAL_BOOSTS)
        if unknown:
            raise ValueError(f"unknown signals {sorted(unknown)}; known: {sorted(SIGNAL_BOOSTS)}")

    @property
    def day_ms(self) -> float:
        return self.day_seconds * 1000.0


@dataclass(slots=True)
class Customer:
    """Compact per-customer state (a few dozen bytes pickled, see benchmarks/state_size.py)."""

    first_ms: int | None = None  # first transaction (signup or purchase): BG/NBD birth
    last_purchase_ms: int | None = None
    repeat_purchases: int = 0  # x
    gaps_days: list[float] = field(default_factory=list)
    amounts: list[float] = field(default_factory=list)
    last_activity_ms: int = 0
    last_negative_ms: int | None = None
    last_feedback_kind: str | None = None
    last_nps: int | None = None
    monthly_revenue: float = 0.0
    downgraded_ms: int | None = None
    asked_about_leaving_ms: int | None = None
    churned_ms: int | None = None
    segment: str | None = None
    deadline_ms: int | None = None
    alerted_ms: dict[str, int] = field(default_factory=dict)


def alert_id(alert_type: str, subject: str, basis: str) -> str:
    """Deterministic: the same situation replayed (or a timer firing twice) gives one id."""
    return hashlib.sha256(f"{alert_type}|{subject}|{basis}".encode()).hexdigest()[:24]


def severity(revenue_at_risk: float, signals: list[str]) -> str:
    """CRITICAL >= 50k a year at risk; HIGH >= 10k or a customer asking how to leave;
    MEDIUM >= 2k or any other signal; LOW otherwise."""
    if revenue_at_risk >= 50_000:
        return "CRITICAL"
    if revenue_at_risk >= 10_000 or "asked_about_leaving" in signals:
        return "HIGH"
    if revenue_at_risk >= 2_000 or signals:
        return "MEDIUM"
    return "LOW"


class Detector:
    """Applies events to :class:`Customer` records and raises ChurnAlert rows."""

    def __init__(self, config: DetectorConfig, params: BGNBDParams, policy: RoutingPolicy) -> None:
        self.config = config
        self.params = params
        self.policy = policy
        self.unit_ms = params.time_unit_days * config.day_ms

    # --- events -----------------------------------------------------------------
    def apply(self, c: Customer, customer_id: str, row: dict[str, Any], now_ms: int) -> list[dict]:
        """Fold one event into the record; returns alerts raised at once (SILENT_CHURN)."""
        t = row["occurred_at"]
        alerts: list[dict] = []
        c.segment = row.get("segment") or c.segment
        if "type" in row:  # customer lifecycle event
            kind = row["type"]
            if row.get("monthly_revenue") is not None and kind not in CHURN_TYPES:
                c.monthly_revenue = float(row["monthly_revenue"])
            if kind in TRANSACTION_TYPES:
                self._transaction(c, t, row.get("amount"))
            elif kind == "DOWNGRADE":
                c.downgraded_ms = max(c.downgraded_ms or 0, t)
            elif kind in CHURN_TYPES and c.churned_ms is None:
                c.churned_ms = t
                c.deadline_ms = None
                if not self.complained_within_lookback(c, t):
                    alert = self._silent_churn(c, customer_id, row, now_ms)
                    if alert:
                        alerts.append(alert)
        else:  # feedback
            c.last_feedback_kind = row["kind"]
            nps, csat = row.get("nps_score"), row.get("csat_score")
            if nps is not None:
                c.last_nps = nps
            if (
                row["kind"] == "COMPLAINT"
                or (nps is not None and nps <= 6)
                or (csat is not None and csat <= 2)
            ):
                c.last_negative_ms = max(c.last_negative_ms or 0, t)
            if row["kind"] == "QUESTION" and _about_leaving(row):
                c.asked_about_leaving_ms = max(c.asked_about_leaving_ms or 0, t)
            c.last_activity_ms = max(c.last_activity_ms, t)
        c.deadline_ms = self.deadline(c)
        return alerts

    def _transaction(self, c: Customer, t: int, amount: float | None) -> None:
        if c.first_ms is None or t < c.first_ms:
            c.first_ms = t
        if c.last_purchase_ms is not None and t > c.last_purchase_ms:
            _push(c.gaps_days, (t - c.last_purchase_ms) / self.config.day_ms)
        if c.last_purchase_ms is None or t != c.last_purchase_ms:
            if c.last_purchase_ms is not None:
                c.repeat_purchases += 1
            c.last_purchase_ms = max(c.last_purchase_ms or t, t)
        if amount:
            _push(c.amounts, float(amount))
        c.last_activity_ms = max(c.last_activity_ms, t)

    # --- at-risk deadline ---------------------------------------------------------
    def signals(self, c: Customer, at_ms: int) -> list[str]:
        """Behavioural signals active at ``at_ms`` (within the lookback), in plain words."""
        lookback = self.config.lookback_days * self.config.day_ms
        active = []
        if c.downgraded_ms is not None and at_ms - c.downgraded_ms <= lookback:
            active.append("downgraded")
        if c.asked_about_leaving_ms is not None and at_ms - c.asked_about_leaving_ms <= lookback:
            active.append("asked_about_leaving")
        if len(c.amounts) >= 4:
            recent, earlier = c.amounts[-2:], c.amounts[:-2]
            if sum(recent) / 2 < 0.6 * (sum(earlier) / len(earlier)):
                active.append("shrinking_orders")
        return [s for s in active if s in self.config.signals]

    def threshold(self, signals: list[str]) -> float:
        boost = sum(SIGNAL_BOOSTS[s] for s in signals)
        return min(0.9, self.config.p_alive_threshold + boost)

    def deadline(self, c: Customer) -> int | None:
        """Event time at which this customer becomes AT_RISK_SILENT, if nothing happens."""
        if c.churned_ms is not None or c.first_ms is None:
            return None
        cfg = self.config
        signals = self.signals(c, max(c.last_activity_ms, c.last_purchase_ms or 0))
        if c.repeat_purchases >= cfg.min_repeat_purchases:
            t_x = (c.last_purchase_ms - c.first_ms) / self.unit_ms
            age = alive_crossing_time(self.params, c.repeat_purchases, t_x, self.threshold(signals))
            due = c.first_ms + age * self.unit_ms
            if c.gaps_days:  # P(alive) and the customer's own rhythm must both agree
                floor = cfg.gap_floor_multiplier * statistics.median(c.gaps_days)
                due = max(due, c.last_activity_ms + floor * cfg.day_ms)
        else:
            gap = statistics.median(c.gaps_days) if c.gaps_days else cfg.default_gap_days
            stretch = 1.0 - min(0.6, sum(SIGNAL_BOOSTS[s] for s in signals))
            due = c.last_activity_ms + cfg.fallback_gap_multiplier * gap * stretch * cfg.day_ms
        last_alert = c.alerted_ms.get(AT_RISK_SILENT)
        if last_alert is not None:
            due = max(due, last_alert + cfg.cooldown_days * cfg.day_ms)
        # never due before the activity that set it
        return int(max(due, c.last_activity_ms + 1))

    def fire(self, c: Customer, customer_id: str, at_ms: int, now_ms: int) -> dict | None:
        """The deadline passed at event time ``at_ms``: raise AT_RISK_SILENT if still silent."""
        c.deadline_ms = None
        if c.churned_ms is not None or self.complained_within_lookback(c, at_ms):
            return None
        last = c.alerted_ms.get(AT_RISK_SILENT)
        if last is not None and at_ms - last < self.config.cooldown_days * self.config.day_ms:
            return None
        c.alerted_ms[AT_RISK_SILENT] = at_ms
        cfg, p = self.config, self.params
        signals = self.signals(c, at_ms)
        x = c.repeat_purchases
        t_x = (c.last_purchase_ms - c.first_ms) / self.unit_ms
        age = (at_ms - c.first_ms) / self.unit_ms
        model_based = x >= cfg.min_repeat_purchases
        alive = p_alive(p, x, t_x, age) if model_based else None
        ahead = expected_purchases(p, cfg.horizon_days / p.time_unit_days, x, t_x, age)
        reasons = ["no_complaint_in_lookback"]
        reasons.append("p_alive_below_threshold" if model_based else "gap_far_beyond_own_typical")
        reasons += signals
        revenue = self.annual_revenue(c)
        # the situation: this customer's activity state when the deadline was computed
        basis = f"{c.last_activity_ms}:{c.last_purchase_ms}:{x}"
        return self._alert(
            AT_RISK_SILENT,
            customer_id,
            basis,
            c,
            at_ms,
            now_ms,
            revenue,
            reasons,
            signals,
            p_alive_value=alive,
            expected=ahead,
        )

    # --- helpers ------------------------------------------------------------------
    def complained_within_lookback(self, c: Customer, at_ms: int) -> bool:
        """Complaint, NPS <= 6 or CSAT <= 2 within the lookback before ``at_ms``."""
        lookback = self.config.lookback_days * self.config.day_ms
        return c.last_negative_ms is not None and at_ms - c.last_negative_ms <= lookback

    def annual_revenue(self, c: Customer) -> float:
        if c.monthly_revenue > 0:
            return round(12 * c.monthly_revenue, 2)
        if c.amounts and c.gaps_days:
            per_day = (sum(c.amounts) / len(c.amounts)) / max(statistics.median(c.gaps_days), 1e-9)
            return round(365 * per_day, 2)
        return round(sum(c.amounts), 2)

    def _silent_churn(self, c: Customer, customer_id: str, row: dict, now_ms: int) -> dict | None:
        t = row["occurred_at"]
        last = c.alerted_ms.get(SILENT_CHURN)
        if last is not None and t - last < self.config.cooldown_days * self.config.day_ms:
            return None
        c.alerted_ms[SILENT_CHURN] = t
        signals = self.signals(c, t)
        reasons = [
            "cancelled" if row["type"] == "CANCELLATION" else "account_closed",
            "no_complaint_in_lookback",
            *signals,
        ]
        return self._alert(
            SILENT_CHURN,
            customer_id,
            row["event_id"],
            c,
            t,
            now_ms,
            self.annual_revenue(c),
            reasons,
            signals,
        )

    def _alert(
        self,
        alert_type: str,
        customer_id: str,
        basis: str,
        c: Customer,
        at_ms: int,
        now_ms: int,
        revenue: float,
        reasons: list[str],
        signals: list[str],
        p_alive_value: float | None = None,
        expected: float | None = None,
    ) -> dict[str, Any]:
        sev = severity(revenue, signals)
        route = self.policy.route(alert_type, sev, revenue)
        day_ms = self.config.day_ms
        last = max(c.last_activity_ms, c.last_purchase_ms or 0)
        return {
            "alert_id": alert_id(alert_type, customer_id, basis),
            "alert_type": alert_type,
            "severity": sev,
            "customer_id": customer_id,
            "topic": None,
            "detected_at": int(at_ms),
            "processed_at": int(now_ms),
            "p_alive": None if p_alive_value is None else round(p_alive_value, 4),
            "expected_purchases": None if expected is None else round(max(expected, 0.0), 3),
            "days_since_last_activity": round(max(at_ms - last, 0) / day_ms, 2),
            "typical_gap_days": round(statistics.median(c.gaps_days), 2) if c.gaps_days else None,
            "revenue_at_risk": revenue,
            "reason_codes": reasons,
            "last_feedback_kind": c.last_feedback_kind,
            "last_nps": c.last_nps,
            "affected_customers": None,
            "example_event_ids": [],
            "owner": route.owner,
            "authority_limit": route.authority_limit,
            "model_version": self.params.version,
        }


def churn_outcome(c: Customer, customer_id: str, row: dict, detector: Detector) -> dict:
    """Vocal or silent, for aggregates: every churn is counted, only silent ones alert."""
    return {
        "customer_id": customer_id,
        "occurred_at": row["occurred_at"],
        "silent": not detector.complained_within_lookback(c, row["occurred_at"]),
        "revenue_lost": detector.annual_revenue(c),
        "segment": c.segment,
    }


def _about_leaving(row: dict) -> bool:
    topic = (row.get("topic") or "").lower()
    text = (row.get("text") or "").lower()
    return topic in EXIT_TOPICS or "export" in text or "cancel" in text


def _push(values: list[float], value: float) -> None:
    values.append(round(value, 3))
    if len(values) > KEEP_RECENT:
        del values[0]


def event_order(row: dict[str, Any]) -> tuple[int, str]:
    """Event time, then event id: the one order every replay of the same events uses."""
    return row["occurred_at"], row.get("event_id") or ""
