"""BI views on a real DuckDB file filled with rows whose view output is worked out by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from churnwatch.commands import docs
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from churnwatch.warehouse.views import VIEWS, create_views, nps_trend_sql
from tests.test_views_samples import AS_OF, fill_sample


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
        # v_as_of always has its one row (the epoch when nothing is stored).
        assert len(rows) == (1 if v.name == "v_as_of" else 0), v.name
    wh.close()


def test_as_of_is_the_newest_stored_time(wh):
    assert wh.query("SELECT as_of FROM v_as_of") == [(AS_OF,)]


def test_nps_trend(wh):
    rows = wh.query("SELECT * FROM v_nps_trend")
    # 2025-05-01: c2 answered NPS 3 (detractor) CSAT 2 -> NPS -100.
    # 2026-06-10: NPS 10, 7, 2 -> 1 promoter, 1 passive, 1 detractor -> NPS 0; CSAT (5+4)/2.
    # The complaints carry no score, so 2026-06-30 has no row.
    assert rows == [
        (dt.date(2025, 5, 1), 1, 1, 0, 0, 1, -100.0, 1, 2.0),
        (dt.date(2026, 6, 10), 3, 3, 1, 1, 1, 0.0, 2, 4.5),
    ]


def test_silent_churn_share_uses_latest_pane_of_fixed_all_rows(wh):
    rows = wh.query("SELECT * FROM v_silent_churn_share")
    # 06-20: the late pane (3 churned, 2 silent) replaced pane 0; SLIDING/segment rows excluded.
    assert rows == [
        (dt.date(2026, 6, 20), 3, 2, 1, pytest.approx(2 / 3), 7000.0),
        (dt.date(2026, 6, 21), 0, 0, 0, None, 0.0),
    ]


def test_open_alerts(wh):
    rows = wh.query("SELECT alert_id, above_authority, age_days FROM v_open_alerts")
    # a2 closed (c1 bought after it), a5 closed (29 days old spike); revenue desc, then id.
    assert rows == [
        ("a1", True, pytest.approx(5.5)),
        ("a3", True, pytest.approx(10.5)),
        ("a4", False, pytest.approx(2.5)),
        ("a6", False, pytest.approx(1.5)),
    ]


def test_revenue_at_risk_by_owner(wh):
    assert wh.query("SELECT * FROM v_revenue_at_risk_by_owner") == [
        ("account_director", 1, 1, 30000.0, 1),
        ("frontline_agent", 2, 1, 800.0, 1),
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
