"""ReadStoredState: the warehouse's events and alerts, handed to the shards that need them.

One read when the job starts (``Impulse``, so on Dataflow it runs on a worker, against
BigQuery's tables), cut as :mod:`churnwatch.warm_start` plans::

    Impulse ─ read ──> dedupe_feedback / dedupe_customer: (shard, SeenIds) for EVERY shard
                  ├──> tracking: (shard, StoredHistory) for EVERY shard
                  ├──> recent_feedback / recent_customer: rows since the windows' cut-off
                  └──> revenue_seed: each customer's last revenue change before it

Every shard gets one element, even an empty one: a dedupe shard holds live rows until its
element has arrived, so a redelivered message cannot slip past ids it has not seen yet.
Shard elements are stamped at the beginning of time (they are state, not events); rows
keep their event time. The read is bounded, so until it is done its output watermark, and
with it every timer downstream, stays at the beginning of time: the detector applies the
stored history before any live row the watermark has passed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from churnwatch.aggregation import CHURN_TYPES
from churnwatch.warm_start import EVENT_TABLES, WarmStartPlan, open_store
from transforms.sharding import shard_of

DEDUPE = {source: f"dedupe_{source}" for source in EVENT_TABLES}
RECENT = {source: f"recent_{source}" for source in EVENT_TABLES}
TRACKING, REVENUE_SEED = "tracking", "revenue_seed"


@dataclass(frozen=True)
class SeenIds:
    """A dedupe shard's stored ids within the TTL: ``[(occurred_at ms, event_id), ...]``."""

    ids: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class StoredHistory:
    """A detector shard's stored events and the alerts it already raised.

    ``alerts``: ``alert_id -> highest stored revision``; the replay of ``rows`` raises
    those revisions again, and they are not emitted twice.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    alerts: dict[str, int] = field(default_factory=dict)


def _stamped(row: dict[str, Any]) -> TimestampedValue:
    return TimestampedValue(row, Timestamp(micros=row["occurred_at"] * 1000))


class _ReadStoredStateFn(beam.DoFn):
    """One pass over the stored events, cut per consumer; an element for every shard."""

    def __init__(self, plan: WarmStartPlan, dedupe_shards: int, tracking_shards: int) -> None:
        self.plan = plan
        self.dedupe_shards = dedupe_shards
        self.tracking_shards = tracking_shards

    def process(self, _impulse):
        plan = self.plan
        histories: dict[int, StoredHistory] = defaultdict(StoredHistory)
        seeds: dict[str, dict[str, Any]] = {}
        rows_read = Metrics.counter("warm_start", "stored_events")
        store = None if plan.empty else open_store(plan.warehouse)
        for customer_id, alert_id, revision in store.alert_revisions() if store else ():
            shard = shard_of(customer_id or "", self.tracking_shards)
            histories[shard].alerts[alert_id] = revision
        for source in EVENT_TABLES:
            seen: dict[int, list[tuple[int, str]]] = defaultdict(list)
            rows = store.events(source) if store else ()
            for row in rows:
                rows_read.inc()
                t = row["occurred_at"]
                histories[shard_of(row["customer_id"], self.tracking_shards)].rows.append(row)
                if t >= plan.dedupe_from_ms:
                    seen[shard_of(row["event_id"], self.dedupe_shards)].append((t, row["event_id"]))
                if t >= plan.windows_from_ms:
                    yield beam.pvalue.TaggedOutput(RECENT[source], _stamped(row))
                elif source == "customer" and _revenue_change(row):
                    last = seeds.get(row["customer_id"])
                    if last is None or t >= last["occurred_at"]:
                        seeds[row["customer_id"]] = row
            for shard in range(self.dedupe_shards):
                yield beam.pvalue.TaggedOutput(DEDUPE[source], (shard, SeenIds(seen[shard])))
        for row in seeds.values():
            yield beam.pvalue.TaggedOutput(REVENUE_SEED, _stamped(row))
        for shard in range(self.tracking_shards):
            yield beam.pvalue.TaggedOutput(TRACKING, (shard, histories[shard]))


class KeepWindowsFrom(beam.DoFn):
    """Drops elements in windows that start before ``windows_from_ms`` (after a warm start).

    The run holds the stored rows since a cut-off only: a window starting earlier would
    be emitted from part of its rows and overwrite its stored, complete value (aggregates)
    or count too few reporters (spikes). Such windows closed before the cut-off was taken.
    """

    def __init__(self, windows_from_ms: int) -> None:
        self.windows_from_us = windows_from_ms * 1000

    def process(self, item, win=beam.DoFn.WindowParam):
        if win.start.micros >= self.windows_from_us:
            yield item


def _revenue_change(row: dict[str, Any]) -> bool:
    return row.get("monthly_revenue") is not None and row.get("type") not in CHURN_TYPES


class ReadStoredState(beam.PTransform):
    """``pipeline`` → dict of PCollections (keys: :data:`DEDUPE`, :data:`RECENT` values,
    :data:`TRACKING`, :data:`REVENUE_SEED`)."""

    def __init__(self, plan: WarmStartPlan, dedupe_shards: int, tracking_shards: int) -> None:
        super().__init__()
        self.plan = plan
        self.dedupe_shards = dedupe_shards
        self.tracking_shards = tracking_shards

    def expand(self, pbegin):
        tags = [*DEDUPE.values(), *RECENT.values(), TRACKING, REVENUE_SEED]
        out = (
            pbegin
            | "Start" >> beam.Impulse()
            | "ReadWarehouse"
            >> beam.ParDo(
                _ReadStoredStateFn(self.plan, self.dedupe_shards, self.tracking_shards)
            ).with_outputs(*tags)
        )
        return {tag: out[tag] for tag in tags}
