"""DuckDB warehouse: tables from the schemas, idempotent upserts, sink failures dead-lettered."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from churnwatch import schemas
from churnwatch.warehouse import WarehouseUrl
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from tests.helpers import feedback
from transforms.warehouse_io import WriteToWarehouse


def event_row(event_id: str, **overrides) -> dict:
    return {
        **feedback(event_id),
        "message_id": f"m-{event_id}",
        "publish_time": None,
        "schema_revision": "r1",
        **overrides,
    }


def aggregate_row(pane_index: int, events: int) -> dict:
    return {
        "window_kind": "FIXED",
        "window_start": 0,
        "window_end": 86_400_000,
        "dimension": "channel",
        "dimension_value": "SURVEY",
        "events": events,
        "complaints": 0,
        "survey_responses": 0,
        "promoters": 0,
        "passives": 0,
        "detractors": 0,
        "nps": None,
        "csat_mean": None,
        "churned_customers": 0,
        "silent_churned": 0,
        "vocal_churned": 0,
        "revenue_lost": 0.0,
        "pane_index": pane_index,
        "pane_timing": "LATE",
        "updated_at": 1_700_000_000_000 + pane_index,  # a later pane is written later
    }


@pytest.fixture
def warehouse(tmp_path):
    wh = DuckDBWarehouse(tmp_path / "wh.duckdb")
    wh.ensure_tables()
    yield wh
    wh.close()


def test_all_schema_tables_exist_with_schema_columns(warehouse):
    for name, spec in schemas.tables().items():
        columns = [
            r[0]
            for r in warehouse.query(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                "ORDER BY ordinal_position",
                [name],
            )
        ]
        assert tuple(columns) == spec.column_names


def test_replayed_rows_never_double(warehouse):
    rows = [event_row(f"fe-{i}") for i in range(5)]
    warehouse.upsert("feedback_events", rows)
    warehouse.upsert("feedback_events", [*rows[2:], event_row("fe-5")])
    assert warehouse.count("feedback_events") == 6


def test_first_write_wins_for_event_rows(warehouse):
    warehouse.upsert("feedback_events", [event_row("fe-1", nps_score=9)])
    warehouse.upsert("feedback_events", [event_row("fe-1", nps_score=2)])
    assert warehouse.query("SELECT nps_score FROM feedback_events") == [(9,)]


def test_later_pane_replaces_and_older_pane_never_overwrites(warehouse):
    warehouse.upsert("feedback_aggregates", [aggregate_row(0, 10)])
    warehouse.upsert("feedback_aggregates", [aggregate_row(2, 12)])
    warehouse.upsert("feedback_aggregates", [aggregate_row(1, 11)])  # arrives out of order
    assert warehouse.query("SELECT pane_index, events FROM feedback_aggregates") == [(2, 12)]


def test_a_batch_with_the_same_key_twice_keeps_the_highest_pane(warehouse):
    warehouse.upsert("feedback_aggregates", [aggregate_row(3, 13), aggregate_row(1, 11)])
    assert warehouse.query("SELECT pane_index, events FROM feedback_aggregates") == [(3, 13)]


def test_maps_arrays_and_bytes_round_trip(warehouse):
    warehouse.upsert(
        "dead_letters",
        [
            {
                "dead_letter_id": "feedback:DECODE:m1",
                "source": "feedback",
                "message_id": "m1",
                "publish_time": 1_700_000_000_000,
                "attributes": {"a": "1", "b": "2"},
                "payload": b"\x00\xffraw",
                "stage": "DECODE",
                "error": "truncated",
                "pipeline_version": "0.1.0",
                "failed_at": 1_700_000_000_000,
            }
        ],
    )
    ((attributes, payload),) = warehouse.query("SELECT attributes, payload FROM dead_letters")
    assert dict(attributes) == {"a": "1", "b": "2"}
    assert bytes(payload) == b"\x00\xffraw"


def test_sink_turns_a_refused_row_into_a_sink_dead_letter(tmp_path):
    db = tmp_path / "sink.duckdb"
    good = [event_row(f"fe-{i}") for i in range(3)]
    refused = event_row("fe-bad", customer_id=None)  # NOT NULL column
    with TestPipeline(runner="FnApiRunner") as p:
        _ = (
            p
            | beam.Create([*good, refused])
            | WriteToWarehouse(f"duckdb://{db}", "feedback_events")
        )
    DuckDBWarehouse.close_all()
    wh = DuckDBWarehouse(db)
    try:
        assert wh.count("feedback_events") == 3
        assert wh.query("SELECT source, stage, message_id FROM dead_letters") == [
            ("feedback_events", "SINK", "m-fe-bad")
        ]
        ((error,),) = wh.query("SELECT error FROM dead_letters")
        assert "customer_id" in error or "NOT NULL" in error
    finally:
        wh.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("duckdb:///tmp/x.duckdb", ("duckdb", "/tmp/x.duckdb")),
        ("duckdb://relative.duckdb", ("duckdb", "relative.duckdb")),
        ("bigquery://proj-1/churn", ("bigquery", "proj-1/churn")),
    ],
)
def test_warehouse_urls(url, expected):
    parsed = WarehouseUrl.parse(url)
    assert (parsed.scheme, parsed.location) == expected


@pytest.mark.parametrize("url", ["postgres://x", "duckdb://", "bigquery://onlyproject"])
def test_bad_warehouse_urls_say_what_to_write(url):
    with pytest.raises(ValueError, match="--warehouse"):
        WarehouseUrl.parse(url)
