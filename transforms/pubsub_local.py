"""The local binding of ``ReadMessages``: a pull-based Pub/Sub read for the streaming DirectRunner.

Why not the stock read: the DirectRunner's evaluator pulls 10 messages per request with a
30 s timeout, and the emulator holds a pull on an empty subscription for ~29 s, so one
quiet subscription stalls the whole pipeline (measured: 50 messages in 146 s). This read
pulls up to ``max_messages`` per bundle with a short timeout, pulling again while pulls come
back full (:data:`FULL_PAGE`).

Watermark (results must not depend on how fast the machine is)::

    pull returned messages -> maybe a backlog (Pub/Sub returns partial batches too): hold
                              at the oldest event time of that pull; what still waits in
                              the subscription is newer
    pull came back empty   -> drained: follow this subscription's event clock, i.e. the
                              newest event time it read, advanced with the wall clock
                              since, never beyond the wall clock
    never read anything    -> follow the run's event clock (the other reads'), so a quiet
                              subscription does not hold the run; before any read of the
                              run saw a message: the beginning of time
    first LEASE_S of a     -> at most the oldest event time read so far: messages a killed
    restart                   predecessor had leased come back only when their lease runs
                              out, and they are older than what this run reads first
                              (:func:`hold_after_restart`; a first start has no predecessor)
    (all minus ``watermark_lag``, and never backwards)

A replayed past world published at least as fast as its own event time (paced, or
faster) is therefore read exactly as a live one; only data published slower than its
event time can pass the watermark by more than the lag.

Acks (nothing lost to a crash): a pulled message is *not* acked on receipt. Its ack id is
kept, its lease extended while it is in flight, and it is acked once its row or dead
letter is committed (the warehouse sink calls :class:`AckOnCommit` after each batch) or
its duplicate was dropped. What was never committed is redelivered to the next run.

Local runs stop themselves: every read of one run shares a :class:`LocalRun`; when no read
has seen a message for ``idle_stop_seconds`` (or :func:`request_stop` is called, e.g. on
Ctrl-C) all reads finish once drained and release their watermark hold, so windows close,
final panes are written and ``wait_until_finish()`` returns; :func:`finish_run` then acks
what the last bundles committed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.runners.direct import transform_evaluator as _te
from apache_beam.runners.direct.util import TransformResult
from apache_beam.transforms.trigger import MergeableStateAdapter
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.timestamp import MAX_TIMESTAMP, MIN_TIMESTAMP, Timestamp

from churnwatch.wire import EVENT_TIME_ATTRIBUTE
from transforms.direct_runner_costs import prepare_keyed_state

#: Lease of a pulled, uncommitted message; renewed every LEASE_RENEW_S while in flight.
#: Short, so a killed run's messages come back to the next run within seconds.
LEASE_S = 15
LEASE_RENEW_S = 5.0
#: Pub/Sub accepts at most this many ack ids per request.
ACK_CHUNK = 1000
#: A pull that returns this many messages (the emulator's most per pull) suggests more are
#: waiting: the read pulls again, up to ``max_messages`` per bundle. Each bundle pays the
#: runner's per-bundle and per-watermark-step costs (timers of every window and shard it
#: passes), so a backlog is read in bundles of ``max_messages``, not of 100.
FULL_PAGE = 100

#: Plausible ``occurred_at`` attribute values (epoch millis, years 2000..2200); anything
#: else (seconds, nanoseconds, text) is ignored here and the record's own time used.
_ATTRIBUTE_MILLIS = (946_684_800_000, 7_258_118_400_000)

log = logging.getLogger(__name__)


def event_timestamp(message) -> Timestamp:
    """The ``occurred_at`` attribute as a timestamp; publish time when it is not usable.

    Never raises: a nanosecond or garbage attribute must not fail the read. The decoder
    re-stamps every valid row from the record itself, so this only orders the read.
    """
    millis = (message.attributes or {}).get(EVENT_TIME_ATTRIBUTE)
    try:
        value = int(millis)
    except (TypeError, ValueError):
        value = None
    if value is not None and _ATTRIBUTE_MILLIS[0] <= value <= _ATTRIBUTE_MILLIS[1]:
        return Timestamp(micros=value * 1000)
    return Timestamp.from_utc_datetime(message.publish_time)


@dataclass
class _InFlight:
    ack_id: str
    renewed: float
    published: float  # epoch s, Pub/Sub's publish time: commit latency is measured from it


@dataclass
class LocalRun:
    """What the reads of one local run share: stop decision, event clock, ack ids."""

    idle_stop_seconds: float | None
    started: float = field(default_factory=time.monotonic)
    start_hold_s: float = 0.0  # LEASE_S after a restart (hold_after_restart)
    last_activity: float = field(default_factory=time.monotonic)
    stopping: bool = False
    messages: int = 0
    # subscription -> (newest event time read, in micros; wall time it was read, epoch s)
    newest: dict[str, tuple[int, float]] = field(default_factory=dict)
    holds: dict[str, Timestamp] = field(default_factory=dict)  # per subscription
    oldest: dict[str, Timestamp] = field(default_factory=dict)  # oldest event time read
    finished_reads: int = 0
    in_flight: dict[str, dict[str, _InFlight]] = field(default_factory=dict)  # sub -> id -> ack
    committed: dict[str, list[str]] = field(default_factory=dict)  # sub -> ack ids to ack
    owner: dict[str, str] = field(default_factory=dict)  # message id -> subscription
    # publish -> commit seconds of every committed message (benchmarks read them)
    commit_latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, subscription: str, count: int, newest_us: int | None) -> None:
        with self.lock:
            self.messages += count
            if count:
                self.last_activity = time.monotonic()
            known = self.newest.get(subscription)
            if newest_us is not None and (known is None or newest_us >= known[0]):
                self.newest[subscription] = (newest_us, time.time())

    def read_oldest(self, subscription: str, stamp: Timestamp) -> None:
        with self.lock:
            if subscription not in self.oldest or stamp < self.oldest[subscription]:
                self.oldest[subscription] = stamp

    def should_stop(self) -> bool:
        with self.lock:
            if not self.stopping and self.idle_stop_seconds is not None:
                self.stopping = time.monotonic() - self.last_activity >= self.idle_stop_seconds
            return self.stopping

    def event_clock(self, subscription: str) -> Timestamp | None:
        """Newest event time read, advanced by the wall time since, capped at the wall clock.

        The subscription's own once it read something, else the latest of the run's.
        """
        with self.lock:
            own = self.newest.get(subscription)
            if own is None and not self.newest:
                return None
            if own is None:
                own = max(self.newest.values())
            now = time.time()
            advanced = own[0] + int((now - own[1]) * 1e6)
            return Timestamp(micros=min(advanced, int(now * 1e6)))

    def advance_hold(self, subscription: str, candidate: Timestamp) -> Timestamp:
        with self.lock:
            if time.monotonic() - self.started < self.start_hold_s:
                # a predecessor's leased messages may still come back (module doc)
                candidate = min(candidate, self.oldest.get(subscription, MIN_TIMESTAMP))
            hold = max(self.holds.get(subscription, MIN_TIMESTAMP), candidate)
            self.holds[subscription] = hold
            return hold

    # -- acks ---------------------------------------------------------------------------
    def track(self, subscription: str, received: Iterable) -> None:
        now = time.monotonic()
        with self.lock:
            flight = self.in_flight.setdefault(subscription, {})
            for r in received:
                published = _epoch_seconds(getattr(r.message, "publish_time", None))
                flight[r.message.message_id] = _InFlight(r.ack_id, now, published)
                self.owner[r.message.message_id] = subscription

    def commit(self, message_ids: Iterable[str | None]) -> None:
        committed_at = time.time()
        with self.lock:
            for message_id in message_ids:
                subscription = self.owner.pop(message_id, None) if message_id else None
                if subscription is None:
                    continue
                entry = self.in_flight.get(subscription, {}).pop(message_id, None)
                if entry is not None:
                    self.committed.setdefault(subscription, []).append(entry.ack_id)
                    if entry.published:
                        self.commit_latencies.append(committed_at - entry.published)

    def take_committed(self, subscription: str) -> list[str]:
        with self.lock:
            return self.committed.pop(subscription, [])

    def due_for_renewal(self, subscription: str) -> list[str]:
        now = time.monotonic()
        with self.lock:
            due = []
            for entry in self.in_flight.get(subscription, {}).values():
                if now - entry.renewed >= LEASE_RENEW_S:
                    entry.renewed = now
                    due.append(entry.ack_id)
            return due

    def uncommitted(self) -> int:
        with self.lock:
            return sum(len(f) for f in self.in_flight.values())


def _epoch_seconds(publish_time) -> float:
    """Pub/Sub's publish time (a datetime or protobuf timestamp) in epoch seconds; 0 if none."""
    if publish_time is None:
        return 0.0
    if hasattr(publish_time, "timestamp"):
        return publish_time.timestamp()
    return getattr(publish_time, "seconds", 0) + getattr(publish_time, "nanos", 0) / 1e9


_RUNS: dict[str, LocalRun] = {}
_RUNS_LOCK = threading.Lock()


def local_run(run_id: str, idle_stop_seconds: float | None = None) -> LocalRun:
    """The run's shared bookkeeping, created on first use (by a read, a sink or the launcher)."""
    with _RUNS_LOCK:
        if run_id not in _RUNS:
            _RUNS[run_id] = LocalRun(idle_stop_seconds)
        elif idle_stop_seconds is not None:  # the reads know it; the launcher may come first
            _RUNS[run_id].idle_stop_seconds = idle_stop_seconds
        return _RUNS[run_id]


def messages_read(run_id: str) -> int:
    """Messages the local reads of ``run_id`` received."""
    return local_run(run_id).messages


def hold_after_restart(run_id: str) -> None:
    """The reads of ``run_id`` hold the watermark at the oldest event read for LEASE_S.

    Called when the pipeline starts on a warehouse that already holds rows: a predecessor
    may have been killed with messages leased, which come back only when the lease runs out.
    """
    run = local_run(run_id)
    with run.lock:
        run.started = time.monotonic()
        run.start_hold_s = LEASE_S


def request_stop(run_id: str) -> None:
    """Ask every local read of ``run_id`` to finish once its subscription is drained."""
    run = local_run(run_id)
    with run.lock:
        run.stopping = True


class AckOnCommit:
    """Called by a sink with the message ids it committed; picklable (holds only the run id)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def __call__(self, message_ids: Iterable[str | None]) -> None:
        local_run(self.run_id).commit(message_ids)


_CLIENTS: dict[str, object] = {}
_CLIENTS_LOCK = threading.Lock()


def _client(subscription: str):
    from google.cloud import pubsub_v1

    with _CLIENTS_LOCK:
        if subscription not in _CLIENTS:
            _CLIENTS[subscription] = pubsub_v1.SubscriberClient()
        return _CLIENTS[subscription]


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(ids), ACK_CHUNK):
        yield ids[start : start + ACK_CHUNK]


def _send_acks(subscription: str, ack_ids: list[str]) -> None:
    from google.api_core import exceptions

    client = _client(subscription)
    for chunk in _chunks(ack_ids):
        try:
            client.acknowledge(subscription=subscription, ack_ids=chunk)
        except exceptions.GoogleAPICallError as exc:  # expired ids: redelivered, deduped
            log.warning("ack of %d messages failed (%s); they will be redelivered", len(chunk), exc)


def _renew(subscription: str, ack_ids: list[str]) -> None:
    from google.api_core import exceptions

    client = _client(subscription)
    for chunk in _chunks(ack_ids):
        try:
            client.modify_ack_deadline(
                subscription=subscription, ack_ids=chunk, ack_deadline_seconds=LEASE_S
            )
        except exceptions.GoogleAPICallError as exc:
            log.warning("lease renewal of %d messages failed: %s", len(chunk), exc)


def reads_finished(run_id: str) -> bool:
    """Whether every local read of ``run_id`` has finished (stop requested and drained)."""
    run = local_run(run_id)
    with run.lock:
        return run.stopping and run.finished_reads >= len(run.holds)


def wait_until_drained(result, run_id: str) -> None:
    """``result.wait_until_finish()``, with Beam's end-of-run stall report turned into an end.

    When nothing is left to execute but some watermark never completes, Beam 2.77's
    DirectRunner reports a "pipeline stall" by raising a tuple, i.e. ``TypeError:
    exceptions must derive from BaseException``. After every read has finished, such a
    stall only means a watermark hold nobody will release (see
    :class:`_ReleasingGroupAlsoByWindowEvaluator`): every bundle has run, so the run is
    over. Anything else is re-raised.
    """
    try:
        result.wait_until_finish()
    except TypeError as exc:
        if "must derive from BaseException" not in str(exc) or not reads_finished(run_id):
            raise
        log.warning("runner reported a stall after the reads finished; the run is complete")


def finish_run(run_id: str) -> int:
    """After the pipeline finished: ack what the last bundles committed. Returns the count."""
    run = local_run(run_id)
    with run.lock:
        subscriptions = list(run.committed)
    total = 0
    for subscription in subscriptions:
        ack_ids = run.take_committed(subscription)
        _send_acks(subscription, ack_ids)
        total += len(ack_ids)
    if run.uncommitted():
        log.warning(
            "%d messages were read but not committed; Pub/Sub redelivers them", run.uncommitted()
        )
    return total


class LocalPull(beam.PTransform):
    """Root transform evaluated natively by :class:`_LocalPullEvaluator`."""

    def __init__(
        self,
        subscription: str,
        run_id: str,
        idle_stop_seconds: float | None,
        max_messages: int,
        pull_timeout_s: float,
        watermark_lag_s: float,
    ) -> None:
        super().__init__()
        self.subscription = subscription
        self.run_id = run_id
        self.idle_stop_seconds = idle_stop_seconds
        self.max_messages = max_messages
        self.pull_timeout_s = pull_timeout_s
        self.watermark_lag_s = watermark_lag_s

    def get_windowing(self, unused_inputs):
        return beam.Windowing(GlobalWindows())

    def expand(self, pbegin):
        return pvalue.PCollection(pbegin.pipeline, is_bounded=False)


class _LocalPullEvaluator(_te._TransformEvaluator):
    """Ack what was committed, renew leases, pull a batch, emit it, reschedule itself."""

    def __init__(self, evaluation_context, applied_ptransform, input_committed_bundle, side_inputs):
        super().__init__(
            evaluation_context, applied_ptransform, input_committed_bundle, side_inputs
        )
        self.read: LocalPull = applied_ptransform.transform
        self.run = local_run(self.read.run_id, self.read.idle_stop_seconds)

    def start_bundle(self):
        pass

    def process_element(self, element):
        pass

    def _pull(self) -> list:
        from google.api_core import exceptions

        subscription = self.read.subscription
        committed = self.run.take_committed(subscription)
        if committed:
            _send_acks(subscription, committed)
        due = self.run.due_for_renewal(subscription)
        if due:
            _renew(subscription, due)
        received: list = []
        while len(received) < self.read.max_messages:
            try:
                response = _client(subscription).pull(
                    subscription=subscription,
                    max_messages=self.read.max_messages - len(received),
                    timeout=self.read.pull_timeout_s,
                    retry=None,
                )
            except (exceptions.DeadlineExceeded, exceptions.ServiceUnavailable):
                break
            page = list(response.received_messages)
            if page:
                self.run.track(subscription, page)
                _renew(subscription, [r.ack_id for r in page])  # the short lease starts now
                received.extend(page)
            if len(page) < FULL_PAGE:  # drained for now: no pull that would wait
                break
        return received

    def finish_bundle(self) -> TransformResult:
        # Stopping drains: keep pulling until a pull comes back empty, so a stop requested
        # while messages still wait in the subscription does not leave them behind.
        received = self._pull()
        bundles, stamps = [], []
        if received:
            output = self._evaluation_context.create_bundle(next(iter(self._outputs)))
            for r in received:
                m = r.message
                message = PubsubMessage(
                    m.data, dict(m.attributes), message_id=m.message_id, publish_time=m.publish_time
                )
                stamp = event_timestamp(message)
                stamps.append(stamp)
                output.output(GlobalWindows.windowed_value(message, timestamp=stamp))
            bundles.append(output)
        self.run.saw(self.read.subscription, len(received), max(stamps).micros if stamps else None)
        if stamps:
            self.run.read_oldest(self.read.subscription, min(stamps))
        if self.run.should_stop() and not received:
            # Final: no reschedule, hold released, watermark goes to +inf and drains.
            with self.run.lock:
                self.run.finished_reads += 1
            return TransformResult(self, bundles, [], None, {None: None})
        again = self._evaluation_context.create_bundle(
            pvalue.PBegin(self._applied_ptransform.transform.pipeline)
        )
        return TransformResult(self, bundles, [again], None, {None: self._hold(stamps)})

    def _hold(self, stamps: list[Timestamp]) -> Timestamp:
        lag_us = int(self.read.watermark_lag_s * 1e6)
        if stamps:
            # maybe a backlog: the rest waits in the subscription and is newer than this pull
            candidate = Timestamp(micros=min(stamps).micros - lag_us)
        else:
            clock = self.run.event_clock(self.read.subscription)
            candidate = MIN_TIMESTAMP if clock is None else Timestamp(micros=clock.micros - lag_us)
        return self.run.advance_hold(self.read.subscription, candidate)


class _ReleasingGroupAlsoByWindowEvaluator(_te._StreamingGroupAlsoByWindowEvaluator):
    """Beam's streaming GroupAlsoByWindow evaluator, minus a watermark hold never released.

    Found behind the end-of-run ``TypeError: exceptions must derive from BaseException``:
    a late element makes Beam's trigger driver (``GeneralTriggerDriver``, whose own comment
    says late-data and garbage-collection holds are not supported yet) add a hold at its
    window's end, fire the
    late pane, and keep the hold whenever the step's output watermark is still behind that
    end. No timer of that window is left to clear it, so after the last read finishes the
    executor sees watermarks that never complete and reports a stall, which Beam 2.77
    raises as a tuple (hence the TypeError). Here a window whose end the input watermark
    has passed and which has already fired a pane keeps no hold (its panes are out), and
    once the input watermark is final no window keeps one (seen: sliding windows holding
    at +inf input with no pane and no timer left). It also copies each key's state for
    the bundle without Beam's deep copy (:mod:`transforms.direct_runner_costs`).
    """

    def process_timer_wrapper(self, timer_firing):
        prepare_keyed_state(self._step_context, timer_firing.encoded_key)  # cheap copy
        super().process_timer_wrapper(timer_firing)

    def process_element(self, element):
        encoded_key = element.value.encoded_key
        prepare_keyed_state(self._step_context, encoded_key)  # cheap copy, same state
        super().process_element(element)
        state = self._step_context.get_keyed_state(encoded_key)
        input_watermark = self._evaluation_context._watermark_manager.get_watermarks(
            self._applied_ptransform
        ).input_watermark
        windows = MergeableStateAdapter(state)  # the driver keys state by window id
        release = [
            window_id
            for window_id, tagged in state.state.items()
            if tagged.get("watermark")
            and (
                input_watermark >= MAX_TIMESTAMP  # the run has ended: nothing to hold for
                or (
                    tagged.get("index")
                    and windows.get_window(window_id).max_timestamp() < input_watermark
                )
            )
        ]
        for window_id in release:  # looked up by key: the bundle's own copy is written
            state.state[window_id]["watermark"] = []
        if release:
            self.keyed_holds[encoded_key] = state.get_earliest_hold()


_te.TransformEvaluatorRegistry._test_evaluators_overrides[LocalPull] = _LocalPullEvaluator
_te.TransformEvaluatorRegistry._test_evaluators_overrides[_te._StreamingGroupAlsoByWindow] = (
    _ReleasingGroupAlsoByWindowEvaluator
)
