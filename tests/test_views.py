"""BI views on a real DuckDB file filled with rows whose view output is worked out by hand."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from churnwatch.commands import docs
from churnwatch.warehouse.alert_events import AlertLedger
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from churnwatch.warehouse.views import VIEWS, create_views, nps_trend_sql
from tests.test_views_samples import AS_OF, fill_sample, ms


@pytest.fixture
def wh(tmp_path):
    wh = fill_sample(tmp_path / "wh.duckdb")
    create_views(wh)
    yield wh
    wh.close()


def test_view_columns_are_exactly_the_documented_ones(wh):
    for v in VIEWS:
        described = [r[0] for r in wh.query(f"DESCRIBE {v.name}")]
        assert tuple(described) == v.column_names, v.name


def test_views_exist_on_an_empty_warehouse_and_return_nothing(tmp_path):
    wh = DuckDBWarehouse(tmp_path / "empty.duckdb")
    create_views(wh)
    create_views(wh)  # idempotent
    for v in VIEWS:
        rows = wh.query(f"SELECT * FROM {v.name}")
        # v_as_of and v_customer_day always have their one row (epoch / default day).
        assert len(rows) == (1 if v.name in ("v_as_of", "v_customer_day") else 0), v.name
    assert wh.query("SELECT * FROM v_customer_day") == [(86400.0, "default", None)]
    wh.close()


def test_as_of_is_the_newest_stored_time(wh):
    assert wh.query("SELECT as_of FROM v_as_of") == [(AS_OF,)]


def test_customer_day_is_the_fixed_window_length(wh):
    # The sample's FIXED aggregates are 86400 s long; day 0 is the 2025-01-01 signups.
    assert wh.query("SELECT * FROM v_customer_day") == [
        (86400.0, "feedback_aggregates", dt.datetime(2025, 1, 1))
    ]


def test_nps_trend(wh):
    rows = wh.query("SELECT * FROM v_nps_trend")
    # 2025-05-01 (customer day 120 after 2025-01-01): c2 answered NPS 3 (detractor) CSAT 2
    # -> NPS -100. 2026-06-10 (day 525): NPS 10, 7, 2 -> 1 promoter, 1 passive, 1 detractor
    # -> NPS 0; CSAT (5+4)/2. The complaints carry no score, so 2026-06-30 has no row.
    assert rows == [
        (dt.datetime(2025, 5, 1), 120, 1, 1, 0, 0, 1, -100.0, 1, 2.0),
        (dt.datetime(2026, 6, 10), 525, 3, 3, 1, 1, 1, 0.0, 2, 4.5),
    ]


def test_silent_churn_share_from_churn_events_and_silent_churn_alerts(wh):
    # c3 cancelled on 06-20 and a1 is its SILENT_CHURN alert (30000). Add a vocal churner
    # (c2 complained, then closed its account on 06-20 and again on 06-22: counted once).
    from tests.test_views_samples import customer_event

    wh.upsert("customer_events", [
        customer_event("ce-c2-close", "c2", ms(2026, 6, 20, 18), "ACCOUNT_CLOSED"),
        customer_event("ce-c2-close2", "c2", ms(2026, 6, 22), "ACCOUNT_CLOSED"),
    ])  # fmt: skip
    rows = wh.query("SELECT * FROM v_silent_churn_share")
    assert rows == [(dt.datetime(2026, 6, 20), 535, 2, 1, 1, 0.5, 30000.0)]


def test_views_bucket_by_a_compressed_customer_day(tmp_path):
    """A demo-like run: 1 customer day = 0.5 s. Buckets follow it, not the calendar date."""
    from tests.test_views_samples import aggregate, customer_event, feedback

    wh = DuckDBWarehouse(tmp_path / "demo.duckdb")
    t0 = ms(2026, 6, 20)  # a multiple of 500 ms: aligned like Beam's fixed windows
    row = aggregate("FIXED", 20, "all", "all", 1, 1, 0, 10.0, 0)
    wh.upsert(
        "feedback_aggregates",
        [
            {**row, "window_start": t0 + 500 * day, "window_end": t0 + 500 * (day + 1)}
            for day in range(3)
        ],
    )
    wh.upsert(
        "feedback_events",
        [  # day 0 twice (0.1 s and 0.4 s), day 2 once (1.2 s)
            feedback("n1", "c1", t0 + 100, "SURVEY_RESPONSE", nps=10),
            feedback("n2", "c2", t0 + 400, "SURVEY_RESPONSE", nps=0),
            feedback("n3", "c3", t0 + 1200, "SURVEY_RESPONSE", nps=9),
        ],
    )
    create_views(wh)
    assert wh.query("SELECT day_seconds, recorded_in FROM v_customer_day") == [
        (0.5, "feedback_aggregates")
    ]
    wh.upsert("customer_events", [  # churn on days 0 and 2 (0.2 s, 1.3 s)
        customer_event("x1", "c1", t0 + 200, "CANCELLATION"),
        customer_event("x2", "c2", t0 + 1300, "CANCELLATION"),
    ])  # fmt: skip
    assert wh.query("SELECT day_number, churned_customers FROM v_silent_churn_share") == [
        (0, 1),
        (2, 1),
    ]
    assert wh.query("SELECT day_number, nps_answers, nps FROM v_nps_trend") == [
        (0, 2, 0.0),
        (2, 1, 100.0),
    ]
    wh.close()


def test_open_alerts_follow_the_lifecycle(wh):
    rows = wh.query("SELECT alert_id, above_authority, age_days, state FROM v_open_alerts")
    # Nobody acted yet: every customer alert is OPEN (a2 too, although c1 bought on 06-01
    # after it: that is for reconcile to decide). a5, a 29-day-old spike, dropped out.
    assert rows == [
        ("a1", True, pytest.approx(5.5), "OPEN"),
        ("a2", True, pytest.approx(46.5), "OPEN"),
        ("a3", True, pytest.approx(10.5), "OPEN"),
        ("a4", False, pytest.approx(2.5), "OPEN"),
        ("a6", False, pytest.approx(1.5), "OPEN"),
    ]
    ledger = AlertLedger(wh)
    # c1's PURCHASE on 06-01 after a2 (05-15) -> RECOVERED; a1 (SILENT_CHURN at c3's
    # cancellation) and a3 (c6 silent since) stay open.
    assert ledger.reconcile() == Counter(checked=3, RECOVERED=1)
    ledger.act("a3", "ACKNOWLEDGED", "alice", "calling c6")
    ledger.act("a1", "ACKNOWLEDGED", "bob")
    ledger.act("a1", "LOST", "bob", "moved to a competitor")
    rows = wh.query("SELECT alert_id, state, acknowledged_by FROM v_open_alerts")
    assert rows == [("a3", "ACKNOWLEDGED", "alice"), ("a4", "OPEN", None), ("a6", "OPEN", None)]
    assert wh.query("SELECT * FROM v_alert_funnel") == [
        # owner, type, raised, acknowledged, saved, lost, not_a_risk, recovered, still_open
        ("account_director", "SILENT_CHURN", 1, 1, 0, 1, 0, 0, 0),
        ("frontline_agent", "AT_RISK_SILENT", 2, 1, 0, 0, 0, 1, 1),
        ("product_quality_lead", "ISSUE_SPIKE", 3, 0, 0, 0, 0, 0, 3),
    ]


def test_revenue_at_risk_by_owner(wh):
    assert wh.query("SELECT * FROM v_revenue_at_risk_by_owner") == [
        ("account_director", 1, 1, 30000.0, 1),
        ("frontline_agent", 2, 2, 2800.0, 2),
        ("product_quality_lead", 3, 2, 0.0, 0),
    ]


def test_top_spiking_topics(wh):
    rows = wh.query("SELECT topic, spikes, affected_customers FROM v_top_spiking_topics")
    assert rows == [("billing", 2, 17), ("login", 1, 3)]


def test_survey_cadence_counts_and_lists_overdue_customers(wh):
    rows = wh.query("SELECT customer_id, overdue FROM v_survey_cadence")
    # c3 cancelled: not listed. c4 never surveyed, c2 last surveyed 425 days before as_of.
    assert rows == [("c4", True), ("c2", True), ("c1", False), ("c5", False), ("c6", False)]
    assert wh.query("SELECT count(*) FILTER (WHERE overdue) FROM v_survey_cadence") == [(2,)]


def test_committed_data_dictionary_is_up_to_date():
    assert docs.DEFAULT_OUT.read_text() == docs.render(), "run `churnwatch docs`"
    for v in VIEWS:
        assert f"### `{v.name}`" in docs.render()


def test_nps_trend_sql_buckets_compressed_time(wh):
    # The demo report buckets by simulated day; with 12-hour buckets the 06-10 answers at
    # 09:00-11:00 still share one bucket, and 2025-05-01 00:00 is its own.
    bucket = "time_bucket(INTERVAL 43200000 MILLISECONDS, occurred_at)"
    rows = wh.query(f"SELECT day, survey_responses, nps FROM ({nps_trend_sql(bucket)})")
    assert rows == [
        (dt.datetime(2025, 5, 1), 1, -100.0),
        (dt.datetime(2026, 6, 10), 3, 0.0),
    ]


def test_current_alerts_columns_are_the_documented_ones(wh):
    from churnwatch.warehouse.alert_events import CURRENT_ALERTS_COLUMNS

    described = [r[0] for r in wh.query("DESCRIBE current_alerts")]
    assert described == [c for c, _ in CURRENT_ALERTS_COLUMNS]


def test_a_pipeline_warehouse_has_the_views_from_the_start(tmp_path):
    """prepare_warehouse (pipeline start) creates tables and views: BI can read the file,
    and the read-only report needs nothing written."""
    from churnwatch.warehouse import prepare_warehouse

    path = tmp_path / "pipeline.duckdb"
    prepare_warehouse(f"duckdb://{path}")
    DuckDBWarehouse.close_all()
    wh = DuckDBWarehouse(path, read_only=True)
    try:
        names = {r[0] for r in wh.query("SELECT view_name FROM duckdb_views() WHERE NOT internal")}
        assert {v.name for v in VIEWS} | {"current_alerts"} <= names
    finally:
        wh.close()
