"""Pure detection rules: SILENT_CHURN, AT_RISK deadlines, signals, cooldown, ids."""

from __future__ import annotations

import pytest

from churnwatch.detection import (
    AT_RISK_SILENT,
    SILENT_CHURN,
    Customer,
    Detector,
    DetectorConfig,
    severity,
)
from churnwatch.model.bgnbd import BGNBDParams, p_alive
from churnwatch.routing import RoutingPolicy

DAY = 86_400_000
PARAMS = BGNBDParams(r=0.243, alpha=4.414, a=0.793, b=2.426, time_unit_days=7)


def detector(**config) -> Detector:
    return Detector(DetectorConfig(**config), PARAMS, RoutingPolicy.load())


def purchase(day: float, eid: str = "", amount: float = 100.0) -> dict:
    return {
        "event_id": eid or f"p{day}",
        "customer_id": "C1",
        "occurred_at": int(day * DAY),
        "type": "PURCHASE",
        "amount": amount,
        "monthly_revenue": None,
        "segment": "smb",
    }


def lifecycle(day: float, type_: str, **kw) -> dict:
    return {
        "event_id": f"{type_}{day}",
        "customer_id": "C1",
        "occurred_at": int(day * DAY),
        "type": type_,
        "amount": None,
        "monthly_revenue": kw.get("mrr"),
        "segment": "smb",
    }


def feedback(day: float, kind: str, nps=None, csat=None, topic=None) -> dict:
    return {
        "event_id": f"f{day}",
        "customer_id": "C1",
        "occurred_at": int(day * DAY),
        "kind": kind,
        "nps_score": nps,
        "csat_score": csat,
        "topic": topic,
        "text": None,
        "segment": "smb",
    }


def feed(det: Detector, events: list[dict]) -> tuple[Customer, list[dict]]:
    c, alerts = Customer(), []
    for e in events:
        alerts += det.apply(c, "C1", e, now_ms=e["occurred_at"])
    return c, alerts


def test_cancellation_without_complaint_is_silent_churn_with_owner_and_revenue():
    det = detector()
    c, alerts = feed(
        det, [lifecycle(0, "SIGNUP", mrr=1000.0), purchase(10), lifecycle(50, "CANCELLATION")]
    )
    assert [a["alert_type"] for a in alerts] == [SILENT_CHURN]
    alert = alerts[0]
    assert alert["revenue_at_risk"] == 12_000.0  # annualised monthly revenue before leaving
    assert alert["severity"] == "HIGH"  # >= 10k a year
    assert alert["owner"] == "account_manager"  # routing.yaml: HIGH -> account manager
    assert "no_complaint_in_lookback" in alert["reason_codes"]
    assert alert["model_version"] == PARAMS.version
    assert c.deadline_ms is None  # churned customers are no longer at risk


@pytest.mark.parametrize(
    "negative",
    [
        feedback(30, "COMPLAINT"),
        feedback(30, "SURVEY_RESPONSE", nps=6),
        feedback(30, "SURVEY_RESPONSE", csat=2),
    ],
)
def test_negative_feedback_in_the_lookback_makes_churn_vocal(negative):
    _, alerts = feed(detector(), [purchase(0), negative, lifecycle(50, "CANCELLATION")])
    assert alerts == []


def test_a_complaint_older_than_the_lookback_does_not_count():
    _, alerts = feed(
        detector(lookback_days=30),
        [purchase(0), feedback(5, "COMPLAINT"), lifecycle(50, "CANCELLATION")],
    )
    assert [a["alert_type"] for a in alerts] == [SILENT_CHURN]


def test_deadline_is_where_p_alive_crosses_the_threshold():
    det = detector(gap_floor_multiplier=0.01)
    c, _ = feed(det, [purchase(0), purchase(7), purchase(14), purchase(21)])
    assert c.repeat_purchases == 3
    weeks = (c.deadline_ms - c.first_ms) / (7 * DAY)
    assert p_alive(PARAMS, 3, 3.0, weeks) == pytest.approx(0.2, abs=1e-6)


def test_new_activity_recomputes_the_deadline_from_the_new_history():
    det = detector(gap_floor_multiplier=0.01)
    c, _ = feed(det, [purchase(0), purchase(7), purchase(14)])
    before = c.deadline_ms
    det.apply(c, "C1", purchase(20), now_ms=20 * DAY)
    # BG/NBD: a frequent buyer's silence speaks sooner, so a purchase can move the
    # absolute deadline either way; what must hold is P(alive) = θ at the new deadline.
    assert c.deadline_ms != before
    weeks = (c.deadline_ms - c.first_ms) / (7 * DAY)
    assert p_alive(PARAMS, 3, 20 / 7, weeks) == pytest.approx(0.2, abs=1e-6)


def test_signals_bring_the_deadline_forward_and_are_named():
    quiet = [purchase(0), purchase(7), purchase(14), purchase(21)]
    c_plain, _ = feed(detector(), quiet)
    c_signal, _ = feed(detector(), [*quiet, lifecycle(22, "DOWNGRADE", mrr=50.0)])
    assert c_signal.deadline_ms < c_plain.deadline_ms
    alert = detector().fire(c_signal, "C1", c_signal.deadline_ms, now_ms=0)
    assert "downgraded" in alert["reason_codes"]


def test_fallback_rule_for_short_histories_uses_the_own_gap():
    det = detector(fallback_gap_multiplier=3, min_repeat_purchases=5)
    c, _ = feed(det, [purchase(0), purchase(10)])
    assert c.deadline_ms == 10 * DAY + 3 * 10 * DAY  # 3 x own median gap (10 days)
    alert = det.fire(c, "C1", c.deadline_ms, now_ms=0)
    assert "gap_far_beyond_own_typical" in alert["reason_codes"]
    assert alert["p_alive"] is None


def test_cooldown_holds_back_a_second_at_risk_alert():
    det = detector(cooldown_days=60, min_repeat_purchases=5, fallback_gap_multiplier=2)
    c, _ = feed(det, [purchase(0), purchase(10)])
    first = det.fire(c, "C1", c.deadline_ms, now_ms=0)
    assert first["alert_type"] == AT_RISK_SILENT
    det.apply(c, "C1", purchase(31), now_ms=0)
    assert c.deadline_ms >= first["detected_at"] + 60 * DAY


def test_alert_ids_are_deterministic():
    det_a, det_b = detector(), detector()
    events = [purchase(0), purchase(7), purchase(14), lifecycle(40, "ACCOUNT_CLOSED")]
    _, a = feed(det_a, events)
    _, b = feed(det_b, events)
    assert [x["alert_id"] for x in a] == [x["alert_id"] for x in b]
    _, replayed = feed(det_a, events)  # same customer object state is new here
    assert replayed[0]["alert_id"] == a[0]["alert_id"]


@pytest.mark.parametrize(
    ("revenue", "signals", "expected"),
    [
        (60_000, [], "CRITICAL"),
        (12_000, [], "HIGH"),
        (100, ["asked_about_leaving"], "HIGH"),
        (3_000, [], "MEDIUM"),
        (100, ["downgraded"], "MEDIUM"),
        (100, [], "LOW"),
    ],
)
def test_severity_rule(revenue, signals, expected):
    assert severity(revenue, signals) == expected


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="p_alive_threshold"):
        DetectorConfig(p_alive_threshold=1.5)
    with pytest.raises(ValueError, match="unknown signals"):
        DetectorConfig(signals=frozenset({"vibes"}))
