"""TrackCustomers: per-customer state with event-time timers, sharded; raises churn alerts.

State lives per shard of the customer id (``crc32(customer_id) % num_shards``), each shard
holding a dict ``customer_id -> Customer`` (compact record, ``churnwatch.detection``) and
ONE event-time timer at its earliest AT_RISK deadline. Per-key state costs ~1 ms a key and
bundle in the Python SDK, so this is what keeps detection at stream speed.

Timeline of one customer (θ = P(alive) threshold)::

    purchase ──── purchase ──────────── deadline: P(alive) = θ ─> AT_RISK_SILENT
                      └── new activity moves the deadline; the shard timer follows
    cancellation, no complaint in lookback ──> SILENT_CHURN at once

A deadline is checked before each of the customer's events as well as by the timer, so
the alerts do not depend on how far the watermark lags: an event at t after a deadline D
fires D first, exactly as if the timer had fired in time.

Drain guard: a local run drains by releasing the watermark to +inf, which fires every
pending timer at once. In live mode event time tracks the wall clock, so a timer whose
time is still ahead of the wall clock (+ ``drain_guard_seconds``) is a drain, not the
customer going quiet: it raises nothing. TestStream and backfill time lies in the past and
is unaffected.

Outputs: ``alerts`` (ChurnAlert rows, deterministic ids: a timer that fires twice or a
replayed event raises the same id) and ``outcomes`` (every churn, silent or vocal, for
aggregates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Timestamp

from churnwatch.clock import now_ms
from churnwatch.detection import CHURN_TYPES, Customer, Detector, DetectorConfig, churn_outcome
from churnwatch.model.bgnbd import BGNBDParams
from churnwatch.routing import RoutingPolicy
from transforms.sharding import BatchByShard

ALERTS = "alerts"
OUTCOMES = "outcomes"


class _TrackShardFn(beam.DoFn):
    # state: [ {customer_id: Customer}, timer ms or None ]
    CUSTOMERS = ReadModifyWriteStateSpec("customers", PickleCoder())
    DEADLINE = TimerSpec("deadline", TimeDomain.WATERMARK)

    def __init__(self, config: DetectorConfig, params: BGNBDParams, policy: RoutingPolicy):
        self.config, self.params, self.policy = config, params, policy

    def setup(self) -> None:
        self.detector = Detector(self.config, self.params, self.policy)
        self.alerts_raised = Metrics.counter("detect", "alerts")
        self.drain_skips = Metrics.counter("detect", "timers_skipped_on_drain")

    def process(
        self,
        element: tuple[int, list[tuple[int, dict[str, Any]]]],
        state=beam.DoFn.StateParam(CUSTOMERS),
        deadline_timer=beam.DoFn.TimerParam(DEADLINE),
    ):
        _, batch = element
        customers, timer_ms = state.read() or [{}, None]
        wall = now_ms()
        earliest = timer_ms
        for _, row in batch:
            cid = row["customer_id"]
            customer = customers.get(cid)
            if customer is None:
                customer = customers[cid] = Customer()
            due = customer.deadline_ms
            if due is not None and due <= row["occurred_at"]:
                # The event comes after the deadline in event time: the customer was quiet
                # past it, whether or not the watermark has caught up yet.
                alert = self.detector.fire(customer, cid, due, wall)
                if alert:
                    self.alerts_raised.inc()
                    yield beam.pvalue.TaggedOutput(ALERTS, alert)
            for alert in self.detector.apply(customer, cid, row, wall):
                self.alerts_raised.inc()
                yield beam.pvalue.TaggedOutput(ALERTS, alert)
            if row.get("type") in CHURN_TYPES and customer.churned_ms == row["occurred_at"]:
                outcome = churn_outcome(customer, cid, row, self.detector)
                yield beam.pvalue.TaggedOutput(OUTCOMES, outcome)
            due = customer.deadline_ms
            if due is not None and (earliest is None or due < earliest):
                earliest = due
        if earliest is not None and earliest != timer_ms:
            deadline_timer.set(Timestamp(micros=earliest * 1000))
        state.write([customers, earliest])

    @on_timer(DEADLINE)
    def deadline_passed(
        self,
        fire=beam.DoFn.TimestampParam,
        state=beam.DoFn.StateParam(CUSTOMERS),
        deadline_timer=beam.DoFn.TimerParam(DEADLINE),
    ):
        stored = state.read()
        if not stored:
            return
        customers, _ = stored
        fire_ms = fire.micros // 1000
        wall = now_ms()
        guard = self.config.drain_guard_seconds
        if guard is not None and fire_ms > wall + guard * 1000:
            self.drain_skips.inc()
            return  # the watermark jumped (drain), the customer did not go quiet
        following = None
        for cid, customer in customers.items():
            due = customer.deadline_ms
            if due is None:
                continue
            if due <= fire_ms:
                alert = self.detector.fire(customer, cid, due, wall)
                if alert:
                    self.alerts_raised.inc()
                    yield beam.pvalue.TaggedOutput(ALERTS, alert)
            elif following is None or due < following:
                following = due
        if following is not None:
            deadline_timer.set(Timestamp(micros=following * 1000))
        state.write([customers, following])


@dataclass(frozen=True)
class TrackingSetup:
    """What TrackCustomers needs, loaded and validated before the graph is built."""

    config: DetectorConfig
    params: BGNBDParams
    policy: RoutingPolicy
    num_shards: int = 64

    def __post_init__(self) -> None:
        if self.num_shards <= 0:
            raise ValueError("num_shards must be positive")


class TrackCustomers(beam.PTransform):
    """``(feedback rows, customer rows)`` → ``{"alerts": ..., "outcomes": ...}``."""

    def __init__(self, setup: TrackingSetup) -> None:
        super().__init__()
        self.setup = setup

    def expand(self, rows: tuple):
        s = self.setup
        results = (
            rows
            | "AllCustomerEvents" >> beam.Flatten()
            | "BatchByCustomerShard" >> BatchByShard(lambda r: r["customer_id"], s.num_shards)
            | "CustomerState"
            >> beam.ParDo(_TrackShardFn(s.config, s.params, s.policy)).with_outputs(
                ALERTS, OUTCOMES
            )
        )
        return {ALERTS: results[ALERTS], OUTCOMES: results[OUTCOMES]}
