"""WriteToWarehouse: batched, idempotent writes of row dicts to one warehouse table.

``duckdb:///file`` is written here; ``bigquery://project/dataset`` goes through
``transforms.bigquery_io`` (WriteToBigQuery, refused rows to ``dead_letters``).

Side effects live here and only here. A batch that the warehouse refuses is retried row
by row; rows that still fail become ``SINK`` dead letters (the row as JSON), so nothing
is dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from churnwatch.dead_letters import dead_letter
from churnwatch.warehouse import WarehouseUrl
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from transforms.bigquery_io import BigQueryWriteConfig, WriteToBigQueryTable


class _DuckDBWriteFn(beam.DoFn):
    def __init__(
        self, path: str, table: str, batch_size: int, on_commit: Callable | None = None
    ) -> None:
        self.path = path
        self.table = table
        self.batch_size = batch_size
        self.on_commit = on_commit

    def setup(self) -> None:
        self.warehouse = DuckDBWarehouse.shared(self.path)
        self.warehouse.ensure_tables([self.table, "dead_letters"])
        self.written = Metrics.counter("sink", f"{self.table}_rows")
        self.failed = Metrics.counter("sink", f"{self.table}_dead_sink")

    def start_bundle(self) -> None:
        self.buffer: list[dict[str, Any]] = []

    def process(self, row: dict[str, Any]):
        self.buffer.append(row)
        if len(self.buffer) >= self.batch_size:
            self._flush()

    def finish_bundle(self) -> None:
        self._flush()

    def _flush(self) -> None:
        rows, self.buffer = self.buffer, []
        if not rows:
            return
        try:
            self.warehouse.upsert(self.table, rows)
            self.written.inc(len(rows))
        except Exception:  # one bad row must not sink the batch: retry row by row
            self._row_by_row(rows)
        if self.on_commit is not None:  # every row is now a row or a SINK dead letter
            self.on_commit([row.get("message_id") for row in rows])

    def _row_by_row(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            try:
                self.warehouse.upsert(self.table, [row])
                self.written.inc()
            except Exception as exc:
                self.failed.inc()
                self.warehouse.upsert(
                    "dead_letters",
                    [
                        dead_letter(
                            source=self.table,
                            payload=json.dumps(row, default=str, sort_keys=True).encode(),
                            stage="SINK",
                            error=f"{type(exc).__name__}: {exc}",
                            message_id=row.get("message_id"),
                        )
                    ],
                )


class WriteToWarehouse(beam.PTransform):
    """Write row dicts (timestamps as epoch millis) to ``table`` of ``warehouse_url``.

    ``on_commit`` (optional, picklable) is called with the ``message_id``s of each batch
    once it is committed; a local run acks the Pub/Sub messages then (DuckDB only:
    BigQuery runs read through Dataflow, which acks after its own checkpoint).
    """

    def __init__(
        self,
        warehouse_url: str,
        table: str,
        batch_size: int = 2000,
        bigquery: BigQueryWriteConfig | None = None,
        on_commit: Callable | None = None,
    ) -> None:
        super().__init__()
        self.url = WarehouseUrl.parse(warehouse_url)
        self.table = table
        self.batch_size = batch_size
        self.bigquery = bigquery or BigQueryWriteConfig()
        self.on_commit = on_commit

    def expand(self, rows):
        if self.url.scheme == "duckdb":
            return rows | "UpsertDuckDB" >> beam.ParDo(
                _DuckDBWriteFn(self.url.location, self.table, self.batch_size, self.on_commit)
            )
        project, dataset = self.url.location.split("/")
        return rows | "WriteBigQuery" >> WriteToBigQueryTable(
            project, dataset, self.table, self.bigquery
        )
