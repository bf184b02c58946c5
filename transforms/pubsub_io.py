"""ReadMessages: one read interface, two bindings.

* ``native`` — ``beam.io.ReadFromPubSub`` (what Dataflow runs; event time from the
  ``occurred_at`` attribute that producers set).
* ``local`` — for the streaming DirectRunner. The stock DirectRunner evaluator pulls 10
  messages per request with a 30 s timeout, and the emulator holds a pull on an empty
  subscription for ~29 s, so one quiet subscription stalls the whole pipeline (measured:
  50 messages in 146 s). The local binding pulls up to ``max_messages`` with a short
  timeout, stamps event time from the ``occurred_at`` attribute (publish time otherwise),
  and holds the watermark at ``wall clock - watermark_lag``.

Local runs stop themselves: every read of one run shares an :class:`IdleStop`; when no
read has seen a message for ``idle_stop_seconds`` (or :func:`request_stop` is called, e.g.
on Ctrl-C) all reads finish and release their watermark hold, so windows close, final
panes are written and ``wait_until_finish()`` returns. Like the stock evaluator, the local
read acks on receipt (the DirectRunner never retries a bundle) and has no ``id_label``:
``DropDuplicates`` downstream is what makes delivery effectively-once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.runners.direct import transform_evaluator as _te
from apache_beam.runners.direct.util import TransformResult
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.timestamp import Timestamp

from churnwatch.wire import EVENT_TIME_ATTRIBUTE

LOCAL = "local"
NATIVE = "native"


@dataclass
class IdleStop:
    """Shared stop decision for the reads of one local run."""

    idle_stop_seconds: float | None
    last_activity: float = field(default_factory=time.monotonic)
    stopping: bool = False
    messages: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, count: int) -> None:
        with self.lock:
            self.messages += count
            if count:
                self.last_activity = time.monotonic()

    def should_stop(self) -> bool:
        with self.lock:
            if not self.stopping and self.idle_stop_seconds is not None:
                self.stopping = time.monotonic() - self.last_activity >= self.idle_stop_seconds
            return self.stopping


_RUNS: dict[str, IdleStop] = {}
_RUNS_LOCK = threading.Lock()


def idle_stop_for(run_id: str, idle_stop_seconds: float | None = None) -> IdleStop:
    with _RUNS_LOCK:
        if run_id not in _RUNS:
            _RUNS[run_id] = IdleStop(idle_stop_seconds)
        return _RUNS[run_id]


def messages_read(run_id: str) -> int:
    """Messages the local reads of ``run_id`` received (and acked)."""
    return idle_stop_for(run_id).messages


def request_stop(run_id: str) -> None:
    """Ask every local read of ``run_id`` to finish once its subscription is drained."""
    idle = idle_stop_for(run_id)
    with idle.lock:
        idle.stopping = True


class _LocalPull(beam.PTransform):
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


#: Plausible ``occurred_at`` attribute values (epoch millis, years 2000..2200); anything
#: else (seconds, nanoseconds, text) is ignored here and the record's own time used.
_ATTRIBUTE_MILLIS = (946_684_800_000, 7_258_118_400_000)


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


class _LocalPullEvaluator(_te._TransformEvaluator):
    """Pull a batch, ack it, emit it, reschedule itself until the run stops."""

    _clients: dict[str, object] = {}
    _clients_lock = threading.Lock()

    def __init__(self, evaluation_context, applied_ptransform, input_committed_bundle, side_inputs):
        super().__init__(
            evaluation_context, applied_ptransform, input_committed_bundle, side_inputs
        )
        self.read: _LocalPull = applied_ptransform.transform
        self.idle = idle_stop_for(self.read.run_id, self.read.idle_stop_seconds)

    @classmethod
    def _client(cls, subscription: str):
        from google.cloud import pubsub_v1

        with cls._clients_lock:
            if subscription not in cls._clients:
                cls._clients[subscription] = pubsub_v1.SubscriberClient()
            return cls._clients[subscription]

    def start_bundle(self):
        pass

    def process_element(self, element):
        pass

    def _pull(self) -> list:
        from google.api_core import exceptions

        client = self._client(self.read.subscription)
        try:
            response = client.pull(
                subscription=self.read.subscription,
                max_messages=self.read.max_messages,
                timeout=self.read.pull_timeout_s,
                retry=None,
            )
        except (exceptions.DeadlineExceeded, exceptions.ServiceUnavailable):
            return []
        received = list(response.received_messages)
        if received:
            client.acknowledge(
                subscription=self.read.subscription, ack_ids=[r.ack_id for r in received]
            )
        return received

    def finish_bundle(self) -> TransformResult:
        # Stopping drains: keep pulling until a pull comes back empty, so a stop requested
        # while messages still wait in the subscription does not leave them behind.
        received = self._pull()
        self.idle.saw(len(received))
        bundles = []
        if received:
            output = self._evaluation_context.create_bundle(next(iter(self._outputs)))
            for r in received:
                m = r.message
                message = PubsubMessage(
                    m.data, dict(m.attributes), message_id=m.message_id, publish_time=m.publish_time
                )
                output.output(
                    GlobalWindows.windowed_value(message, timestamp=event_timestamp(message))
                )
            bundles.append(output)
        if self.idle.should_stop() and not received:
            # Final: no reschedule, hold released, watermark goes to +inf and drains.
            return TransformResult(self, bundles, [], None, {None: None})
        again = self._evaluation_context.create_bundle(
            pvalue.PBegin(self._applied_ptransform.transform.pipeline)
        )
        hold = Timestamp.of(time.time() - self.read.watermark_lag_s)
        return TransformResult(self, bundles, [again], None, {None: hold})


_te.TransformEvaluatorRegistry._test_evaluators_overrides[_LocalPull] = _LocalPullEvaluator


class ReadMessages(beam.PTransform):
    """Read ``PubsubMessage``s (data, attributes, message id, publish time) from a subscription.

    Output elements are timestamped with the producer's ``occurred_at`` attribute;
    ``DecodeAndValidate`` re-stamps from the record itself.
    """

    def __init__(
        self,
        subscription: str,
        binding: str = LOCAL,
        run_id: str = "default",
        idle_stop_seconds: float | None = None,
        max_messages: int = 500,
        pull_timeout_s: float = 1.0,
        watermark_lag_s: float = 2.0,
    ) -> None:
        super().__init__()
        if binding not in (LOCAL, NATIVE):
            raise ValueError(f"binding must be {LOCAL!r} or {NATIVE!r}, not {binding!r}")
        self.subscription = subscription
        self.binding = binding
        self.run_id = run_id
        self.idle_stop_seconds = idle_stop_seconds
        self.max_messages = max_messages
        self.pull_timeout_s = pull_timeout_s
        self.watermark_lag_s = watermark_lag_s

    def expand(self, pbegin):
        if self.binding == NATIVE:
            return pbegin | "ReadFromPubSub" >> beam.io.ReadFromPubSub(
                subscription=self.subscription,
                with_attributes=True,
                timestamp_attribute=EVENT_TIME_ATTRIBUTE,
            )
        return pbegin | "PullLocally" >> _LocalPull(
            self.subscription,
            self.run_id,
            self.idle_stop_seconds,
            self.max_messages,
            self.pull_timeout_s,
            self.watermark_lag_s,
        )
