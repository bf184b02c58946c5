"""The local read's bookkeeping: event clock, watermark holds and ack ids (no runner)."""

from __future__ import annotations

import time
from types import SimpleNamespace

from apache_beam.utils.timestamp import MIN_TIMESTAMP, Timestamp

from transforms.pubsub_local import LEASE_S, LocalRun

HOUR_US = 3_600_000_000


def _received(message_id: str, ack_id: str):
    """The shape of a pulled message the read keeps: ack id and message id."""
    return SimpleNamespace(ack_id=ack_id, message=SimpleNamespace(message_id=message_id))


def test_event_clock_follows_what_was_read_not_the_wall_clock():
    run = LocalRun(idle_stop_seconds=None)
    assert run.event_clock("feedback") is None  # nothing read: hold at the beginning of time
    now_us = int(time.time() * 1e6)
    run.saw("customer", 50, now_us - HOUR_US)  # a replay, an hour behind the wall clock
    own = run.event_clock("customer").micros
    assert now_us - HOUR_US <= own < now_us - HOUR_US + 60_000_000  # not the wall clock
    # A subscription that never read anything follows the run's clock, not the wall clock.
    assert abs(run.event_clock("feedback").micros - own) < 60_000_000
    # A producer stamping the future does not drag the clock past the wall clock.
    run.saw("feedback", 1, now_us + HOUR_US)
    assert run.event_clock("feedback").micros <= int(time.time() * 1e6)
    # Each subscription keeps its own clock once it has read something.
    assert run.event_clock("customer").micros < now_us - HOUR_US + 60_000_000


def test_a_hold_never_moves_backwards():
    run = LocalRun(idle_stop_seconds=None)
    assert run.advance_hold("s", Timestamp(100)) == Timestamp(100)
    assert run.advance_hold("s", Timestamp(50)) == Timestamp(100)  # an older pull: kept
    assert run.advance_hold("s", Timestamp(150)) == Timestamp(150)


def test_a_restarted_run_holds_at_the_oldest_event_read_for_one_lease():
    """A killed predecessor's leased messages come back only after LEASE_S: until then the
    watermark must not pass what this run read first."""
    run = LocalRun(idle_stop_seconds=None, start_hold_s=LEASE_S)
    assert run.advance_hold("s", Timestamp(100)) == MIN_TIMESTAMP  # nothing read yet
    run.read_oldest("s", Timestamp(80))
    run.read_oldest("s", Timestamp(90))
    assert run.advance_hold("s", Timestamp(150)) == Timestamp(80)
    run.started -= LEASE_S  # one lease later: the hold follows the reads again
    assert run.advance_hold("s", Timestamp(150)) == Timestamp(150)


def test_ack_ids_wait_for_the_commit_and_renew_while_in_flight():
    run = LocalRun(idle_stop_seconds=None)
    run.track("sub", [_received("m1", "a1"), _received("m2", "a2")])
    assert run.take_committed("sub") == []  # pulled is not committed
    run.commit(["m2", "unknown", None])  # ids from other sources are ignored
    assert run.take_committed("sub") == ["a2"]
    assert run.take_committed("sub") == []  # acked once
    assert run.uncommitted() == 1
    run.in_flight["sub"]["m1"].renewed -= 60  # pulled a minute ago
    assert run.due_for_renewal("sub") == ["a1"]
    assert run.due_for_renewal("sub") == []  # just renewed


def test_the_reads_idle_stop_holds_when_the_launcher_created_the_run_first():
    """``hold_after_restart`` runs before the reads exist: their idle stop must still apply."""
    import uuid

    from transforms.pubsub_local import hold_after_restart, local_run

    run_id = uuid.uuid4().hex
    hold_after_restart(run_id)
    run = local_run(run_id, idle_stop_seconds=0.01)  # what a read does when it starts
    assert run.start_hold_s == LEASE_S
    time.sleep(0.02)
    assert run.should_stop()
