"""Beam's real BigQuery sink, end to end: every row lands once or becomes a dead letter.

The pipeline runs ``WriteToWarehouse("bigquery://…")`` with streaming inserts against the
loopback BigQuery endpoint (``tests/bigquery_loopback.py``), which refuses some rows the
way BigQuery does. Counts prove nothing is lost: rows sent = rows stored + SINK dead
letters, and each dead letter keeps the refused row and BigQuery's error.
"""

from __future__ import annotations

import json

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from churnwatch import schemas
from churnwatch.warehouse.bigquery import from_bigquery_value
from tests.bigquery_loopback import LoopbackBigQuery
from transforms.bigquery_io import STREAMING_INSERTS, BigQueryWriteConfig
from transforms.warehouse_io import WriteToWarehouse

PROJECT = "churnwatch-test"
DATASET = "churnwatch"


def feedback_row(i: int) -> dict:
    """A valid feedback row; the loopback refuses ids ending in 7 (as a schema clash)."""
    return {
        "event_id": f"e{i:03d}",
        "customer_id": f"C{i:06d}",
        "occurred_at": 1_764_000_000_000 + i,
        "channel": "EMAIL",
        "kind": "SURVEY_RESPONSE",
        "nps_score": i % 11,
        "message_id": f"m{i}",
        "publish_time": 1_764_000_000_500 + i,
    }


def refuse(table: str, row: dict) -> str | None:
    if table == "feedback_events" and row["event_id"].endswith("7"):
        return f"no such field: bogus (event {row['event_id']})"
    return None


@pytest.fixture
def loopback(tmp_path, monkeypatch):
    with LoopbackBigQuery(refuse) as server:
        monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", server.url)
        key = server.service_account_file(tmp_path, PROJECT)
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
        yield server


def test_refused_rows_become_dead_letters_and_the_rest_land_once(loopback):
    rows = [feedback_row(i) for i in range(40)]
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        _ = (
            p
            | beam.Create(rows)
            | WriteToWarehouse(
                f"bigquery://{PROJECT}/{DATASET}",
                "feedback_events",
                bigquery=BigQueryWriteConfig(method=STREAMING_INSERTS),
            )
        )

    refused = {r["event_id"] for r in rows if r["event_id"].endswith("7")}
    stored = loopback.stored["feedback_events"]
    letters = loopback.stored["dead_letters"]
    assert len(refused) == 4  # e007 e017 e027 e037
    # Nothing lost, nothing doubled: 40 sent = 36 stored + 4 dead letters.
    assert sorted(r["event_id"] for r in stored) == sorted(
        r["event_id"] for r in rows if r["event_id"] not in refused
    )
    assert len(letters) == len(refused)
    spec = schemas.table("dead_letters")
    for letter in letters:
        assert letter["stage"] == "SINK"
        assert letter["source"] == "feedback_events"
        payload = json.loads(from_bigquery_value(spec.record.field("payload"), letter["payload"]))
        assert payload["event_id"] in refused
        assert f"no such field: bogus (event {payload['event_id']})" in letter["error"]
        assert letter["message_id"] == payload["message_id"]
    # Stored rows are what BigQuery's JSON API takes: RFC 3339 timestamps.
    first = min(stored, key=lambda r: r["event_id"])
    assert first["occurred_at"] == "2025-11-24T16:00:00.000000Z"
