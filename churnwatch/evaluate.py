"""Score alerts against a simulation's ground truth: precision, recall, lead time.

Bounded runners do not process a key's events in time order, so offline evaluation
replays the events in event-time order through the same pure rules the stream uses
(:class:`churnwatch.detection.Detector`), firing each customer's deadline exactly when the
stream's event-time timer would.
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from churnwatch.detection import AT_RISK_SILENT, SILENT_CHURN, Customer, Detector, event_order
from churnwatch.simulate import Truth


def replay(detector: Detector, events: Iterable[dict], until_ms: int) -> list[dict]:
    """Alerts the stream would raise for ``events`` (feedback and customer rows)."""
    customers: dict[str, Customer] = {}
    due: list[tuple[int, str]] = []
    alerts: list[dict] = []

    def fire_until(t: int) -> None:
        while due and due[0][0] <= t:
            deadline, cid = heapq.heappop(due)
            c = customers[cid]
            if c.deadline_ms != deadline:  # moved by later activity: stale entry
                continue
            alert = detector.fire(c, cid, deadline, now_ms=deadline)
            if alert:
                alerts.append(alert)

    for row in sorted(events, key=event_order):
        fire_until(row["occurred_at"])
        cid = row["customer_id"]
        c = customers.setdefault(cid, Customer())
        alerts += detector.apply(c, cid, row, now_ms=row["occurred_at"])
        if c.deadline_ms is not None:
            heapq.heappush(due, (c.deadline_ms, cid))
    fire_until(until_ms)
    return alerts


@dataclass(frozen=True)
class Score:
    silent_churners: int
    alerted_customers: int
    true_positives: int
    precision: float
    recall: float
    median_lead_days: float | None
    precision_any_churn: float
    silent_churn_alerts_exact: bool
    silent_churn_missing: int
    silent_churn_unexpected: int


def score(alerts: Iterable[dict], truth: Iterable[Truth], day_seconds: float) -> Score:
    """AT_RISK_SILENT: a true positive is a silent churner alerted before they cancelled.

    Precision counts every customer with an AT_RISK_SILENT alert; ``precision_any_churn``
    also credits alerts on customers who left after complaining. SILENT_CHURN must match
    the ground truth exactly.
    """
    truth = list(truth)
    by_id = {t.customer_id: t for t in truth}
    silent = {t.customer_id for t in truth if t.churned and t.silent}
    first_at_risk: dict[str, int] = {}
    silent_alerted: set[str] = set()
    for a in alerts:
        if a["alert_type"] == AT_RISK_SILENT:
            cid = a["customer_id"]
            first_at_risk[cid] = min(first_at_risk.get(cid, a["detected_at"]), a["detected_at"])
        elif a["alert_type"] == SILENT_CHURN:
            silent_alerted.add(a["customer_id"])
    leads, tp, churned_alerted = [], 0, 0
    for cid, at in first_at_risk.items():
        t = by_id.get(cid)
        if t is not None and t.churned and t.churn_at_ms is not None and at <= t.churn_at_ms:
            churned_alerted += 1
            if cid in silent:
                tp += 1
                leads.append((t.churn_at_ms - at) / (day_seconds * 1000))
    n = len(first_at_risk)
    return Score(
        silent_churners=len(silent),
        alerted_customers=n,
        true_positives=tp,
        precision=tp / n if n else 0.0,
        recall=tp / len(silent) if silent else 0.0,
        median_lead_days=round(statistics.median(leads), 1) if leads else None,
        precision_any_churn=churned_alerted / n if n else 0.0,
        silent_churn_alerts_exact=silent_alerted == silent,
        silent_churn_missing=len(silent - silent_alerted),
        silent_churn_unexpected=len(silent_alerted - silent),
    )
