"""Pure detection rules: SILENT_CHURN, AT_RISK deadlines and episodes, signals, budget, ids."""

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
from churnwatch.model.bgnbd import BGNBDParams
from churnwatch.model.features import FEATURES
from churnwatch.model.risk import RiskModel
from churnwatch.routing import RoutingPolicy

DAY = 86_400_000
CDNOW = BGNBDParams(r=0.243, alpha=4.414, a=0.793, b=2.426, time_unit_days=7)


def model(**weights: float) -> RiskModel:
    """A hand-set risk model: risk = sigmoid(-4 + 2 x quiet_vs_rhythm + weights...), so a
    customer is at risk once silent well beyond their own rhythm, sooner with a signal."""
    w = {"quiet_vs_rhythm": 2.0, "downgraded": 3.0, "asked_about_leaving": 3.0, **weights}
    n = len(FEATURES)
    return RiskModel(
        coefs=tuple(w.get(f, 0.0) for f in FEATURES),
        intercept=-4.0,
        means=(0.0,) * n,
        scales=(1.0,) * n,
        bgnbd=CDNOW,
        budget_table=((0.5, 20.0), (0.7, 10.0), (0.9, 4.0)),
    )


MODEL = model()


def detector(**config) -> Detector:
    config.setdefault("risk_threshold", 0.7)
    return Detector(DetectorConfig(**config), MODEL, RoutingPolicy.load())


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
    assert alert["model_version"] == MODEL.version
    assert alert["revision"] == 0 and alert["risk"] is None
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


def test_deadline_is_where_the_risk_crosses_the_threshold():
    det = detector()
    c, _ = feed(det, [purchase(0), purchase(7), purchase(14), purchase(21)])
    due = c.deadline_ms
    assert due > 21 * DAY
    assert MODEL.risk(c, due, DAY) >= 0.7 - 1e-9
    assert MODEL.risk(c, due - DAY / 24, DAY) < 0.7  # within an hour of the crossing
    alert = det.fire(c, "C1", due, now_ms=due)
    assert alert["alert_type"] == AT_RISK_SILENT
    assert alert["risk"] == pytest.approx(MODEL.risk(c, due, DAY), abs=1e-4)
    assert alert["reason_codes"][:2] == ["no_complaint_in_lookback", "quiet_beyond_own_rhythm"]


def test_a_weekly_buyer_comes_due_sooner_than_a_monthly_one():
    weekly, _ = feed(detector(), [purchase(d) for d in (0, 7, 14, 21, 28)])
    monthly, _ = feed(detector(), [purchase(d) for d in (0, 30, 60, 90, 120)])
    assert weekly.deadline_ms - 28 * DAY < monthly.deadline_ms - 120 * DAY


def test_new_activity_moves_the_deadline_with_the_silence():
    """A purchase after a long silence resets it: the deadline moves later, to where the
    risk of the new history crosses the threshold."""
    det = detector()
    c, _ = feed(det, [purchase(0), purchase(7), purchase(14)])
    before = c.deadline_ms
    det.apply(c, "C1", purchase(60), now_ms=60 * DAY)
    assert c.deadline_ms > before
    assert MODEL.risk(c, c.deadline_ms, DAY) >= 0.7 - 1e-9 > MODEL.risk(c, before, DAY)


def test_signals_bring_the_deadline_forward_and_are_named():
    quiet = [purchase(0), purchase(7), purchase(14), purchase(21)]
    c_plain, _ = feed(detector(), quiet)
    c_signal, _ = feed(detector(), [*quiet, lifecycle(22, "DOWNGRADE", mrr=50.0)])
    assert c_signal.deadline_ms < c_plain.deadline_ms
    alert = detector().fire(c_signal, "C1", c_signal.deadline_ms, now_ms=0)
    assert "downgraded" in alert["reason_codes"]


def test_one_alert_per_episode_updated_in_place_until_renewed_activity():
    """Quiet for months: one alert id. It is updated (escalated, next revision) and then
    left alone; a purchase ends the episode and a later silence is a new alert."""
    det = detector(cooldown_days=30)
    c, _ = feed(det, [purchase(d) for d in (0, 7, 14, 21)])
    first = det.fire(c, "C1", c.deadline_ms, now_ms=0)
    assert first["revision"] == 0
    escalation_due = c.deadline_ms
    assert escalation_due > first["detected_at"]
    assert MODEL.risk(c, escalation_due, DAY) >= det.escalate_at - 1e-9
    second = det.fire(c, "C1", escalation_due, now_ms=0)
    assert second["alert_id"] == first["alert_id"]  # the same alert, updated
    assert second["revision"] == 1 and second["risk"] > first["risk"]
    assert severity_rank(second["severity"]) == severity_rank(first["severity"]) + 1
    assert c.deadline_ms is None  # quiet for ever after: nothing more to say
    # renewed activity closes the episode; the next one is a new alert, after the cooldown
    det.apply(c, "C1", purchase(200), now_ms=0)
    assert c.deadline_ms >= first["detected_at"] + 30 * DAY
    third = det.fire(c, "C1", c.deadline_ms, now_ms=0)
    assert third["alert_id"] != first["alert_id"] and third["revision"] == 0


def test_a_new_signal_in_an_open_episode_updates_the_alert():
    det = detector()
    c, _ = feed(det, [purchase(d) for d in (0, 7, 14, 21)])
    first = det.fire(c, "C1", c.deadline_ms, now_ms=0)
    later = first["detected_at"] + DAY
    [update] = det.apply(c, "C1", lifecycle(later / DAY, "DOWNGRADE", mrr=10.0), now_ms=0)
    assert update["alert_id"] == first["alert_id"] and update["revision"] == 1
    assert "downgraded" in update["reason_codes"]


def test_feedback_without_a_purchase_does_not_start_a_new_episode():
    det = detector()
    c, _ = feed(det, [purchase(d) for d in (0, 7, 14, 21)])
    first = det.fire(c, "C1", c.deadline_ms, now_ms=0)
    det.apply(c, "C1", feedback(first["detected_at"] / DAY + 1, "PRAISE"), now_ms=0)
    nxt = det.fire(c, "C1", c.deadline_ms, now_ms=0)
    assert nxt["alert_id"] == first["alert_id"]


def test_the_threshold_comes_from_the_alert_budget():
    policy = RoutingPolicy.load()
    assert Detector(DetectorConfig(alert_budget=10), MODEL, policy).threshold == 0.7
    assert Detector(DetectorConfig(alert_budget=25), MODEL, policy).threshold == 0.5
    # a budget below every measured rate takes the most selective threshold there is
    assert Detector(DetectorConfig(alert_budget=1), MODEL, policy).threshold == 0.9
    fixed = Detector(DetectorConfig(alert_budget=1, risk_threshold=0.42), MODEL, policy)
    assert fixed.threshold == 0.42


def test_alert_ids_are_deterministic():
    det_a, det_b = detector(), detector()
    events = [purchase(0), purchase(7), purchase(14), lifecycle(40, "ACCOUNT_CLOSED")]
    _, a = feed(det_a, events)
    _, b = feed(det_b, events)
    assert [x["alert_id"] for x in a] == [x["alert_id"] for x in b]
    _, replayed = feed(det_a, events)  # same customer object state is new here
    assert replayed[0]["alert_id"] == a[0]["alert_id"]


def severity_rank(name: str) -> int:
    return ["LOW", "MEDIUM", "HIGH", "CRITICAL"].index(name)


@pytest.mark.parametrize(
    ("revenue", "signals", "escalated", "expected"),
    [
        (60_000, [], False, "CRITICAL"),
        (12_000, [], False, "HIGH"),
        (100, ["asked_about_leaving"], False, "HIGH"),
        (3_000, [], False, "MEDIUM"),
        (100, ["downgraded"], False, "MEDIUM"),
        (100, [], False, "LOW"),
        (100, [], True, "MEDIUM"),  # an escalated episode goes one up
        (60_000, [], True, "CRITICAL"),
    ],
)
def test_severity_rule(revenue, signals, escalated, expected):
    assert severity(revenue, signals, escalated) == expected


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="risk_threshold"):
        DetectorConfig(risk_threshold=1.5)
    with pytest.raises(ValueError, match="alert_budget"):
        DetectorConfig(alert_budget=0)


def test_an_alert_is_never_dated_before_the_signal_that_raised_it():
    """Weekly buyer, quiet since day 21; a downgrade on day 40 puts the risk over the
    threshold at once. The curve (which uses the downgrade) crosses right after day 21,
    but nobody could have known before day 40: the alert is due after the downgrade."""
    from churnwatch.evaluate import replay

    quiet = [purchase(0), purchase(7), purchase(14), purchase(21)]
    downgrade = lifecycle(40, "DOWNGRADE", mrr=50.0)
    det = detector(risk_threshold=0.5)
    c, _ = feed(det, quiet)
    assert MODEL.risk(c, 30 * DAY, DAY) < 0.5  # quiet alone: not yet at risk on day 30
    c, _ = feed(det, [*quiet, downgrade])
    assert c.deadline_ms > downgrade["occurred_at"]
    alerts = replay(det, [*quiet, downgrade], until_ms=60 * DAY)
    assert alerts and all(a["detected_at"] > downgrade["occurred_at"] for a in alerts)
    assert "downgraded" in alerts[0]["reason_codes"]


def test_an_episode_that_opens_above_the_escalation_level_opens_escalated():
    """A downgrade after weeks of silence puts the risk past both levels at once: one
    alert, escalated, not revision 0 and revision 1 a millisecond apart."""
    from churnwatch.evaluate import replay

    det = detector(risk_threshold=0.5)
    events = [purchase(0), purchase(7), purchase(14), purchase(21)]
    events.append(lifecycle(55, "DOWNGRADE", mrr=10.0))
    c, _ = feed(det, events)
    assert MODEL.risk(c, c.deadline_ms, DAY) >= det.escalate_at
    alerts = replay(det, events, until_ms=200 * DAY)
    assert [a["revision"] for a in alerts] == [0]
    plain = replay(det, events[:-1], until_ms=200 * DAY)  # silence alone: step by step
    assert [a["revision"] for a in plain] == [0, 1]
    assert severity_rank(alerts[0]["severity"]) == severity_rank(plain[-1]["severity"])
