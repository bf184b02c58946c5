"""Warm start: what a starting pipeline takes back from the warehouse it writes.

A stream's state (dedupe ids, every customer's detector record, open aggregate windows)
lives in the runner and dies with it: a restarted local run or a new Dataflow job used to
forget every customer, re-raise alerts, double-apply a redelivered event and restart open
windows from nothing. The warehouse already holds everything that state was built from,
so a starting pipeline rebuilds it from there rather than from a second copy kept aside::

    warehouse ──(at launch)── newest stored event time T ──> the plan (cut-offs, below)
        │
        └─(in the job)─ every stored event ──────────> detector shards: replayed in event
                         stored (alert_id, revision) ──>  order, known alerts not re-raised
                         ids within the dedupe TTL ────> dedupe shards (before any live row)
                         events since the cut-off ─────> aggregates: windows starting at or
                         last revenue per customer ────>  after T - lateness - 2 x longest
                                                          window are rebuilt whole

Why "windows starting at or after the cut-off": a window is only correct when it sees
all of its rows. Every window still open at ``T`` (end + lateness > T) starts after
``T - lateness - longest window``; the extra window length rebuilds the ones a killed run
may have left without their final pane. A window starting earlier would see only part of
its rows, so this run emits nothing for it (``ComputeAggregates(windows_from_ms=...)``).

This module plans and reads (both warehouses, no Beam); the DoFns that
read and hand the state to each shard live in ``transforms/warm_start.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from churnwatch import schemas
from churnwatch.aggregation import AggregateConfig
from churnwatch.warehouse import WarehouseUrl

#: The event tables a warm start reads, by flow source.
EVENT_TABLES = {"feedback": "feedback_events", "customer": "customer_events"}
#: Alert types whose (alert_id, revision) the detector must not raise twice.
DETECTOR_ALERTS = ("AT_RISK_SILENT", "SILENT_CHURN")


@dataclass(frozen=True)
class WarmStartPlan:
    """Cut-offs fixed at launch from the newest stored event time (None: empty warehouse)."""

    warehouse: str
    newest_ms: int | None
    windows_from_ms: int | None  # aggregate windows starting here or later are rebuilt
    dedupe_from_ms: int | None  # ids of events this recent are still "seen"

    @classmethod
    def for_newest(
        cls, warehouse: str, newest_ms: int | None, aggregates: AggregateConfig, ttl_ms: int
    ) -> WarmStartPlan:
        if newest_ms is None:
            return cls(warehouse, None, None, None)
        longest = max(
            aggregates.seconds(aggregates.fixed_days), aggregates.seconds(aggregates.sliding_days)
        )
        back_ms = int((aggregates.lateness_seconds + 2 * longest) * 1000)
        return cls(warehouse, newest_ms, newest_ms - back_ms, newest_ms - ttl_ms)

    @property
    def empty(self) -> bool:
        return self.newest_ms is None


class StoredState(Protocol):
    """What a warm start reads from a warehouse."""

    def newest_event_ms(self) -> int | None: ...

    def events(self, source: str, since_ms: int | None = None) -> Iterator[dict[str, Any]]:
        """Stored rows of one event table as the flow carries them (timestamps in millis)."""

    def alert_revisions(self) -> list[tuple[str, str, int]]:
        """``(customer_id, alert_id, highest revision)`` of the detector's stored alerts.

        A replay raises an alert's revisions in order (0, 1, ...); every one up to the
        stored highest was already written and published, so none is raised again.
        """


class DuckDBState:
    """The warm start's reads as SQL on the DuckDB file (the pipeline's own connection)."""

    def __init__(self, path: str) -> None:
        from churnwatch.warehouse.duckdb_store import DuckDBWarehouse

        self.warehouse = DuckDBWarehouse.shared(path)

    def newest_event_ms(self) -> int | None:
        parts = [f'SELECT max(epoch_ms(occurred_at)) FROM "{t}"' for t in EVENT_TABLES.values()]
        found = [r[0] for r in self.warehouse.query(" UNION ALL ".join(parts)) if r[0] is not None]
        return max(found) if found else None

    def events(self, source: str, since_ms: int | None = None) -> Iterator[dict[str, Any]]:
        spec = schemas.table(EVENT_TABLES[source])
        select = ", ".join(
            f'epoch_ms("{c.name}")' if c.is_timestamp else f'"{c.name}"' for c in spec.columns
        )
        where, params = "", []
        if since_ms is not None:
            where, params = " WHERE epoch_ms(occurred_at) >= ?", [since_ms]
        for values in self.warehouse.query(f'SELECT {select} FROM "{spec.name}"{where}', params):
            yield dict(zip(spec.column_names, values, strict=True))

    def alert_revisions(self) -> list[tuple[str, str, int]]:
        types = ", ".join(f"'{t}'" for t in DETECTOR_ALERTS)
        sql = (
            "SELECT customer_id, alert_id, max(revision) FROM churn_alerts "
            f"WHERE alert_type IN ({types}) GROUP BY customer_id, alert_id"
        )
        return [(c, a, int(r)) for c, a, r in self.warehouse.query(sql)]


class BigQueryState:
    """The warm start's reads as ``tabledata.list`` on the BigQuery tables.

    No query jobs: reading rows needs only ``bigquery.tables.getData`` on the dataset (the
    worker's custom role), where a query would need ``jobs.create`` on the project. Tables
    are append-only, so rows are made unique here as the ``current_*`` views do: an
    event's first row, an alert's highest revision.
    """

    def __init__(self, project: str, dataset: str, client=None) -> None:
        if client is None:
            from google.cloud import bigquery

            client = bigquery.Client(project=project)
        self.client = client
        self.project, self.dataset = project, dataset

    def _scan(self, table: str, only: tuple[str, ...] = ()) -> Iterator[dict[str, Any]]:
        """Every row of ``table`` (or its ``only`` columns), values as the flow carries them."""
        from google.cloud.bigquery import SchemaField

        from churnwatch.warehouse.bigquery import table_schema

        spec = schemas.table(table)
        columns = [c for c in spec.columns if not only or c.name in only]
        fields = [
            SchemaField.from_api_repr(f)
            for f in table_schema(spec)["fields"]
            if not only or f["name"] in only
        ]
        table_id = f"{self.project}.{self.dataset}.{table}"
        for row in self.client.list_rows(table_id, selected_fields=fields):
            yield {c.name: _from_client(c, row.get(c.name)) for c in columns}

    def newest_event_ms(self) -> int | None:
        times = [
            r["occurred_at"]
            for t in EVENT_TABLES.values()
            for r in self._scan(t, only=("occurred_at",))
        ]
        return max(times, default=None)

    def events(self, source: str, since_ms: int | None = None) -> Iterator[dict[str, Any]]:
        seen: set[str] = set()
        for row in self._scan(EVENT_TABLES[source]):
            if row["event_id"] in seen or (since_ms is not None and row["occurred_at"] < since_ms):
                continue
            seen.add(row["event_id"])
            yield row

    def alert_revisions(self) -> list[tuple[str, str, int]]:
        highest: dict[tuple[str, str], int] = {}
        for row in self._scan(
            "churn_alerts", only=("alert_id", "alert_type", "customer_id", "revision")
        ):
            if row["alert_type"] in DETECTOR_ALERTS:
                key = (row["customer_id"], row["alert_id"])
                highest[key] = max(highest.get(key, -1), int(row["revision"]))
        return [(c, a, r) for (c, a), r in highest.items()]


def _from_client(spec, value: Any) -> Any:
    """A value as the BigQuery client returns it → as the flow carries it."""
    if value is None:
        return None
    if spec.is_timestamp:
        return round(value.timestamp() * 1000)
    if spec.avro_type == "map":
        return {kv["key"]: kv["value"] for kv in value}
    return value


def open_store(warehouse: str) -> StoredState:
    url = WarehouseUrl.parse(warehouse)
    if url.scheme == "duckdb":
        return DuckDBState(url.location)
    return BigQueryState(*url.location.split("/"))


def plan(warehouse: str, aggregates: AggregateConfig, dedupe_ttl_seconds: float) -> WarmStartPlan:
    """Read the newest stored event time and fix the cut-offs (at launch, before the graph)."""
    newest = open_store(warehouse).newest_event_ms()
    return WarmStartPlan.for_newest(warehouse, newest, aggregates, int(dedupe_ttl_seconds * 1000))
