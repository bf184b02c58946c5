"""BatchByShard: rows grouped per state shard within a bundle, so state work is per batch.

Stateful DoFns in the Python SDK pay per element for the shuffle framing, the DoFn call and
the state access, and per (key, bundle) for each state commit. Grouping the rows of one
bundle by shard first turns N element-level calls into one call per shard per bundle:

    row, row, row, ...  ──BatchByShard──>  (shard 3, [(t, row), (t, row)]), (shard 17, ...)

Each row travels with its timestamp (epoch micros). A batch element carries the earliest
of them, so it is never later than any of its rows; the stateful DoFn downstream re-emits
each row with its own timestamp (:func:`unbatch`).
"""

from __future__ import annotations

import pickle
import zlib
from collections.abc import Callable
from typing import Any

import apache_beam as beam
from apache_beam.coders import BytesCoder
from apache_beam.transforms.window import GlobalWindow, TimestampedValue
from apache_beam.utils.timestamp import Timestamp
from apache_beam.utils.windowed_value import WindowedValue


def shard_of(key: str, num_shards: int) -> int:
    """Stable across processes (``hash()`` is salted per interpreter)."""
    return zlib.crc32(key.encode()) % num_shards


class _BatchByShardFn(beam.DoFn):
    def __init__(self, key_of: Callable[[dict], str], num_shards: int, max_batch: int) -> None:
        self.key_of = key_of
        self.num_shards = num_shards
        self.max_batch = max_batch

    def start_bundle(self) -> None:
        self.batches: dict[int, list[tuple[int, dict[str, Any]]]] = {}

    def process(self, row: dict[str, Any], timestamp=beam.DoFn.TimestampParam):
        shard = shard_of(self.key_of(row), self.num_shards)
        batch = self.batches.setdefault(shard, [])
        batch.append((timestamp.micros, row))
        if len(batch) >= self.max_batch:
            del self.batches[shard]
            yield _batch_value(shard, batch)

    def finish_bundle(self):
        for shard, batch in self.batches.items():
            yield _batch_value(shard, batch)
        self.batches = {}


def _batch_value(shard: int, batch: list[tuple[int, dict[str, Any]]]) -> WindowedValue:
    earliest = Timestamp(micros=min(micros for micros, _ in batch))
    return WindowedValue((shard, batch), earliest, [GlobalWindow()])


def unbatch(micros: int, row: dict[str, Any]) -> TimestampedValue:
    """A row of a batch, re-emitted with its own timestamp."""
    return TimestampedValue(row, Timestamp(micros=micros))


class BatchByShard(beam.PTransform):
    """Global-window rows → ``(shard, [(timestamp micros, row), ...])`` per bundle."""

    def __init__(self, key_of: Callable[[dict], str], num_shards: int, max_batch: int = 2000):
        super().__init__()
        if num_shards <= 0 or max_batch <= 0:
            raise ValueError("num_shards and max_batch must be positive")
        self.key_of = key_of
        self.num_shards = num_shards
        self.max_batch = max_batch

    def expand(self, rows):
        return rows | "GroupRowsPerShard" >> beam.ParDo(
            _BatchByShardFn(self.key_of, self.num_shards, self.max_batch)
        ).with_output_types(tuple[int, list[tuple[int, dict[str, Any]]]])


def read_shard_state(state, default: Any) -> Any:
    """The value of a shard's state, stored as one pickled blob (see :data:`SHARD_STATE_CODER`)."""
    blob = state.read()
    return default if blob is None else pickle.loads(blob)


def write_shard_state(state, value: Any) -> None:
    state.write(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))


#: Shard state is kept as bytes we pickle ourselves. The SDK's state cache sizes every value
#: it holds with objsize, a Python walk over every object inside: for a shard holding a dict
#: of hundreds of customers that walk cost more than the detection itself, on every write.
#: A bytes value is sized at once, and pickling in C is cheap.
SHARD_STATE_CODER = BytesCoder()
