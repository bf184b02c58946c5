"""ReadMessages: one read interface, two bindings.

* ``native`` — ``beam.io.ReadFromPubSub`` (what Dataflow runs; event time from the
  ``occurred_at`` attribute that producers set, watermark and acks by the service).
* ``local`` — :mod:`transforms.pubsub_local`, for the streaming DirectRunner: large pulls
  with short timeouts, a watermark held at the event times actually read while there is a
  backlog, acks only after the rows are committed, and a run that stops itself.

Both emit ``PubsubMessage``s timestamped with their ``occurred_at`` attribute;
``DecodeAndValidate`` re-stamps from the record itself.
"""

from __future__ import annotations

import apache_beam as beam

from churnwatch.wire import EVENT_TIME_ATTRIBUTE
from transforms.pubsub_local import LocalPull

LOCAL = "local"
NATIVE = "native"


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
        return pbegin | "PullLocally" >> LocalPull(
            self.subscription,
            self.run_id,
            self.idle_stop_seconds,
            self.max_messages,
            self.pull_timeout_s,
            self.watermark_lag_s,
        )
