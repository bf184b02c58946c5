"""The generated suites on real Great Expectations: seeded bad batches fail exactly the
expectations they break, good batches pass, and GX stays silent."""

from __future__ import annotations

import logging

import pytest

from churnwatch import schemas
from churnwatch.alerts import alert_row as build_alert
from churnwatch.clock import now_ms
from churnwatch.quality.rules import QualityRules
from churnwatch.quality.suites import build_suites
from churnwatch.routing import RoutingPolicy
from tests.helpers import customer, feedback
from transforms.quality import frame

TOLERANCE_MS = 300_000
TABLES = ("feedback_events", "customer_events", "churn_alerts")


@pytest.fixture(scope="module")
def runner():
    from churnwatch.quality.gx_runner import SuiteRunner

    suites = build_suites(
        {t: schemas.table(t) for t in TABLES},
        QualityRules.load(),
        tuple(RoutingPolicy.load().owners),
    )
    return SuiteRunner(suites)


def meta(row: dict) -> dict:
    return {**row, "message_id": None, "publish_time": None, "schema_revision": "abc"}


def feedback_batch(n: int = 60) -> list[dict]:
    rows = [meta(feedback(f"fe-{i}", f"C{i:06d}", nps_score=i % 11)) for i in range(n)]
    for i, row in enumerate(rows):  # realistic optional fields: some nulls, within limits
        row["csat_score"] = None if i % 3 else 1 + i % 5
        row["topic"] = None if i % 2 else "login"
    return rows


def customer_batch(n: int = 40) -> list[dict]:
    rows = [meta(customer(f"ce-{i}", f"C{i:06d}")) for i in range(n)]
    rows[0].update(type="CANCELLATION", amount=None, currency=None, monthly_revenue=0.0)
    rows[1].update(type="ACCOUNT_CLOSED", amount=None, currency=None, monthly_revenue=0.0)
    return rows


def failed(runner, table: str, rows: list[dict], now: int | None = None) -> set[str]:
    outcomes = runner.validate(
        table, frame(schemas.table(table).column_names, rows), now or now_ms(), TOLERANCE_MS
    )
    assert sorted(o.expectation_id for o in outcomes) == sorted(runner.suites[table].ids)
    return {o.expectation_id for o in outcomes if not o.success}


def test_good_batches_pass_every_expectation(runner):
    assert failed(runner, "feedback_events", feedback_batch()) == set()
    assert failed(runner, "customer_events", customer_batch()) == set()


def test_out_of_range_scores_fail_exactly_the_range_expectations(runner):
    rows = feedback_batch()
    rows[5]["nps_score"] = 11
    assert failed(runner, "feedback_events", rows) == {"nps_score.between"}
    rows[6]["csat_score"] = 0
    assert failed(runner, "feedback_events", rows) == {"nps_score.between", "csat_score.between"}


def test_duplicate_event_ids_fail_exactly_the_unique_expectation(runner):
    rows = feedback_batch()
    rows[7] = {**rows[7], "event_id": rows[3]["event_id"]}
    assert failed(runner, "feedback_events", rows) == {"event_id.unique"}


def test_a_producer_that_stops_filling_a_field_fails_its_null_rate(runner):
    rows = feedback_batch(60)
    for row in rows[:2]:  # 2 of 60 = 3 % nulls: within the 5 % limit
        row["segment"] = None
    assert failed(runner, "feedback_events", rows) == set()
    for row in rows[30:]:  # the producer stops filling segment half way through the window
        row["segment"] = None
    assert failed(runner, "feedback_events", rows) == {"segment.null_rate"}


def test_cancellation_revenue_rule(runner):
    rows = customer_batch()
    rows[0]["monthly_revenue"] = -50.0
    # the annotation (monthly_revenue >= 0) and the business rule both say so
    assert failed(runner, "customer_events", rows) == {
        "monthly_revenue.between",
        "cancellation_revenue.between",
    }
    rows = customer_batch()
    rows[1]["monthly_revenue"] = None  # a closure without revenue: only the rule catches it
    assert failed(runner, "customer_events", rows) == {"cancellation_revenue.not_null"}
    rows = customer_batch()
    rows[5]["monthly_revenue"] = None  # a purchase may leave it empty
    assert failed(runner, "customer_events", rows) == set()


def test_event_time_beyond_the_future_tolerance_and_bad_customer_ids(runner):
    now = now_ms()
    rows = feedback_batch()
    rows[2]["occurred_at"] = now + TOLERANCE_MS - 1_000  # within tolerance
    assert failed(runner, "feedback_events", rows, now) == set()
    rows[2]["occurred_at"] = now + TOLERANCE_MS + 60_000
    assert failed(runner, "feedback_events", rows, now) == {"occurred_at.event_time"}
    rows = feedback_batch()
    rows[4]["customer_id"] = "bad id with spaces"
    assert failed(runner, "feedback_events", rows) == {"customer_id.pattern"}


def alert_row(alert_id: str, owner: str) -> dict:
    """A ChurnAlert row as the pipeline writes it (the one builder fills the defaults)."""
    return build_alert(
        alert_id=alert_id,
        alert_type="SILENT_CHURN",
        severity="LOW",
        customer_id="C1",
        detected_at=now_ms() - 1000,
        processed_at=now_ms(),
        p_alive=0.1,
        expected_purchases=0.2,
        days_since_last_activity=40.0,
        typical_gap_days=7.0,
        revenue_at_risk=1200.0,
        reason_codes=["no_complaint_in_lookback"],
        owner=owner,
        authority_limit=100.0,
        model_version="v1",
    )


def test_alerts_need_an_owner_from_the_routing_policy(runner):
    rows = [alert_row(f"a{i}", "frontline_agent") for i in range(5)]
    assert failed(runner, "churn_alerts", rows) == set()
    rows[1]["owner"] = "  "
    assert failed(runner, "churn_alerts", rows) == {"owner.non_empty", "owner.routing_owner"}
    rows[1]["owner"] = "nobody_in_particular"
    assert failed(runner, "churn_alerts", rows) == {"owner.routing_owner"}


def test_results_carry_observed_values_and_counts(runner):
    rows = feedback_batch(50)
    rows[5]["nps_score"] = 42
    outcomes = runner.validate(
        "feedback_events",
        frame(schemas.table("feedback_events").column_names, rows),
        now_ms(),
        TOLERANCE_MS,
    )
    nps = next(o for o in outcomes if o.expectation_id == "nps_score.between")
    assert (nps.success, nps.unexpected_count, nps.element_count) == (False, 1, 50)
    assert '"partial_unexpected_list": [42]' in nps.observed_value
    assert nps.kwargs == '{"column": "nps_score", "max_value": 10, "min_value": 0}'


def test_gx_is_silent_and_keeps_no_results_in_memory(runner, capfd):
    capfd.readouterr()
    failed(runner, "feedback_events", feedback_batch())
    out, err = capfd.readouterr()
    assert out == "" and "Calculating Metrics" not in err and err == ""
    assert runner.stored_results() == 0  # a long-running stream must not grow the store


def test_building_a_context_logs_nothing_at_info(runner, caplog):
    from churnwatch.quality.gx_runner import SuiteRunner

    caplog.set_level(logging.INFO)
    SuiteRunner({})
    assert [r.getMessage() for r in caplog.records if r.name.startswith("great_expectations")] == []
