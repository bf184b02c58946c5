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

On a stream, rows wait for the watermark and are applied in event-time order, with a
customer's passed deadline fired before their next event: the alerts are the replay's
whatever the pace or the order in which the two subscriptions are read.

Drain guard: a local run drains by releasing the watermark to +inf, which fires every
pending timer at once. In live mode event time tracks the wall clock, so a timer whose
time is still ahead of the wall clock (+ ``drain_guard_ms``) is a drain, not the
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
from transforms.warm_start import StoredHistory

ALERTS = "alerts"
OUTCOMES = "outcomes"


class _DetectorFn(beam.DoFn):
    """What both bindings share: the detector, its counters and the step for one event."""

    def __init__(self, config: DetectorConfig, model: RiskModel, policy: RoutingPolicy):
        self.config, self.model, self.policy = config, model, policy

    def setup(self) -> None:
        self.detector = Detector(self.config, self.model, self.policy)
        self.known: dict[str, int] = {}  # alert id -> revision stored before this run
        self.alerts_raised = Metrics.counter("detect", "alerts")
        self.already_stored = Metrics.counter("detect", "alerts_already_stored")
        self.drain_skips = Metrics.counter("detect", "timers_skipped_on_drain")
        self.timer_firings = Metrics.counter("detect", "shard_timer_firings")
        self.restored = Metrics.counter("detect", "stored_events_replayed")

    def _emit(self, alert: dict[str, Any]):
        """An alert, unless a previous run already stored this revision (warm start)."""
        stored = self.known.get(alert["alert_id"])
        if stored is not None and alert["revision"] <= stored:
            self.already_stored.inc()
            return
        self.alerts_raised.inc()
        yield beam.pvalue.TaggedOutput(ALERTS, alert)

    def _fire(self, customer: Customer, cid: str, due: int, wall: int):
        alert = self.detector.fire(customer, cid, due, wall)
        if alert:
            yield from self._emit(alert)

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
            yield from self._emit(alert)
        if row.get("type") in CHURN_TYPES and customer.churned_ms == row["occurred_at"]:
            yield beam.pvalue.TaggedOutput(
                OUTCOMES, churn_outcome(customer, cid, row, self.detector)
            )


class _TrackShardFn(_DetectorFn):
    """Unbounded input: rows wait in the shard's state until the watermark passes them, then
    are applied in event-time order, interleaved with the deadlines they pass.

    Rows of one customer come from two subscriptions read at different speeds, so their
    arrival order depends on pace. Applying them in arrival order made the alerts depend
    on it (a deadline fired before an earlier-in-event-time row from the other source was
    read). Waiting for the watermark, which never passes data still in the subscription,
    gives exactly :func:`churnwatch.evaluate.replay`'s alerts whatever the pace::

        rows ──> pending (state) ── watermark passes T ──> sorted rows <= T and
                                     (the shard's timer)     deadlines <= T, in order

    A row older than what the shard already applied (late data) is applied at once.
    Churn outcomes are emitted when their row is applied; the aggregates re-stamp them to
    their own event time (a late pane if their window has closed).

    Warm start: a :class:`StoredHistory` element adds the warehouse's events of the shard
    to ``pending`` like any rows (the bounded read holds the watermark until it is in), so
    they are replayed in event order with the live ones; the alerts the previous run
    stored are remembered and not raised again.
    """

    # state: [ {customer_id: Customer}, timer ms or None, pending rows, applied up to ms,
    #          {alert_id: revision stored before this run} ]
    CUSTOMERS = ReadModifyWriteStateSpec("customers", SHARD_STATE_CODER)
    DEADLINE = TimerSpec("deadline", TimeDomain.WATERMARK)

    def process(
        self,
        element: tuple[int, list[tuple[int, dict[str, Any]]]],
        state=beam.DoFn.StateParam(CUSTOMERS),
        deadline_timer=beam.DoFn.TimerParam(DEADLINE),
    ):
        _, batch = element
        customers, timer_ms, pending, applied, self.known = read_shard_state(
            state, [{}, None, [], None, {}]
        )
        if isinstance(batch, StoredHistory):
            self.known.update(batch.alerts)
            self.restored.inc(len(batch.rows))
            batch = [(None, row) for row in batch.rows]
        wall = now_ms()
        wanted: list[int] = []  # times the timer must not pass without firing
        for _, row in batch:
            t = row["occurred_at"]
            if applied is not None and t <= applied:  # late: nothing left to order it by
                yield from self._step(customers, row, wall)
                due = customers[row["customer_id"]].deadline_ms
                if due is not None:
                    wanted.append(max(due, applied + 1))
            else:
                pending.append(row)
        if pending:
            wanted.append(max(r["occurred_at"] for r in pending))
        if wanted and (timer_ms is None or min(wanted) < timer_ms):
            # never later than a timer already set: steady arrivals must not starve it
            timer_ms = min(wanted)
            deadline_timer.set(Timestamp(micros=timer_ms * 1000))
        write_shard_state(state, [customers, timer_ms, pending, applied, self.known])

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
        customers, _, pending, applied, self.known = stored
        fire_ms = fire.micros // 1000
        wall = now_ms()
        ready = sorted((r for r in pending if r["occurred_at"] <= fire_ms), key=event_order)
        pending = [r for r in pending if r["occurred_at"] > fire_ms]
        for row in ready:
            yield from self._step(customers, row, wall)
        horizon = fire_ms
        guard = self.config.drain_guard_ms
        if guard is not None and fire_ms > wall + guard:
            # the watermark jumped (a drain): the rows were real, a future deadline is not
            self.drain_skips.inc()
            horizon = wall + guard
        following = max((r["occurred_at"] for r in pending), default=None)
        for cid, customer in customers.items():
            due = customer.deadline_ms
            # an episode's next step (escalation) may already be due as well
            while due is not None and due <= horizon:
                yield from self._fire(customer, cid, due, wall)
                due = customer.deadline_ms
            if due is not None and due > fire_ms and (following is None or due < following):
                following = due
        if following is not None:
            deadline_timer.set(Timestamp(micros=following * 1000))
        write_shard_state(
            state, [customers, following, pending, max(applied or 0, fire_ms), self.known]
        )


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
        guard = self.config.drain_guard_ms
        horizon = None if guard is None else wall + guard
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
    """``(feedback rows, customer rows)`` → ``{"alerts": ..., "outcomes": ...}``.

    ``stored`` (optional, streaming only): ``(shard, StoredHistory)`` for every shard, from
    the warm start (``transforms.warm_start.ReadStoredState``).
    """

    def __init__(self, setup: TrackingSetup, stored=None) -> None:
        super().__init__()
        self.setup = setup
        self.stored = stored

    def expand(self, rows: tuple):
        s = self.setup
        tracker = _ReplayShardFn if s.bounded else _TrackShardFn
        batches = (
            rows
            | "AllCustomerEvents" >> beam.Flatten()
            | "BatchByCustomerShard" >> BatchByShard(lambda r: r["customer_id"], s.num_shards)
        )
        if self.stored is not None:
            if s.bounded:
                raise ValueError("a warm start is for streams; a backfill replays everything")
            batches = (batches, self.stored) | "WithStoredHistory" >> beam.Flatten()
        results = batches | "CustomerState" >> beam.ParDo(
            tracker(s.config, s.model, s.policy)
        ).with_outputs(ALERTS, OUTCOMES)
        return {ALERTS: results[ALERTS], OUTCOMES: results[OUTCOMES]}
