"""Warm start: a stream killed and restarted gives what one continuous run gives.

One world, published twice to fresh topics. Run A reads it in one go. Run B reads the
first 70%, is SIGKILLed mid-stream once it has published alerts (a real crash: no drain,
no final panes, some rows committed and not acked), the rest is published, and a new
pipeline starts on the same warehouse. The new run restores dedupe ids, every customer's
detector state and the open aggregate windows from the warehouse (``--warm_start=on``,
the default), so:

* the event tables hold every valid event once (nothing lost, nothing doubled);
* ``churn_alerts`` is identical to run A's: ids, revisions, event times, severities and
  reasons (a customer is not forgotten, and an alert the killed run stored is not raised
  again: ``detect/alerts_already_stored``);
* the aggregates' final values per window are identical to run A's.

With ``--warm_start=off`` the same restart forgets every customer, and the alerts and
aggregates differ from run A's: the comparison can fail.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from churnwatch.clock import now_ms
from churnwatch.emulator import EMULATOR_ENV
from churnwatch.publish import publish_messages
from churnwatch.simulate import MALFORMED, SimConfig, simulate
from churnwatch.warehouse import prepare_warehouse
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from tests.conftest import fresh_topics
from tests.helpers import streaming_argv
from transforms.pubsub_local import LEASE_S

pytestmark = pytest.mark.emulator

ROOT = Path(__file__).resolve().parent.parent
DAY_SECONDS = 0.25

#: table -> columns compared (everything but what Pub/Sub or the wall clock assigns).
COMPARED = {
    "churn_alerts": "alert_id, alert_type, customer_id, revision, epoch_ms(detected_at), "
    "severity, reason_codes, round(risk, 9)",
    "feedback_aggregates": "window_kind, epoch_ms(window_start), dimension, dimension_value, "
    "events, complaints, survey_responses, promoters, passives, detractors, "
    "churned_customers, silent_churned, vocal_churned, round(revenue_lost, 2)",
}


def _pipeline(topics, db: Path, idle_stop_s: float, *extra: str) -> list[str]:
    return streaming_argv(topics, db, idle_stop_s, f"--day_seconds={DAY_SECONDS}", *extra)


def _run_to_end(topics, db: Path, log: Path, *extra: str) -> None:
    # idle-stop only after a killed run's leases ran out and their messages came back
    done = subprocess.run(
        _pipeline(topics, db, LEASE_S + 8, *extra),
        cwd=ROOT,
        env={**os.environ, EMULATOR_ENV: os.environ[EMULATOR_ENV]},
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        timeout=600,
    )
    assert done.returncode == 0, log.read_text()[-3000:]


def _kill_mid_stream(topics, db: Path, log: Path) -> int:
    """Start a run, SIGKILL it once it has published alerts; returns how many it published.

    The run publishes its alerts to the alerts topic: the first few arriving there mean it
    is well into detection. A few seconds more let some of them reach the warehouse.
    """
    from google.cloud import pubsub_v1

    process = subprocess.Popen(
        _pipeline(topics, db, 60, f"--alerts_topic={topics['alerts']['topic']}"),
        cwd=ROOT,
        env={**os.environ, EMULATOR_ENV: os.environ[EMULATOR_ENV]},
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        start_new_session=True,
    )
    subscriber = pubsub_v1.SubscriberClient()
    published = 0
    deadline = time.monotonic() + 300
    try:
        while published < 3 and time.monotonic() < deadline and process.poll() is None:
            response = subscriber.pull(
                subscription=topics["alerts"]["subscription"], max_messages=100, timeout=5
            )
            published += len(response.received_messages)
        time.sleep(3)
        assert process.poll() is None, log.read_text()[-3000:]
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    return published


def _tables(db: Path) -> dict[str, list[tuple]]:
    wh = DuckDBWarehouse(db)
    try:
        out = {
            table: sorted(wh.query(f"SELECT {cols} FROM {table}"), key=repr)
            for table, cols in COMPARED.items()
        }
        out["event_ids"] = sorted(
            r[0]
            for r in wh.query(
                "SELECT event_id FROM feedback_events "
                "UNION ALL SELECT event_id FROM customer_events"
            )
        )
        return out
    finally:
        wh.close()


def _fresh(db: Path) -> Path:
    prepare_warehouse(f"duckdb://{db}")  # tables up front: later WAL growth is rows
    DuckDBWarehouse.close_all()
    return db


def _not_in(rows: list[tuple], other: list[tuple]) -> int:
    known = {repr(r) for r in other}
    return sum(repr(r) not in known for r in rows)


def _publish(messages, topics) -> None:
    publish_messages(
        messages, {s: topics[s]["topic"] for s in ("feedback", "customer")}, progress=False
    )


@pytest.fixture(scope="module")
def continuous(pubsub_emulator, tmp_path_factory):
    """The world, its valid event ids, and run A's tables (one uninterrupted run)."""
    world = simulate(
        SimConfig(
            customers=60,
            days=150,
            seed=29,
            day_seconds=DAY_SECONDS,
            start_ms=now_ms() - 3_600_000,  # a replay: every event time is in the past
            duplicate_rate=0.05,
            malformed_rate=0.02,
            spike=False,
        )
    )
    topics = fresh_topics()
    _publish(world.messages, topics)
    folder = tmp_path_factory.mktemp("continuous")
    db = _fresh(folder / "continuous.duckdb")
    _run_to_end(topics, db, folder / "continuous.log")
    valid = sorted({m.event_id for m in world.messages if m.label != MALFORMED})
    return world, valid, _tables(db)


@pytest.mark.parametrize("warm_start", ["on", "off"])
def test_a_killed_and_restarted_stream_equals_one_continuous_run(continuous, warm_start, tmp_path):
    world, valid, want = continuous
    split = len(world.messages) * 7 // 10  # this world's first alerts come after half of it
    topics = fresh_topics()
    restarted = _fresh(tmp_path / "restarted.duckdb")
    _publish(world.messages[:split], topics)
    published = _kill_mid_stream(topics, restarted, tmp_path / "killed.log")
    killed = _tables(restarted)
    _publish(world.messages[split:], topics)
    _run_to_end(topics, restarted, tmp_path / "restarted.log", f"--warm_start={warm_start}")
    got = _tables(restarted)
    print(
        f"\ncontinuous: {len(want['event_ids'])} events, {len(want['churn_alerts'])} alerts, "
        f"{len(want['feedback_aggregates'])} aggregate rows; killed run had stored "
        f"{len(killed['event_ids'])} events and {len(killed['churn_alerts'])} alerts "
        f"({published} published); after the restart (warm start {warm_start}): "
        f"{len(got['event_ids'])} events, {len(got['churn_alerts'])} alerts "
        f"({_not_in(got['churn_alerts'], want['churn_alerts'])} not in run A), "
        f"{len(got['feedback_aggregates'])} aggregate rows "
        f"({_not_in(got['feedback_aggregates'], want['feedback_aggregates'])} not in run A)"
    )

    assert want["event_ids"] == valid  # the continuous run itself lost nothing
    assert {a[1] for a in want["churn_alerts"]} >= {"SILENT_CHURN", "AT_RISK_SILENT"}
    assert 0 < len(killed["event_ids"]) < len(valid)  # the kill came mid-stream
    assert published >= 3 and killed["churn_alerts"], "the kill came after alerts were stored"
    assert got["event_ids"] == valid  # nothing lost, nothing doubled across the restart
    if warm_start == "on":
        assert got["churn_alerts"] == want["churn_alerts"]
        assert got["feedback_aggregates"] == want["feedback_aggregates"]
    else:  # a cold restart forgets: the comparison above is one that can fail
        assert got["churn_alerts"] != want["churn_alerts"]
        assert got["feedback_aggregates"] != want["feedback_aggregates"]
