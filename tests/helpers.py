"""Small builders shared by tests (records that satisfy the schemas, streaming options)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from churnwatch import schemas
from churnwatch.clock import now_ms
from churnwatch.wire import attributes_for, encode_binary, encode_json

FIXTURES = Path(__file__).parent / "fixtures"
WRITER_SCHEMAS = FIXTURES / "writer_schemas"


def feedback(event_id: str = "fe-1", customer_id: str = "C000001", **overrides: Any) -> dict:
    record = {
        "event_id": event_id,
        "customer_id": customer_id,
        "occurred_at": now_ms() - 60_000,
        "channel": "SURVEY",
        "kind": "SURVEY_RESPONSE",
        "nps_score": 9,
        "csat_score": 5,
        "topic": None,
        "cause": None,
        "text": None,
        "segment": "smb",
        "team": "support_emea",
    }
    record.update(overrides)
    return record


def customer(event_id: str = "ce-1", customer_id: str = "C000001", **overrides: Any) -> dict:
    record = {
        "event_id": event_id,
        "customer_id": customer_id,
        "occurred_at": now_ms() - 60_000,
        "type": "PURCHASE",
        "amount": 42.0,
        "currency": "EUR",
        "monthly_revenue": None,
        "reason": None,
        "segment": "smb",
    }
    record.update(overrides)
    return record


def message(
    record: dict,
    schema_name: str = schemas.FEEDBACK_EVENT,
    encoding: str = "BINARY",
    message_id: str = "m-1",
) -> PubsubMessage:
    schema = schemas.load(schema_name)
    data = encode_json(schema, record) if encoding == "JSON" else encode_binary(schema, record)
    return PubsubMessage(data, attributes_for(schema, record, encoding), message_id=message_id)


def v2_feedback_schema() -> dict:
    return json.loads((WRITER_SCHEMAS / "feedback_event_v2.avsc").read_text())


def streaming_options() -> PipelineOptions:
    options = PipelineOptions(["--runner=BundleBasedDirectRunner"])
    options.view_as(StandardOptions).streaming = True
    return options


def filler_row(table_name: str, **values: Any) -> dict:
    """A row of ``table_name`` with any valid value in each required column, then ``values``."""
    from churnwatch import schemas

    def filler(column) -> Any:
        if column.nullable:
            return None
        if column.symbols:
            return column.symbols[0]
        return {"string": "x", "array": [], "map": {}, "bytes": b"", "boolean": False}.get(
            column.avro_type, 0
        )

    return {c.name: filler(c) for c in schemas.table(table_name).columns} | values


@contextlib.contextmanager
def duckdb_locked_by_another_process(path: str | Path) -> Iterator[None]:
    """A real second process holds DuckDB's write lock on ``path`` (as a running pipeline
    does) for the duration of the block."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, sys; c = duckdb.connect({str(path)!r}); print('ok', flush=True);"
         " sys.stdin.readline()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ok"
        yield
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=30)


def streaming_argv(topics: dict, db: Path, idle_stop_s: float, *extra: str) -> list[str]:
    """The streaming pipeline as a subprocess command line, on ``topics`` and a DuckDB file."""
    return [
        sys.executable,
        "-m",
        "pipelines.streaming",
        f"--feedback_subscription={topics['feedback']['subscription']}",
        f"--customer_subscription={topics['customer']['subscription']}",
        f"--warehouse=duckdb://{db}",
        f"--idle_stop_seconds={idle_stop_s}",
        "--pull_max_messages=50",
        "--stream_quality=off",
        *extra,
    ]


def at_risk_alert(
    alert_id: str, customer_id: str, revision: int, at_ms: int, alert_type: str = "AT_RISK_SILENT"
) -> dict:
    """A stored detector alert (the fields a warehouse row needs)."""
    from churnwatch.alerts import alert_row

    return alert_row(
        alert_id=alert_id,
        alert_type=alert_type,
        severity="LOW",
        customer_id=customer_id,
        detected_at=at_ms,
        processed_at=at_ms,
        revision=revision,
        owner="frontline_agent",
        model_version="test",
    )
