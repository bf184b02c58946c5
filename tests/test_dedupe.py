"""DropDuplicates: TTL in event time, per shard, with late data (TestStream)."""

from __future__ import annotations

import os
import subprocess
import sys

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue

from tests.helpers import streaming_options
from transforms.dedupe import DropDuplicates, shard_of


def row(event_id: str) -> dict:
    return {"event_id": event_id}


def kept(rows):
    class WithTime(beam.DoFn):
        def process(self, r, ts=beam.DoFn.TimestampParam):
            yield (r["event_id"], int(ts))

    return rows | "WithTime" >> beam.ParDo(WithTime())


def test_ttl_is_event_time_and_measured_from_the_shard_clock():
    """TTL 10 s, one shard so all ids share the shard clock.

    t=1   e1            kept
    t=2   e1 again      dropped (within ttl)
    t=5   e2            kept
    wm=20               timers purge e1 (expiry 11) and e2 (expiry 15)
    t=21  e1 again      kept: its ttl expired
    t=2   e4 (late)     kept; remembered until shard clock 21 + 10 = 31, not 2 + 10
    wm=25
    t=25  e4 again      dropped: a late id is remembered for a full ttl too
    """
    stream = (
        TestStream()
        .advance_watermark_to(0)
        .add_elements([TimestampedValue(row("e1"), 1)])
        .add_elements([TimestampedValue(row("e1"), 2)])
        .add_elements([TimestampedValue(row("e2"), 5)])
        .advance_watermark_to(20)
        .add_elements([TimestampedValue(row("e1"), 21)])
        .add_elements([TimestampedValue(row("e4"), 2)])
        .advance_watermark_to(25)
        .add_elements([TimestampedValue(row("e4"), 25)])
        .advance_watermark_to_infinity()
    )
    with TestPipeline(options=streaming_options()) as p:
        out = p | stream | DropDuplicates(ttl_seconds=10, num_shards=1)
        assert_that(kept(out), equal_to([("e1", 1), ("e2", 5), ("e1", 21), ("e4", 2)]))


def test_duplicates_across_many_shards_are_all_dropped():
    ids = [f"ev-{i}" for i in range(200)]
    events = [TimestampedValue(row(i), 10) for i in ids]
    stream = (
        TestStream()
        .add_elements(events)
        .add_elements(events[::2])  # every other id delivered twice
        .advance_watermark_to_infinity()
    )
    assert len({shard_of(i, 16) for i in ids}) == 16  # the ids really spread over shards
    with TestPipeline(options=streaming_options()) as p:
        out = p | stream | DropDuplicates(ttl_seconds=3600, num_shards=16)
        assert_that(out | beam.Map(lambda r: r["event_id"]), equal_to(ids))


def test_shard_of_is_stable_across_processes():
    """Workers must agree on a key's shard: crc32, not the per-process salted hash()."""
    code = (
        "from transforms.dedupe import shard_of; "
        "print([shard_of(f'fe-{i}', 64) for i in range(50)])"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert outputs == {str([shard_of(f"fe-{i}", 64) for i in range(50)]) + "\n"}


def test_ids_stored_before_a_restart_are_still_duplicates():
    """Warm start: every shard gets the ids the warehouse stored within the TTL (an empty
    list too) and holds live rows until they are in, so a message redelivered across a
    restart is dropped however the runner orders the two inputs."""
    from transforms.warm_start import SeenIds

    shards = 4
    stored_ids = ["e1", "e2", "e3"]
    seen = {shard: SeenIds() for shard in range(shards)}
    for i, event_id in enumerate(stored_ids):
        seen[shard_of(event_id, shards)].ids.append((1000 + i, event_id))
    stream = (
        TestStream()
        .add_elements([TimestampedValue(row("e1"), 2)])  # redelivered: stored before
        .add_elements([TimestampedValue(row("e4"), 3)])  # new
        .advance_watermark_to(5)
        .add_elements([TimestampedValue(row("e3"), 6)])  # redelivered
        .add_elements([TimestampedValue(row("e4"), 7)])  # a duplicate of this run's own
        .advance_watermark_to_infinity()
    )
    with TestPipeline(options=streaming_options()) as p:
        stored = p | "Stored" >> beam.Create(sorted(seen.items(), key=lambda kv: kv[0]))
        out = p | stream | DropDuplicates(ttl_seconds=10, num_shards=shards, stored=stored)
        assert_that(kept(out), equal_to([("e4", 3)]))
