"""Silent-churn rules as pure functions over a compact per-customer record.

The stateful DoFn (``transforms/track_customers.py``), the backfill and ``churnwatch
evaluate`` all drive :class:`Detector`, so what is measured offline is what runs in the
stream. Events are folded into :class:`~churnwatch.customer.Customer` by
``churnwatch.customer.fold``; the risk comes from :class:`~churnwatch.model.risk.RiskModel`.

* ``SILENT_CHURN``: a cancellation or account closure with no complaint, NPS <= 6 or
  CSAT <= 2 within the lookback. Raised at once.
* ``AT_RISK_SILENT``: no negative feedback in the lookback, and the model's risk that the
  customer will not come back reaches the threshold (from the alert budget, see
  ``RiskModel.threshold_for_budget``). Between events the risk only grows with silence, so
  each customer has one deadline (the crossing time) that new events move.
* **One alert per at-risk episode.** An episode is a quiet spell since the customer's last
  transaction. Its alert id is derived from that spell, and while the spell lasts the same
  alert is *updated* (same id, ``revision`` + 1) when the risk reaches the escalation
  threshold or a new signal arrives (a downgrade, a question about leaving). Only renewed
  activity (a transaction) ends the episode; a new one may then alert after the cooldown::

      purchase ── quiet ── risk = θ: AT_RISK rev 0 ── risk = θ_esc: rev 1 (escalated)
                                                    └─ downgrade: rev 2 (fresh numbers)
      purchase (renewed activity) ── episode closed; next alert >= cooldown after the last

* Vocal churn (a cancellation after complaining) is an outcome, not an alert.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from churnwatch.alerts import alert_row
from churnwatch.customer import (
    CHURN_TYPES,
    TRANSACTION_TYPES,
    Customer,
    event_order,
    fold,
)
from churnwatch.model.bgnbd import expected_purchases, p_alive
from churnwatch.model.risk import RiskModel
from churnwatch.routing import RoutingPolicy

__all__ = [
    "AT_RISK_SILENT",
    "CHURN_TYPES",
    "SILENT_CHURN",
    "TRANSACTION_TYPES",
    "Customer",
    "Detector",
    "DetectorConfig",
    "alert_id",
    "churn_outcome",
    "event_order",
    "severity",
]

SILENT_CHURN = "SILENT_CHURN"
AT_RISK_SILENT = "AT_RISK_SILENT"
SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")


@dataclass(frozen=True)
class DetectorConfig:
    """Detection settings; every duration is in customer days (see ``day_seconds``).

    ``alert_budget``: AT_RISK alerts per 1,000 active customers per month the owners can
    handle; the risk threshold is the lowest whose rate on the model's fitting history fits
    it. ``risk_threshold`` overrides that with a fixed probability.
    """

    day_seconds: float = 86400.0
    lookback_days: float = 180.0
    alert_budget: float = 10.0
    risk_threshold: float | None = None
    cooldown_days: float = 30.0
    max_quiet_days: float = 400.0  # no deadline further than this after the last event
    horizon_days: float = 90.0  # expected purchases ahead, for the alert
    drain_guard_seconds: float | None = 60.0

    def __post_init__(self) -> None:
        if self.risk_threshold is not None and not 0 < self.risk_threshold < 1:
            raise ValueError("risk_threshold must be within (0, 1)")
        for name in ("day_seconds", "lookback_days", "alert_budget", "max_quiet_days"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if self.cooldown_days < 0 or self.horizon_days <= 0:
            raise ValueError("cooldown_days must be >= 0 and horizon_days positive")

    @property
    def day_ms(self) -> float:
        return self.day_seconds * 1000.0

    @property
    def drain_guard_ms(self) -> int | None:
        """How far past the wall clock a deadline may lie and still fire when a drain
        releases the watermark: ``drain_guard_seconds``, but never more than one customer
        day (60 s are 120 customer days at a demo's 0.5 s a day)."""
        if self.drain_guard_seconds is None:
            return None
        return int(min(self.drain_guard_seconds, self.day_seconds) * 1000)


def alert_id(alert_type: str, subject: str, basis: str) -> str:
    """Deterministic: the same situation replayed (or a timer firing twice) gives one id."""
    return hashlib.sha256(f"{alert_type}|{subject}|{basis}".encode()).hexdigest()[:24]


def severity(revenue_at_risk: float, signals: list[str], escalated: bool = False) -> str:
    """CRITICAL >= 50k a year at risk; HIGH >= 10k or a customer asking how to leave;
    MEDIUM >= 2k or any other signal; LOW otherwise. An escalated episode goes one up."""
    if revenue_at_risk >= 50_000:
        level = 3
    elif revenue_at_risk >= 10_000 or "asked_about_leaving" in signals:
        level = 2
    elif revenue_at_risk >= 2_000 or signals:
        level = 1
    else:
        level = 0
    return SEVERITIES[min(3, level + (1 if escalated else 0))]


class Detector:
    """Applies events to :class:`Customer` records and raises ChurnAlert rows."""

    def __init__(self, config: DetectorConfig, model: RiskModel, policy: RoutingPolicy) -> None:
        self.config = config
        self.model = model
        self.policy = policy
        self.threshold = (
            config.risk_threshold
            if config.risk_threshold is not None
            else model.threshold_for_budget(config.alert_budget)
        )
        self.escalate_at = self.threshold + (1 - self.threshold) / 2

    # --- events -----------------------------------------------------------------
    def apply(self, c: Customer, customer_id: str, row: dict[str, Any], now_ms: int) -> list[dict]:
        """Fold one event into the record; returns alerts raised at once (SILENT_CHURN,
        or an update of the open AT_RISK alert when a new signal arrives)."""
        t = row["occurred_at"]
        alerts: list[dict] = []
        kind = fold(c, row, self.config.day_ms)
        if kind == "transaction":
            self._close_episode(c)
        elif kind == "churn":
            self._close_episode(c)
            if not self.complained_within_lookback(c, t):
                alert = self._silent_churn(c, customer_id, row, now_ms)
                if alert:
                    alerts.append(alert)
        elif (
            kind == "signal"
            and c.episode_basis is not None
            and c.churned_ms is None
            and not self.complained_within_lookback(c, t)
        ):
            alerts.append(self._at_risk(c, customer_id, t, now_ms))
        # Never earlier than this event: the record now holds what was learnt at ``t``,
        # and the curve must not date a crossing before it was knowable.
        c.deadline_ms = self.deadline(c, not_before=t + 1)
        return alerts

    @staticmethod
    def _close_episode(c: Customer) -> None:
        c.episode_basis, c.episode_revision, c.episode_level = None, 0, 0

    # --- at-risk deadline ---------------------------------------------------------
    def signals(self, c: Customer, at_ms: int) -> list[str]:
        """Behavioural signals active at ``at_ms`` (within the lookback), in plain words."""
        lookback = self.config.lookback_days * self.config.day_ms
        active = []
        if c.downgraded_ms is not None and at_ms - c.downgraded_ms <= lookback:
            active.append("downgraded")
        if c.asked_about_leaving_ms is not None and at_ms - c.asked_about_leaving_ms <= lookback:
            active.append("asked_about_leaving")
        return active

    def deadline(self, c: Customer, not_before: int = 0) -> int | None:
        """Event time at which this customer's next AT_RISK step is due, if nothing happens.

        ``not_before``: the time of what the record last learnt (an event, a fired step).
        The risk curve uses the whole record, so without it a downgrade on day 30 could put
        the crossing on day 10, the day after the last purchase: an alert dated before the
        signal that raised it, and a lead time it never had.
        """
        if c.churned_ms is not None or c.first_ms is None or c.episode_level >= 2:
            return None
        cfg = self.config
        start = max(c.last_activity_ms, c.last_purchase_ms or 0, not_before - 1) + 1
        if c.last_negative_ms is not None:  # silent again once the complaint is old
            start = max(start, int(c.last_negative_ms + cfg.lookback_days * cfg.day_ms) + 1)
        target = self.threshold
        if c.episode_level == 1:
            target = self.escalate_at
        else:
            last_alert = c.alerted_ms.get(AT_RISK_SILENT)
            if last_alert is not None:
                start = max(start, int(last_alert + cfg.cooldown_days * cfg.day_ms))
        return self.model.crossing(c, start, target, cfg.day_ms, cfg.max_quiet_days)

    def fire(self, c: Customer, customer_id: str, at_ms: int, now_ms: int) -> dict | None:
        """The deadline passed at event time ``at_ms``: raise or update AT_RISK_SILENT if the
        customer is still silent and still at risk (else reschedule)."""
        c.deadline_ms = None
        if c.churned_ms is not None:
            return None
        if self.complained_within_lookback(c, at_ms):
            c.deadline_ms = self.deadline(c, not_before=at_ms + 1)
            return None
        target = self.escalate_at if c.episode_level == 1 else self.threshold
        if self.model.risk(c, at_ms, self.config.day_ms) < target - 1e-9:
            # a signal expired since the deadline was set: look again from here
            c.deadline_ms = self.model.crossing(
                c, at_ms + 1, target, self.config.day_ms, self.config.max_quiet_days
            )
            return None
        alert = self._at_risk(c, customer_id, at_ms, now_ms)
        c.deadline_ms = self.deadline(c, not_before=at_ms + 1)
        return alert

    def _at_risk(self, c: Customer, customer_id: str, at_ms: int, now_ms: int) -> dict:
        """Open the episode's alert, or update it (same id, next revision)."""
        cfg, bg = self.config, self.model.bgnbd
        risk = float(self.model.risk(c, at_ms, cfg.day_ms))
        if c.episode_basis is None:
            c.episode_basis = f"{c.last_purchase_ms}:{c.repeat_purchases}"
            # already past the escalation level (a strong signal): open escalated, rather
            # than raise revision 0 and revision 1 a millisecond apart
            c.episode_revision = 0
            c.episode_level = 2 if risk >= self.escalate_at - 1e-9 else 1
            c.alerted_ms[AT_RISK_SILENT] = at_ms
        else:
            c.episode_revision += 1
            if c.episode_level == 1 and risk >= self.escalate_at - 1e-9:
                c.episode_level = 2
        unit = bg.time_unit_days * cfg.day_ms
        x = c.repeat_purchases
        t_x = (c.last_purchase_ms - c.first_ms) / unit
        age = max(t_x, (at_ms - c.first_ms) / unit)
        signals = self.signals(c, at_ms)
        reasons = ["no_complaint_in_lookback", *self.model.reasons(c, at_ms, cfg.day_ms)]
        reasons += [s for s in signals if s not in reasons]
        expected_loss = round(risk * self.annual_revenue(c), 2)
        return self._alert(
            AT_RISK_SILENT,
            customer_id,
            c.episode_basis,
            c,
            at_ms,
            now_ms,
            expected_loss,
            reasons,
            signals,
            escalated=c.episode_level >= 2,
            revision=c.episode_revision,
            risk=risk,
            p_alive_value=p_alive(bg, x, t_x, age) if x > 0 else None,
            expected=expected_purchases(bg, cfg.horizon_days / bg.time_unit_days, x, t_x, age),
        )

    # --- helpers ------------------------------------------------------------------
    def complained_within_lookback(self, c: Customer, at_ms: int) -> bool:
        """Complaint, NPS <= 6 or CSAT <= 2 within the lookback before ``at_ms``."""
        lookback = self.config.lookback_days * self.config.day_ms
        return c.last_negative_ms is not None and at_ms - c.last_negative_ms <= lookback

    def annual_revenue(self, c: Customer) -> float:
        """Monthly revenue x 12 when known, else the customer's own order rate x size."""
        revenue = c.monthly_revenue if c.monthly_revenue > 0 else c.peak_monthly_revenue
        if revenue > 0:
            return round(12 * revenue, 2)
        gap = c.typical_gap_days()
        if c.amounts and gap:
            return round(365 * (sum(c.amounts) / len(c.amounts)) / max(gap, 1.0), 2)
        return round(sum(c.amounts), 2)

    def _silent_churn(self, c: Customer, customer_id: str, row: dict, now_ms: int) -> dict | None:
        t = row["occurred_at"]
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
        escalated: bool = False,
        revision: int = 0,
        risk: float | None = None,
        p_alive_value: float | None = None,
        expected: float | None = None,
    ) -> dict[str, Any]:
        sev = severity(revenue, signals, escalated)
        route = self.policy.route(alert_type, sev, revenue)
        day_ms = self.config.day_ms
        last = max(c.last_activity_ms, c.last_purchase_ms or 0)
        gap = c.typical_gap_days()
        return alert_row(
            alert_id=alert_id(alert_type, customer_id, basis),
            alert_type=alert_type,
            severity=sev,
            customer_id=customer_id,
            detected_at=int(at_ms),
            processed_at=int(now_ms),
            revision=revision,
            risk=None if risk is None else round(risk, 4),
            p_alive=None if p_alive_value is None else round(p_alive_value, 4),
            expected_purchases=None if expected is None else round(max(expected, 0.0), 3),
            days_since_last_activity=round(max(at_ms - last, 0) / day_ms, 2),
            typical_gap_days=None if gap is None else round(gap, 2),
            revenue_at_risk=revenue if math.isfinite(revenue) else 0.0,
            reason_codes=reasons,
            last_feedback_kind=c.last_feedback_kind,
            last_nps=c.last_nps,
            owner=route.owner,
            authority_limit=route.authority_limit,
            model_version=self.model.version,
        )


def churn_outcome(c: Customer, customer_id: str, row: dict, detector: Detector) -> dict:
    """Vocal or silent, for aggregates: every churn is counted, only silent ones alert."""
    return {
        "customer_id": customer_id,
        "occurred_at": row["occurred_at"],
        "silent": not detector.complained_within_lookback(c, row["occurred_at"]),
        "revenue_lost": detector.annual_revenue(c),
        "segment": c.segment,
    }
