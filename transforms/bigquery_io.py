"""WriteToBigQueryTable: rows to one BigQuery table, refused rows to ``dead_letters``.

    rows ──ToBigQueryRows──▶ WriteToBigQuery ──failed rows + error──▶ SINK dead letters
                                                                      └─▶ dead_letters table

* ``STORAGE_WRITE_API`` (the default): exactly-once appends on Dataflow. In Beam's Python
  SDK it is a cross-language transform whose Java expansion service is downloaded from
  Maven Central when the graph is built, so it needs the network a Dataflow launcher has.
* ``STREAMING_INSERTS``: pure Python, best-effort dedupe by insert id; the fallback where
  the expansion service cannot be fetched.

Either way the ``current_<table>`` views (``churnwatch.warehouse.bigquery``) give BI one
row per primary key, so a redelivery that outlives the dedupe TTL cannot double a row.
Tables are created up front (``churnwatch bootstrap`` or Terraform), so writes use
``CREATE_NEVER`` and a missing table is an error, not a table without partitioning.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.gcp.bigquery import BigQueryDisposition, WriteToBigQuery
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import StandardOptions

from churnwatch.dead_letters import dead_letter
from churnwatch.schemas import table
from churnwatch.warehouse.bigquery import (
    BEAM_ROWS,
    JSON_ROWS,
    table_options,
    table_schema,
    to_bigquery_row,
)

STORAGE_WRITE_API = WriteToBigQuery.Method.STORAGE_WRITE_API
STREAMING_INSERTS = WriteToBigQuery.Method.STREAMING_INSERTS
WRITE_METHODS = (STORAGE_WRITE_API, STREAMING_INSERTS)
DEAD_LETTER_TABLE = "dead_letters"


@dataclass(frozen=True)
class BigQueryWriteConfig:
    method: str = STORAGE_WRITE_API
    triggering_frequency_s: int = 5  # Storage Write API commit interval (exactly-once mode)

    def __post_init__(self) -> None:
        if self.method not in WRITE_METHODS:
            raise ValueError(f"BigQuery write method {self.method!r}: use one of {WRITE_METHODS}")
        if self.triggering_frequency_s <= 0:
            raise ValueError("BigQuery triggering frequency must be positive")

    @property
    def row_format(self) -> str:
        return BEAM_ROWS if self.method == STORAGE_WRITE_API else JSON_ROWS


def bigquery_write(
    project: str,
    dataset: str,
    table_name: str,
    config: BigQueryWriteConfig,
    streaming: bool = True,
) -> WriteToBigQuery:
    """The configured ``WriteToBigQuery`` for one table (a function so tests can inspect it).

    Auto-sharding and the commit interval only exist for streaming; a backfill (batch)
    appends once at the end of each bundle.
    """
    spec = table(table_name)
    storage = config.method == STORAGE_WRITE_API
    return WriteToBigQuery(
        table=table_name,
        dataset=dataset,
        project=project,
        schema=table_schema(spec),
        method=config.method,
        create_disposition=BigQueryDisposition.CREATE_NEVER,
        write_disposition=BigQueryDisposition.WRITE_APPEND,
        additional_bq_parameters=table_options(spec),
        triggering_frequency=config.triggering_frequency_s if storage and streaming else None,
        use_at_least_once=False,  # exactly-once streams on the Storage Write API
        with_auto_sharding=streaming,
        # Retry transient errors, never bad rows: those become dead letters below.
        insert_retry_strategy=None if storage else "RETRY_ON_TRANSIENT_ERROR",
    )


def failed_row_to_dead_letter(failure: Any, table_name: str) -> dict[str, Any]:
    """A row BigQuery refused, as a ``SINK`` dead letter that keeps the row and the error.

    Streaming inserts report ``(destination, row, errors)``; the Storage Write API reports
    ``{"failed_row": row, "error_message": text}``.
    """
    if isinstance(failure, dict):
        row, error = failure.get("failed_row"), failure.get("error_message")
    else:
        _destination, row, error = failure
    return dead_letter(
        source=table_name,
        payload=json.dumps(row, default=str, sort_keys=True).encode(),
        stage="SINK",
        error=f"BigQuery refused the row: {json.dumps(error, default=str)}",
        message_id=(row or {}).get("message_id"),
    )


def refusal_log_fields(failure: Any, table_name: str) -> dict[str, Any]:
    """What may be logged about a refused row: table, message id and BigQuery's error
    reasons and locations (field names). Never the row or the error text, which quotes
    row values."""
    if isinstance(failure, dict):
        row, errors = failure.get("failed_row"), []
    else:
        _destination, row, errors = failure
    reasons = sorted(
        {str(e.get("reason")) for e in errors or [] if isinstance(e, dict) and e.get("reason")}
    )
    locations = sorted(
        {str(e.get("location")) for e in errors or [] if isinstance(e, dict) and e.get("location")}
    )
    message_id = row.get("message_id") if isinstance(row, dict) else None
    return {
        "table": table_name,
        "message_id": message_id,
        "reasons": reasons or ["unknown"],
        "locations": locations,
    }


class _CountFailures(beam.DoFn):
    """Failed dead-letter rows have nowhere further to go: count them and log loudly, with
    identifiers only (the raw row is a payload and stays out of logs)."""

    def setup(self) -> None:
        self.counter = Metrics.counter("sink", "dead_letters_refused_by_bigquery")

    def process(self, failure):
        self.counter.inc()
        logging.getLogger(__name__).error(
            "BigQuery refused a dead letter row",
            extra={"json_fields": refusal_log_fields(failure, DEAD_LETTER_TABLE)},
        )


class WriteToBigQueryTable(beam.PTransform):
    """Pipeline rows (timestamps as epoch millis) → ``project.dataset.table``."""

    def __init__(
        self, project: str, dataset: str, table_name: str, config: BigQueryWriteConfig
    ) -> None:
        super().__init__()
        self.project = project
        self.dataset = dataset
        self.table_name = table_name
        self.config = config

    def expand(self, rows):
        spec = table(self.table_name)
        row_format = self.config.row_format
        streaming = rows.pipeline.options.view_as(StandardOptions).streaming
        result = (
            rows
            | "ToBigQueryRows" >> beam.Map(lambda row: to_bigquery_row(spec, row, row_format))
            | "WriteToBigQuery"
            >> bigquery_write(self.project, self.dataset, self.table_name, self.config, streaming)
        )
        failed = result.failed_rows_with_errors
        if self.table_name == DEAD_LETTER_TABLE:
            failed | "CountRefusedDeadLetters" >> beam.ParDo(_CountFailures())
            return result
        (
            failed
            | "RefusedRowsToDeadLetters"
            >> beam.Map(failed_row_to_dead_letter, table_name=self.table_name)
            | "WriteSinkDeadLetters"
            >> WriteToBigQueryTable(self.project, self.dataset, DEAD_LETTER_TABLE, self.config)
        )
        return result
