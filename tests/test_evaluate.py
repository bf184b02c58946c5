"""Scoring against ground truth, and the baselines on the same footing as the detector."""

from __future__ import annotations

from churnwatch.evaluate import Window, first_per_episode, rule_alerts, score
from churnwatch.model.training import histories
from churnwatch.simulate import Truth

DAY = 86_400_000


def purchase(cid: str, day: float) -> dict:
    return {
        "customer_id": cid,
        "occurred_at": int(day * DAY),
        "type": "PURCHASE",
        "event_id": f"{cid}{day}",
    }


def event(cid: str, day: float, **kw) -> dict:
    return {"customer_id": cid, "occurred_at": int(day * DAY), "event_id": f"{cid}e{day}", **kw}


def test_no_purchase_in_n_days_alerts_once_per_quiet_spell():
    hist = histories(
        [purchase("A", d) for d in (0, 10, 100, 105)]
        + [purchase("B", 0), event("B", 20, type="CANCELLATION")]
        + [purchase("C", 0), event("C", 20, kind="COMPLAINT")]
    )
    alerts = rule_alerts(hist, quiet_days=30)
    by = {(a["customer_id"], a["detected_at"] // DAY) for a in alerts}
    # A: quiet 10 -> 100 (alert at 40) and after 105 (alert at 135); B cancelled before 30;
    # C complained within the lookback, so the rule stays silent as the detector does
    assert by == {("A", 40), ("A", 135)}


def test_gap_rule_uses_the_customers_own_median_gap():
    hist = histories(
        [purchase("A", d) for d in (0, 2, 4, 6)] + [purchase("B", d) for d in (0, 20, 40, 60)]
    )
    alerts = {a["customer_id"]: a["detected_at"] // DAY for a in rule_alerts(hist, gap_multiple=3)}
    assert alerts == {"A": 6 + 6, "B": 60 + 60}


def truth(cid, leaver=False, at_risk=None, left=None, churn=None) -> Truth:
    return Truth(
        cid,
        "x",
        "smb",
        10.0,
        0,
        churn is not None,
        leaver,
        churn_at_ms=churn,
        left_at_ms=left,
        at_risk_from_ms=at_risk,
        silent_leaver=leaver,
    )


def test_score_counts_alerts_as_a_support_lead_sees_them():
    events = [purchase(c, 0) for c in "ABCD"] + [event("A", 90, type="CANCELLATION")]
    hist = histories(events)
    truths = [
        truth("A", True, at_risk=int(40 * DAY), left=int(50 * DAY), churn=int(90 * DAY)),
        truth("B", True, at_risk=int(40 * DAY), left=int(50 * DAY)),
        truth("C"),
        truth("D"),
    ]
    alerts = [
        {"alert_id": "a1", "customer_id": "A", "detected_at": int(60 * DAY)},  # right, lead 30
        {"alert_id": "a1", "customer_id": "A", "detected_at": int(70 * DAY)},  # its update
        {"alert_id": "b1", "customer_id": "B", "detected_at": int(20 * DAY)},  # too early
        {"alert_id": "c1", "customer_id": "C", "detected_at": int(60 * DAY)},  # a stayer
        {"alert_id": "c2", "customer_id": "C", "detected_at": int(100 * DAY)},  # again
        {"alert_id": "d1", "customer_id": "D", "detected_at": int(200 * DAY)},  # outside
    ]
    assert len(first_per_episode(alerts)) == 5
    s = score(alerts, truths, hist, Window(0, int(120 * DAY), DAY))
    assert (s.alerts, s.right) == (4, 1)
    assert s.precision == 0.25
    assert (s.silent_leavers, s.detected, s.recall) == (2, 1, 0.5)
    assert s.median_lead_days == 30.0 and s.median_delay_days == 10.0
    assert s.repeat_customers == 1  # C, in two episodes
    assert s.share_alerted == 3 / 4
    # A is on the books 90 days, B, C, D 120: 450 customer-days = 14.78 months
    assert abs(s.alerts_per_1000_month - 1000 * 4 / (450 / 30.44)) < 1e-6
