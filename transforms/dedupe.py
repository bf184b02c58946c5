"""DropDuplicates: forget nothing for ``ttl``, keep state per shard, not per event id.

Pub/Sub delivers at least once and producers retry, so the same ``event_id`` can arrive
twice. Per-key state costs ~1 ms a key in the Python SDK, so ids are hashed onto a fixed
number of shards and each shard holds one dict ``event_id -> expiry``::

    shard clock ──e1(t=0)──e2(t=5)──e1 again(t=7): dropped──...──e9(t=0+ttl): e1 forgotten

Expiry is measured from the shard clock (the latest event time the shard has seen), not
from the element's own time, so a late event is remembered for a full ttl too. Expired
ids are purged as new ids arrive (the dict is in expiry order, so that is amortised O(1)),
and one coarse event-time timer per shard purges a shard that has gone quiet. An id is
remembered for at least ``ttl`` of shard clock.

Why not one timer at each earliest expiry: every timer firing is a bundle, every bundle
commits every shard's state, and a state commit costs ~1 ms in the Python SDK (the state
cache sizes each value with objsize). Purging one expiry per firing made the batch runner
crawl at ~400 events/s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Timestamp

from transforms.sharding import (
    SHARD_STATE_CODER,
    BatchByShard,
    read_shard_state,
    shard_of,
    unbatch,
    write_shard_state,
)
from transforms.state_cache import size_state_without_module_walk
from transforms.warm_start import SeenIds

__all__ = ["DropDuplicates", "shard_of"]


class _DedupeShardFn(beam.DoFn):
    # state: [ {event_id: expiry_ms} in insertion (= expiry) order, shard clock ms, timer ms,
    #          rows held until the warm start's ids arrived (None once they have) ]
    SEEN = ReadModifyWriteStateSpec("seen", SHARD_STATE_CODER)
    IDLE_PURGE = TimerSpec("idle_purge", TimeDomain.WATERMARK)

    def __init__(
        self, ttl_ms: int, id_field: str, on_drop: Callable | None = None, warm: bool = False
    ) -> None:
        self.ttl_ms = ttl_ms
        self.id_field = id_field
        self.on_drop = on_drop
        self.warm = warm

    def setup(self) -> None:
        size_state_without_module_walk()  # in case this process caches state (see module)
        self.duplicates = Metrics.counter("dedupe", "duplicates_dropped")
        self.forgotten = Metrics.counter("dedupe", "ids_expired")
        self.restored = Metrics.counter("dedupe", "ids_restored")

    def process(
        self,
        element: tuple[int, list[tuple[int, dict[str, Any]]] | SeenIds],
        seen_state=beam.DoFn.StateParam(SEEN),
        idle_timer=beam.DoFn.TimerParam(IDLE_PURGE),
    ):
        _, batch = element
        seen, clock, timer_ms, held = read_shard_state(
            seen_state, [{}, 0, None, [] if self.warm else None]
        )
        if isinstance(batch, SeenIds):  # the warm start: ids stored within the TTL
            for t, event_id in sorted(batch.ids):
                clock = max(clock, t)
                seen[event_id] = t + self.ttl_ms
            self._purge(seen, clock)
            self.restored.inc(len(batch.ids))
            batch, held = held or [], None
        elif held is not None:  # live rows before the stored ids: wait for them
            held.extend(batch)
            write_shard_state(seen_state, [seen, clock, timer_ms, held])
            return
        id_field, ttl_ms, dropped = self.id_field, self.ttl_ms, []
        for micros, row in batch:
            event_id = row[id_field]
            if event_id in seen:
                dropped.append(row.get("message_id"))
                continue
            if micros // 1000 > clock:
                clock = micros // 1000
                self._purge(seen, clock)
            seen[event_id] = clock + ttl_ms
            yield unbatch(micros, row)
        if dropped:
            self.duplicates.inc(len(dropped))
            if self.on_drop is not None:
                self.on_drop(dropped)  # the first occurrence carries the event
        # Re-arm the idle timer only when the clock moved half a ttl past it: timer
        # firings are bundles, and each bundle commits every shard's state.
        if clock and (timer_ms is None or clock + ttl_ms > timer_ms + ttl_ms // 2):
            timer_ms = clock + ttl_ms
            idle_timer.set(Timestamp(micros=timer_ms * 1000))
        write_shard_state(seen_state, [seen, clock, timer_ms, held])

    @on_timer(IDLE_PURGE)
    def purge_idle_shard(
        self,
        fire=beam.DoFn.TimestampParam,
        seen_state=beam.DoFn.StateParam(SEEN),
        idle_timer=beam.DoFn.TimerParam(IDLE_PURGE),
    ):
        state = read_shard_state(seen_state, None)
        if not state:
            return
        seen, clock, _, held = state
        fire_ms = fire.micros // 1000
        self._purge(seen, fire_ms)
        timer_ms = None
        if seen:
            timer_ms = max(next(iter(seen.values())), fire_ms + self.ttl_ms // 2)
            idle_timer.set(Timestamp(micros=timer_ms * 1000))
        write_shard_state(seen_state, [seen, clock, timer_ms, held])

    def _purge(self, seen: dict[str, int], now_ms: int) -> None:
        """Forget ids whose expiry has passed; the dict is in expiry order, so stop early."""
        expired = []
        for event_id, expiry in seen.items():
            if expiry > now_ms:
                break
            expired.append(event_id)
        for event_id in expired:
            del seen[event_id]
        if expired:
            self.forgotten.inc(len(expired))


class DropDuplicates(beam.PTransform):
    """Rows whose ``id_field`` was seen within ``ttl_seconds`` of event time are dropped.

    Output: the first occurrence of every id, unchanged, with its timestamp.
    Metrics: ``dedupe/duplicates_dropped``, ``dedupe/ids_expired``. ``on_drop`` (optional,
    picklable) is called with the ``message_id``s of dropped rows: a local run acks them.

    ``stored`` (optional): ``(shard, SeenIds)`` for every shard, from the warm start
    (``transforms.warm_start.ReadStoredState``). Each shard then holds its live rows until
    its stored ids have arrived, so a message redelivered across a restart is dropped.
    """

    def __init__(
        self,
        ttl_seconds: float,
        num_shards: int = 64,
        id_field: str = "event_id",
        on_drop: Callable | None = None,
        stored=None,
    ):
        super().__init__()
        self.stored = stored
        if ttl_seconds <= 0 or num_shards <= 0:
            raise ValueError("ttl_seconds and num_shards must be positive")
        self.ttl_ms = int(ttl_seconds * 1000)
        self.num_shards = num_shards
        self.id_field = id_field
        self.on_drop = on_drop

    def expand(self, rows):
        id_field = self.id_field
        batches = rows | "BatchByIdShard" >> BatchByShard(
            lambda row: row[id_field], self.num_shards
        )
        if self.stored is not None:
            batches = (batches, self.stored) | "WithStoredIds" >> beam.Flatten()
        return batches | "FirstSeenOnly" >> beam.ParDo(
            _DedupeShardFn(self.ttl_ms, id_field, self.on_drop, warm=self.stored is not None)
        )
