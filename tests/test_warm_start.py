"""Warm start's plan and queries on a real DuckDB warehouse (churnwatch/warm_start.py)."""

from __future__ import annotations

import pytest

from churnwatch import warm_start
from churnwatch.aggregation import AggregateConfig
from churnwatch.spikes import SpikeConfig
from churnwatch.warehouse import prepare_warehouse
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from tests.helpers import at_risk_alert, customer, feedback

DAY_MS = 86_400_000
T0 = 1_750_000_000_000
META = {"message_id": "m", "publish_time": None, "schema_revision": "r1"}


@pytest.fixture
def warehouse(tmp_path):
    url = f"duckdb://{tmp_path / 'wh.duckdb'}"
    prepare_warehouse(url)
    yield url, DuckDBWarehouse.shared(tmp_path / "wh.duckdb")
    DuckDBWarehouse.close_all()


def alert(alert_id: str, revision: int, alert_type: str = "AT_RISK_SILENT") -> dict:
    return at_risk_alert(alert_id, "C1", revision, T0, alert_type)


def test_an_empty_warehouse_plans_an_empty_start(warehouse):
    url, _wh = warehouse
    plan = warm_start.plan(url, AggregateConfig(), dedupe_ttl_seconds=3600)
    assert plan.empty and plan.windows_from_ms is None and plan.dedupe_from_ms is None


def test_cut_offs_follow_the_newest_stored_event(warehouse):
    url, wh = warehouse
    wh.upsert("feedback_events", [{**feedback("f1", occurred_at=T0), **META}])
    wh.upsert("customer_events", [{**customer("c1", occurred_at=T0 + 5 * DAY_MS), **META}])
    config = AggregateConfig(allowed_lateness_days=3, sliding_days=7, fixed_days=1)
    plan = warm_start.plan(url, config, dedupe_ttl_seconds=3600)
    newest = T0 + 5 * DAY_MS
    assert plan.newest_ms == newest
    # every window still open at `newest` starts after newest - lateness - longest window;
    # one more window length rebuilds what a killed run left without its final pane
    assert plan.windows_from_ms == newest - (3 + 2 * 7) * DAY_MS
    assert plan.dedupe_from_ms == newest - 3_600_000


def test_the_spike_plan_knows_reported_topics_and_stored_spike_episodes(warehouse):
    url, wh = warehouse
    spikes = SpikeConfig(window_days=2, period_days=1, allowed_lateness_days=3)
    newest = T0 + 40 * DAY_MS
    wh.upsert(
        "feedback_events",
        [
            {**feedback("f1", occurred_at=T0, kind="COMPLAINT", topic="login"), **META},
            {**feedback("f2", occurred_at=newest, kind="COMPLAINT", topic="billing"), **META},
            {**feedback("f3", occurred_at=T0, kind="PRAISE", topic="speed"), **META},
        ],
    )
    spike = {**alert("s1", 0, "ISSUE_SPIKE"), "customer_id": None, "topic": "login"}
    wh.upsert("churn_alerts", [{**spike, "detected_at": newest - 5 * DAY_MS}])
    plan = warm_start.plan(url, AggregateConfig(), 3600, spikes)
    windows_from, decide_from = warm_start.spike_cut_offs(newest, spikes)
    # decide_from = T - lateness - 2 windows; the baseline (14 periods) needs 15 days more
    assert decide_from == newest - (3 + 4) * DAY_MS
    assert windows_from == decide_from - (2 + 13) * DAY_MS
    assert plan.windows_from_ms == min(windows_from, newest - (3 + 14) * DAY_MS)
    assert plan.spikes.decide_from_ms == plan.windows_from_ms + (2 + 13) * DAY_MS
    window = 2 * DAY_MS
    # only complaints reported before the cut-off (+ a window) make a topic "known"
    assert plan.spikes.first_end == {"login": plan.windows_from_ms + window}
    end = newest - 5 * DAY_MS
    assert plan.spikes.episodes == {"login": [(end - window, end)]}


def test_stored_events_come_back_as_the_flow_carries_them(warehouse):
    url, wh = warehouse
    written = {**feedback("f1", occurred_at=T0, nps_score=3, topic="login"), **META}
    wh.upsert("feedback_events", [written])
    wh.upsert("feedback_events", [{**feedback("f2", occurred_at=T0 + DAY_MS), **META}])
    store = warm_start.open_store(url)
    rows = {r["event_id"]: r for r in store.events("feedback")}
    assert rows["f1"] == written  # timestamps as epoch millis, every column
    assert [r["event_id"] for r in store.events("feedback", since_ms=T0 + 1)] == ["f2"]


def test_the_highest_stored_revision_of_each_detector_alert_is_known(warehouse):
    url, wh = warehouse
    wh.upsert("churn_alerts", [alert("a1", 0)])
    wh.upsert("churn_alerts", [alert("a1", 2)])  # updated in place: revision 2 kept
    wh.upsert("churn_alerts", [alert("a2", 0, "SILENT_CHURN")])
    wh.upsert("churn_alerts", [{**alert("s1", 0, "ISSUE_SPIKE"), "customer_id": None}])
    found = sorted(warm_start.open_store(url).alert_revisions())
    assert found == [("C1", "a1", 2), ("C1", "a2", 0)]  # spikes are not the detector's


def test_bigquery_gives_the_same_state_as_duckdb_from_its_append_only_tables(
    warehouse, tmp_path, monkeypatch
):
    """The Dataflow path: the real client lists the rows the real Beam sink streamed into
    the loopback BigQuery (``tabledata.list``, no query job, so no ``jobs.create``). Its
    tables are append-only: an event written twice and every revision of an alert are
    there, and the state read back equals DuckDB's, which upserts."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from churnwatch.warehouse.bigquery import BigQueryWarehouse
    from tests.bigquery_loopback import LoopbackBigQuery
    from transforms.bigquery_io import STREAMING_INSERTS, BigQueryWriteConfig
    from transforms.warehouse_io import WriteToWarehouse

    project, dataset = "churnwatch-test", "churnwatch"
    written = {
        "feedback_events": [
            {**feedback("f1", occurred_at=T0, kind="COMPLAINT", topic="login"), **META},
            # the same event again: a redelivery BigQuery appended
            {**feedback("f1", occurred_at=T0, kind="COMPLAINT", topic="login"), **META},
            {**feedback("f2", customer_id="C2", occurred_at=T0 + DAY_MS), **META},
        ],
        "customer_events": [{**customer("c1", occurred_at=T0 + 2 * DAY_MS), **META}],
        "churn_alerts": [
            alert("a1", 0),
            alert("a1", 1),
            alert("a2", 0, "SILENT_CHURN"),
            {**alert("s1", 0, "ISSUE_SPIKE"), "customer_id": None, "topic": "login"},
        ],
    }
    url, duck = warehouse
    for table, rows in written.items():
        duck.upsert(table, rows)
    with LoopbackBigQuery(lambda table, row: None) as server:
        monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", server.url)
        key = server.service_account_file(tmp_path, project)
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
        BigQueryWarehouse(project, dataset).ensure_tables()
        with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
            for table, rows in written.items():
                _ = (
                    p
                    | f"Rows_{table}" >> beam.Create(rows)
                    | f"Write_{table}"
                    >> WriteToWarehouse(
                        f"bigquery://{project}/{dataset}",
                        table,
                        bigquery=BigQueryWriteConfig(method=STREAMING_INSERTS),
                    )
                )
        assert len(server.stored["feedback_events"]) == 3  # append-only: f1 twice
        bigquery = warm_start.open_store(f"bigquery://{project}/{dataset}")
        duckdb = warm_start.open_store(url)
        assert bigquery.newest_event_ms() == duckdb.newest_event_ms() == T0 + 2 * DAY_MS
        for source in ("feedback", "customer"):
            got = sorted(bigquery.events(source), key=lambda r: r["event_id"])
            assert got == sorted(duckdb.events(source), key=lambda r: r["event_id"])
        assert [r["event_id"] for r in bigquery.events("feedback", since_ms=T0 + 1)] == ["f2"]
        assert sorted(bigquery.alert_revisions()) == sorted(duckdb.alert_revisions())
        assert sorted(bigquery.alert_revisions()) == [("C1", "a1", 1), ("C1", "a2", 0)]
        assert bigquery.spike_alerts() == duckdb.spike_alerts() == [("login", T0)]
        assert bigquery.topics_reported_before(T0 + 1) == {"login"}
        assert duckdb.topics_reported_before(T0 + 1) == {"login"}
        data_calls = [path for method, path, _ in server.requests if path.endswith("/data")]
        jobs = [p for _m, p, _ in server.requests if "/jobs" in p or "/queries" in p]
        assert data_calls and not jobs  # tabledata.list only: no query job
