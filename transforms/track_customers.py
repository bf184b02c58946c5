"""TrackCustomers: per-customer state with event-time timers, sharded; raises churn alerts.

State lives per shard of the customer id (``crc32(customer_id) % num_shards``), each shard
holding a dict ``customer_id -> Customer`` (compact record, ``churnwatch.detection``) and
ONE event-time timer at its earliest AT_RISK deadline. Per-key state costs ~1 ms a key and
bundle in the Python SDK, so this is what keeps detection at stream speed.

Timeline of one customer (θ = the risk threshold from the alert budget)::

    purchase ──── purchase ──────────── deadline: risk = θ ─> AT_RISK_SILENT (revision 0)
                      └── new activity moves the deadline;      └─ risk = θ_esc: revision 1
                          the shard timer follows                  (same alert id, updated)
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

import pickle
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (
    BagStateSpec,
    ReadModifyWriteStateSpec,
    TimerSpec,
    on_timer,
)
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import Timestamp

from churnwatch.clock import now_ms
from churnwatch.detection import (
    CHURN_TYPES,
    Customer,
    Detector,
    DetectorConfig,
    churn_outcome,
    event_order,
)
from churnwatch.model.risk import RiskModel
from churnwatch.routing import RoutingPolicy
from transforms.sharding import (
    SHARD_STATE_CODER,
    BatchByShard,
    read_shard_state,
    write_shard_state,
)

ALERTS = "alerts"
OUTCOMES = "outcomes"


class _DetectorFn(beam.DoFn):
    """What both bindings share: the detector, its counters and the step for one event."""

    def __init__(self, config: DetectorConfig, model: RiskModel, policy: RoutingPolicy):
        self.config, self.model, self.policy = config, model, policy

    def setup(self) -> None:
        self.detector = Detector(self.config, self.model, self.policy)
        self.alerts_raised = Metrics.counter("detect", "alerts")
        self.drain_skips = Metrics.counter("detect", "timers_skipped_on_drain")
        self.timer_firings = Metrics.counter("detect", "shard_timer_firings")

    def _fire(self, customer: Customer, cid: str, due: int, wall: int):
        alert = self.detector.fire(customer, cid, due, wall)
        if alert:
            self.alerts_raised.inc()
            yield beam.pvalue.TaggedOutput(ALERTS, alert)

    def _step(self, customers: dict[str, Customer], row: dict[str, Any], wall: int):
        """One event: its customer's passed deadline first, then the event itself."""
        cid = row["customer_id"]
        customer = customers.get(cid)
        if customer is None:
            customer = customers[cid] = Customer()
        due = customer.deadline_ms
        while due is not None and due <= row["occurred_at"]:
            # The event comes after the deadline in event time: the customer was quiet
            # past it, whether or not the watermark has caught up yet.
            yield from self._fire(customer, cid, due, wall)
            due = customer.deadline_ms
        for alert in self.detector.apply(customer, cid, row, wall):
            self.alerts_raised.inc()
            yield beam.pvalue.TaggedOutput(ALERTS, alert)
        if row.get("type") in CHURN_TYPES and customer.churned_ms == row["occurred_at"]:
            yield beam.pvalue.TaggedOutput(
                OUTCOMES, churn_outcome(customer, cid, row, self.detector)
            )


class _TrackShardFn(_DetectorFn):
    """Unbounded input: state per shard, one watermark timer at the shard's next deadline."""

    # state: [ {customer_id: Customer}, timer ms or None ]
    CUSTOMERS = ReadModifyWriteStateSpec("customers", SHARD_STATE_CODER)
    DEADLINE = TimerSpec("deadline", TimeDomain.WATERMARK)

    def process(
        self,
        element: tuple[int, list[tuple[int, dict[str, Any]]]],
        state=beam.DoFn.StateParam(CUSTOMERS),
        deadline_timer=beam.DoFn.TimerParam(DEADLINE),
    ):
        _, batch = element
        customers, timer_ms = read_shard_state(state, [{}, None])
        wall = now_ms()
        earliest = timer_ms
        for _, row in batch:
            yield from self._step(customers, row, wall)
            due = customers[row["customer_id"]].deadline_ms
            if due is not None and (earliest is None or due < earliest):
                earliest = due
        if earliest is not None and earliest != timer_ms:
            deadline_timer.set(Timestamp(micros=earliest * 1000))
        write_shard_state(state, [customers, earliest])

    @on_timer(DEADLINE)
    def deadline_passed(
        self,
        fire=beam.DoFn.TimestampParam,
        state=beam.DoFn.StateParam(CUSTOMERS),
        deadline_timer=beam.DoFn.TimerParam(DEADLINE),
    ):
        self.timer_firings.inc()
        stored = read_shard_state(state, None)
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
            # an episode's next step (escalation) may already be due as well
            while due is not None and due <= fire_ms:
                yield from self._fire(customer, cid, due, wall)
                due = customer.deadline_ms
            if due is not None and (following is None or due < following):
                following = due
        if following is not None:
            deadline_timer.set(Timestamp(micros=following * 1000))
        write_shard_state(state, [customers, following])


class _ReplayShardFn(_DetectorFn):
    """Bounded input (backfill): keep the shard's events, replay them in event-time order
    when the input ends.

    A batch runner feeds a stateful DoFn in any order (``Create`` and file reads reshuffle),
    and its watermark jumps from -inf to +inf once all input is in. So rows are appended per
    bundle (one bag add per shard and bundle) and one timer at the end of the global window
    replays them sorted, exactly as :func:`churnwatch.evaluate.replay` does, then fires every
    deadline still pending: one timer round in all, and the same alerts in every run.
    """

    ROWS = BagStateSpec("rows", SHARD_STATE_CODER)
    INPUT_END = TimerSpec("input_end", TimeDomain.WATERMARK)

    def process(
        self,
        element: tuple[int, list[tuple[int, dict[str, Any]]]],
        rows=beam.DoFn.StateParam(ROWS),
        input_end=beam.DoFn.TimerParam(INPUT_END),
    ):
        _, batch = element
        rows.add(pickle.dumps([row for _, row in batch], pickle.HIGHEST_PROTOCOL))
        input_end.set(GlobalWindow().max_timestamp())

    @on_timer(INPUT_END)
    def replay(self, rows=beam.DoFn.StateParam(ROWS)):
        self.timer_firings.inc()
        batches = (pickle.loads(blob) for blob in rows.read())
        ordered = sorted((row for batch in batches for row in batch), key=event_order)
        rows.clear()
        customers: dict[str, Customer] = {}
        wall = now_ms()
        for row in ordered:
            yield from self._step(customers, row, wall)
        guard = self.config.drain_guard_seconds
        horizon = None if guard is None else wall + guard * 1000
        for cid, customer in customers.items():
            # the input ended: every deadline up to now has passed (never the future's)
            while customer.deadline_ms is not None and (
                horizon is None or customer.deadline_ms <= horizon
            ):
                yield from self._fire(customer, cid, customer.deadline_ms, wall)


@dataclass(frozen=True)
class TrackingSetup:
    """What TrackCustomers needs, loaded and validated before the graph is built."""

    config: DetectorConfig
    model: RiskModel
    policy: RoutingPolicy
    num_shards: int = 64
    bounded: bool = False  # backfill: replay each shard's events in order when input ends

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
        tracker = _ReplayShardFn if s.bounded else _TrackShardFn
        results = (
            rows
            | "AllCustomerEvents" >> beam.Flatten()
            | "BatchByCustomerShard" >> BatchByShard(lambda r: r["customer_id"], s.num_shards)
            | "CustomerState"
            >> beam.ParDo(tracker(s.config, s.model, s.policy)).with_outputs(ALERTS, OUTCOMES)
        )
        return {ALERTS: results[ALERTS], OUTCOMES: results[OUTCOMES]}
