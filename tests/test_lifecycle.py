"""The alert lifecycle rules (pure): legal steps and outcomes read from later events."""

from __future__ import annotations

import re

import pytest

from churnwatch import lifecycle as lc


@pytest.mark.parametrize(
    ("current", "target", "source"),
    [
        (lc.OPEN, lc.ACKNOWLEDGED, lc.PERSON),
        (lc.ACKNOWLEDGED, lc.SAVED, lc.PERSON),
        (lc.ACKNOWLEDGED, lc.LOST, lc.PERSON),
        (lc.ACKNOWLEDGED, lc.NOT_A_RISK, lc.PERSON),
        (lc.OPEN, lc.RECOVERED, lc.DATA),  # nobody acted, the customer came back
        (lc.ACKNOWLEDGED, lc.LOST, lc.DATA),
    ],
)
def test_legal_steps(current, target, source):
    lc.check_transition(current, target, source)  # raises if illegal


@pytest.mark.parametrize(
    ("current", "target", "source", "message"),
    [
        (lc.OPEN, lc.SAVED, lc.PERSON, "acknowledge it before resolving it SAVED"),
        (lc.SAVED, lc.LOST, lc.PERSON, "already resolved (SAVED)"),
        (lc.RECOVERED, lc.LOST, lc.DATA, "already resolved (RECOVERED)"),
        (lc.ACKNOWLEDGED, lc.ACKNOWLEDGED, lc.PERSON, "cannot go from ACKNOWLEDGED"),
        (lc.OPEN, lc.SAVED, lc.DATA, "cannot go from OPEN to SAVED"),  # data never "saves"
    ],
)
def test_illegal_steps_say_why(current, target, source, message):
    with pytest.raises(lc.IllegalTransition, match=re.escape(message)):
        lc.check_transition(current, target, source)


def event(event_id, kind, at, customer="c1"):
    return {"event_id": event_id, "customer_id": customer, "type": kind, "occurred_at": at}


AT_RISK = {"alert_type": "AT_RISK_SILENT", "customer_id": "c1", "detected_at": 1000}


def test_at_risk_then_purchase_is_recovered():
    events = [event("old", "PURCHASE", 500), event("p", "PURCHASE", 2000)]
    outcome = lc.outcome_from_data(AT_RISK, events)
    assert outcome == lc.DataOutcome(lc.RECOVERED, 2000, "p", "PURCHASE after the alert")


def test_at_risk_then_cancellation_is_lost_and_the_first_decisive_event_wins():
    events = [
        event("x", "PURCHASE", 3000, customer="c2"),  # someone else
        event("d", "DOWNGRADE", 1500),  # not decisive
        event("c", "CANCELLATION", 2000),
        event("p", "PURCHASE", 2500),  # after the cancellation: too late
    ]
    assert lc.outcome_from_data(AT_RISK, events).state == lc.LOST


def test_silent_churn_is_not_resolved_by_its_own_cancellation():
    alert = {"alert_type": "SILENT_CHURN", "customer_id": "c1", "detected_at": 1000}
    assert lc.outcome_from_data(alert, [event("c", "CANCELLATION", 1000)]) is None
    # ...but a win-back (a new signup) after it is RECOVERED.
    back = lc.outcome_from_data(alert, [event("s", "SIGNUP", 4000)])
    assert back is not None and back.state == lc.RECOVERED


def test_topic_alerts_and_quiet_customers_have_no_data_outcome():
    spike = {"alert_type": "ISSUE_SPIKE", "customer_id": None, "detected_at": 1000}
    assert lc.outcome_from_data(spike, [event("p", "PURCHASE", 2000)]) is None
    assert lc.outcome_from_data(AT_RISK, []) is None


def test_revenue_at_risk_counts_each_customer_once():
    alerts = [
        {"alert_id": "a", "customer_id": "c1", "revenue_at_risk": 900.0},
        {"alert_id": "b", "customer_id": "c1", "revenue_at_risk": 1000.0},  # same customer
        {"alert_id": "c", "customer_id": "c2", "revenue_at_risk": 50.0},
        {"alert_id": "t", "customer_id": None, "revenue_at_risk": 7.0},  # a topic alert
    ]
    assert lc.revenue_at_risk(alerts) == 1000.0 + 50.0 + 7.0
