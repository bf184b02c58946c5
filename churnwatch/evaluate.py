"""Judging the detector honestly: replay, ground-truth scoring, and the simple baselines.

Bounded runners do not process a key's events in time order, so offline evaluation
replays the events in event-time order through the same pure rules the stream uses
(:class:`churnwatch.detection.Detector`), firing each customer's deadline exactly when the
stream's event-time timer would (:func:`replay`).

What an alert is worth is counted as a support lead sees it (:func:`score`):

* an AT_RISK_SILENT alert (one per episode; updates of the same id count once) is
  **right** when the customer is a silent leaver and the alert comes after they began to
  slip away (``Truth.at_risk_from_ms``) and before they cancelled;
* **recall** is the share of silent leavers who left inside the window (and at least a
  month before its end) that got a right alert; **lead** is the days from that alert to
  the cancellation, **delay** the days from the last purchase to the alert;
* the load: alerts per 1,000 active customers per month, the share of customers ever
  alerted, customers alerted in more than one episode.

The baselines get the same episodes, the same silence filter (no alert on a customer who
complained within the lookback, or after a cancellation) and the same window:
"no purchase in N days" and "gap > k x own median gap".
"""

from __future__ import annotations

import bisect
import heapq
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

from churnwatch.customer import Customer, event_order
from churnwatch.detection import AT_RISK_SILENT, SILENT_CHURN, Detector
from churnwatch.model.training import DAYS_PER_MONTH, History
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
            if c.deadline_ms is not None:  # the next step of the episode
                heapq.heappush(due, (c.deadline_ms, cid))

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
class Window:
    """The part of a world alerts are counted in (the detector sees all of it)."""

    start_ms: int
    end_ms: int
    day_ms: float = 86400_000.0


@dataclass(frozen=True)
class Score:
    alerts: int
    right: int
    precision: float
    silent_leavers: int
    detected: int
    recall: float
    median_lead_days: float | None  # alert -> cancellation
    median_delay_days: float | None  # last purchase -> alert
    alerts_per_1000_month: float
    share_alerted: float
    repeat_customers: int  # alerted in more than one episode


def first_per_episode(alerts: Iterable[dict], alert_type: str = AT_RISK_SILENT) -> list[dict]:
    """One row per alert id (its first revision): updates are not new alerts."""
    first: dict[str, dict] = {}
    for a in alerts:
        if a.get("alert_type", alert_type) != alert_type:
            continue
        seen = first.get(a["alert_id"])
        if seen is None or a["detected_at"] < seen["detected_at"]:
            first[a["alert_id"]] = a
    return sorted(first.values(), key=lambda a: (a["detected_at"], a["alert_id"]))


def score(
    alerts: Iterable[dict],
    truth: Iterable[Truth],
    hist: dict[str, History],
    window: Window,
) -> Score:
    """AT_RISK_SILENT alerts (or a baseline's) against the ground truth, in the window."""
    by_id = {t.customer_id: t for t in truth}
    inside = [
        a for a in first_per_episode(alerts) if window.start_ms <= a["detected_at"] < window.end_ms
    ]
    right, detected_at = 0, {}
    per_customer: dict[str, int] = {}
    for a in inside:
        cid, at = a["customer_id"], a["detected_at"]
        per_customer[cid] = per_customer.get(cid, 0) + 1
        t = by_id.get(cid)
        if _is_right(t, at):
            right += 1
            detected_at.setdefault(cid, at)
    month_ms = window.day_ms * DAYS_PER_MONTH
    eligible = [
        t
        for t in by_id.values()
        if t.silent_leaver
        and t.left_at_ms is not None
        and window.start_ms <= t.left_at_ms <= window.end_ms - month_ms
    ]
    found = [t for t in eligible if t.customer_id in detected_at]
    leads = [
        (t.churn_at_ms - detected_at[t.customer_id]) / window.day_ms
        for t in found
        if t.churn_at_ms is not None
    ]
    delays = [(detected_at[t.customer_id] - t.left_at_ms) / window.day_ms for t in found]
    months = _active_months(hist, window)
    active = _active_customers(hist, window)
    return Score(
        alerts=len(inside),
        right=right,
        precision=right / len(inside) if inside else 0.0,
        silent_leavers=len(eligible),
        detected=len(found),
        recall=len(found) / len(eligible) if eligible else 0.0,
        median_lead_days=round(statistics.median(leads), 1) if leads else None,
        median_delay_days=round(statistics.median(delays), 1) if delays else None,
        alerts_per_1000_month=1000 * len(inside) / months if months else 0.0,
        share_alerted=len(per_customer) / active if active else 0.0,
        repeat_customers=sum(1 for n in per_customer.values() if n > 1),
    )


def _is_right(t: Truth | None, at: int) -> bool:
    if t is None or not t.silent_leaver or t.at_risk_from_ms is None:
        return False
    return t.at_risk_from_ms <= at and (t.churn_at_ms is None or at <= t.churn_at_ms)


def _active_months(hist: dict[str, History], w: Window) -> float:
    total = 0.0
    for h in hist.values():
        lo = max(h.first_seen_ms, w.start_ms)
        hi = min(h.churn_ms if h.churn_ms is not None else w.end_ms, w.end_ms)
        total += max(0, hi - lo) / w.day_ms / DAYS_PER_MONTH
    return total


def _active_customers(hist: dict[str, History], w: Window) -> int:
    return sum(
        1
        for h in hist.values()
        if h.first_seen_ms < w.end_ms and (h.churn_ms is None or h.churn_ms >= w.start_ms)
    )


def silent_churn_exact(alerts: Iterable[dict], truth: Iterable[Truth]) -> tuple[int, int, int]:
    """SILENT_CHURN against the truth: (expected, missing, unexpected)."""
    expected = {t.customer_id for t in truth if t.churned and t.silent}
    raised = {a["customer_id"] for a in alerts if a["alert_type"] == SILENT_CHURN}
    return len(expected), len(expected - raised), len(raised - expected)


# --- baselines ------------------------------------------------------------------------
def rule_alerts(
    hist: dict[str, History],
    quiet_days: float | None = None,
    gap_multiple: float | None = None,
    lookback_days: float = 180.0,
    day_ms: float = 86400_000.0,
) -> list[dict]:
    """ "No purchase in N days" (``quiet_days``) or "gap > k x own median gap"
    (``gap_multiple``): one alert per quiet spell, when the spell passes the limit, if the
    customer is still on the books and has not complained within the lookback."""
    if (quiet_days is None) == (gap_multiple is None):
        raise ValueError("give exactly one of quiet_days and gap_multiple")
    population_gap = _population_median_gap(hist, day_ms)
    lookback = lookback_days * day_ms
    alerts = []
    for cid, h in hist.items():
        negatives = sorted(r["occurred_at"] for r in h.rows if _negative(r))
        tx = h.tx_ms
        for i, last in enumerate(tx):
            if quiet_days is not None:
                limit = quiet_days * day_ms
            else:
                gaps = [b - a for a, b in pairwise(tx[: i + 1])]
                own = statistics.median(gaps) if len(gaps) >= 2 else population_gap
                limit = gap_multiple * own
            at = int(last + limit)
            nxt = tx[i + 1] if i + 1 < len(tx) else None
            if nxt is not None and nxt <= at:
                continue
            if h.churn_ms is not None and h.churn_ms <= at:
                continue
            j = bisect.bisect_right(negatives, at)
            if j and at - negatives[j - 1] <= lookback:
                continue
            alerts.append({"customer_id": cid, "detected_at": at, "alert_id": f"{cid}:{last}"})
    return alerts


def _negative(row: dict) -> bool:
    from churnwatch.customer import is_negative_feedback

    return "kind" in row and is_negative_feedback(row)


def _population_median_gap(hist: dict[str, History], day_ms: float) -> float:
    gaps = [b - a for h in hist.values() for a, b in pairwise(h.tx_ms)]
    return statistics.median(gaps) if gaps else 14 * day_ms
