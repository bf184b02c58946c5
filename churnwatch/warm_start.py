"""Warm start: what a starting pipeline takes back from the warehouse it writes.

A stream's state (dedupe ids, every customer's detector record, open aggregate windows,
each spike topic's baseline) lives in the runner and dies with it: a restarted local run
or a new Dataflow job used to forget every customer, re-raise alerts, double-apply a
redelivered event, restart open windows from nothing and read a topic's usual reports
against an empty history as a spike. The warehouse already holds everything that state
was built from, so a starting pipeline rebuilds it from there rather than from a second
copy kept aside::

    warehouse ──(at launch)── newest stored event time T ──> the plan (cut-offs, below)
        │
        └─(in the job)─ every stored event ──────────> detector shards: replayed in event
                         stored (alert_id, revision) ──>  order, known alerts not re-raised
                         ids within the dedupe TTL ────> dedupe shards (before any live row)
                         events since the cut-off ─────> aggregates and spikes: windows
                         last revenue per customer ────>  starting at or after the cut-off
                         stored spike alerts, topics ──>  are rebuilt whole; spike episodes
                                                          already alerted stay alerted

Why "windows starting at or after the cut-off": a window is only correct when it sees
all of its rows. Every window still open at ``T`` (end + lateness > T) starts after
``T - lateness - longest window``; the extra window length rebuilds the ones a killed run
may have left without their final pane. A window starting earlier would see only part of
its rows, so this run emits nothing for it (``KeepWindowsFrom``). The spike baseline
looks further back (:func:`spike_cut_offs`); the cut-off is the earlier of the two.

This module plans and reads (both warehouses, no Beam); the DoFns that read and hand the
state to each shard live in ``transforms/warm_start.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from churnwatch import schemas
from churnwatch.aggregation import AggregateConfig
from churnwatch.spikes import SpikeConfig
from churnwatch.warehouse import WarehouseUrl

#: The event tables a warm start reads, by flow source.
EVENT_TABLES = {"feedback": "feedback_events", "customer": "customer_events"}
#: Alert types whose (alert_id, revision) the detector must not raise twice.
DETECTOR_ALERTS = ("AT_RISK_SILENT", "SILENT_CHURN")


@dataclass(frozen=True)
class SpikeWarmStart:
    """What issue-spike classification takes back (see :func:`spike_cut_offs`).

    ``first_end``: topics reported before ``windows_from + window``, with the window end
    from which their baseline counts empty windows as 0 (as the uninterrupted run did);
    ``episodes``: the windows of the stored ISSUE_SPIKE alerts per topic, so an episode
    the previous run alerted on is not alerted again; ``decide_from_ms``: windows starting
    earlier are classified (their counts are baseline) but raise nothing, their baseline
    reaching before the cut-off (the previous run decided them).
    """

    decide_from_ms: int
    first_end: dict[str, int] = field(default_factory=dict)
    episodes: dict[str, list[tuple[int, int]]] = field(default_factory=dict)


@dataclass(frozen=True)
class WarmStartPlan:
    """Cut-offs fixed at launch from the newest stored event time (None: empty warehouse)."""

    warehouse: str
    newest_ms: int | None
    windows_from_ms: int | None  # aggregate and spike windows starting here or later are rebuilt
    dedupe_from_ms: int | None  # ids of events this recent are still "seen"
    spikes: SpikeWarmStart | None = None

    @classmethod
    def for_newest(
        cls,
        warehouse: str,
        newest_ms: int | None,
        aggregates: AggregateConfig,
        ttl_ms: int,
        spikes: SpikeConfig | None = None,
    ) -> WarmStartPlan:
        if newest_ms is None:
            return cls(warehouse, None, None, None)
        a = aggregates
        longest = max(a.seconds(a.fixed_days), a.seconds(a.sliding_days))
        windows_from = newest_ms - int((a.lateness_seconds + 2 * longest) * 1000)
        decide_from = None
        if spikes is not None:
            spikes_from, decide_from = spike_cut_offs(newest_ms, spikes)
            windows_from = min(windows_from, spikes_from)
            decide_from = windows_from + (decide_from - spikes_from)
        spike_plan = None if decide_from is None else SpikeWarmStart(decide_from)
        return cls(warehouse, newest_ms, windows_from, newest_ms - ttl_ms, spike_plan)

    @property
    def empty(self) -> bool:
        return self.newest_ms is None


def spike_cut_offs(newest_ms: int, cfg: SpikeConfig) -> tuple[int, int]:
    """``(windows_from, decide_from)`` for spike windows of ``W`` every ``P``, ``B`` baseline
    windows, lateness ``L``.

    A window starting at ``S`` is judged against the windows ending at ``S - k P``, k < B;
    they start at or after the cut-off when ``S >= windows_from + W + (B - 1) P``: from
    there on (``decide_from``) a verdict equals the uninterrupted run's. Every window still
    open at ``T`` starts after ``T - L - W``; one window more of margin gives
    ``decide_from = T - L - 2 W`` and ``windows_from = decide_from - W - (B - 1) P``.
    """
    window, period = cfg.ms(cfg.window_days), cfg.ms(cfg.period_days)
    decide_from = newest_ms - int(cfg.lateness_seconds * 1000) - 2 * window
    return decide_from - window - (cfg.baseline_windows - 1) * period, decide_from


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

    def topics_reported_before(self, before_ms: int) -> set[str]:
        """Topics of problem reports (complaints with a topic) stored before ``before_ms``."""

    def spike_alerts(self) -> list[tuple[str, int]]:
        """``(topic, window end ms)`` of the stored ISSUE_SPIKE alerts."""


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

    def topics_reported_before(self, before_ms: int) -> set[str]:
        sql = (
            "SELECT DISTINCT topic FROM feedback_events WHERE kind = 'COMPLAINT' "
            "AND topic IS NOT NULL AND topic <> '' AND epoch_ms(occurred_at) < ?"
        )
        return {t for (t,) in self.warehouse.query(sql, [before_ms])}

    def spike_alerts(self) -> list[tuple[str, int]]:
        sql = (
            "SELECT DISTINCT topic, epoch_ms(detected_at) FROM churn_alerts "
            "WHERE alert_type = 'ISSUE_SPIKE' AND topic IS NOT NULL"
        )
        return [(t, int(end)) for t, end in self.warehouse.query(sql)]


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

    def topics_reported_before(self, before_ms: int) -> set[str]:
        return {
            r["topic"]
            for r in self._scan("feedback_events", only=("kind", "topic", "occurred_at"))
            if r["kind"] == "COMPLAINT" and r["topic"] and r["occurred_at"] < before_ms
        }

    def spike_alerts(self) -> list[tuple[str, int]]:
        only = ("alert_type", "topic", "detected_at")
        return sorted(
            {
                (r["topic"], r["detected_at"])
                for r in self._scan("churn_alerts", only=only)
                if r["alert_type"] == "ISSUE_SPIKE" and r["topic"]
            }
        )


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


def plan(
    warehouse: str,
    aggregates: AggregateConfig,
    dedupe_ttl_seconds: float,
    spikes: SpikeConfig | None = None,
) -> WarmStartPlan:
    """Read the newest stored event time and fix the cut-offs (at launch, before the graph);
    with ``spikes``, also the topics and stored spike episodes the classifier starts from."""
    store = open_store(warehouse)
    found = WarmStartPlan.for_newest(
        warehouse, store.newest_event_ms(), aggregates, int(dedupe_ttl_seconds * 1000), spikes
    )
    if found.spikes is None or spikes is None:
        return found
    window = spikes.ms(spikes.window_days)
    known_from = found.windows_from_ms + window
    episodes: dict[str, list[tuple[int, int]]] = {}
    for topic, end in store.spike_alerts():
        if end > found.windows_from_ms:  # older episodes cannot touch a rebuilt window
            episodes.setdefault(topic, []).append((end - window, end))
    first_end = {topic: known_from for topic in store.topics_reported_before(known_from)}
    return replace(found, spikes=replace(found.spikes, first_end=first_end, episodes=episodes))
