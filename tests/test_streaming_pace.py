"""Same results at any pace: one world, published at a pace the runner keeps and at 4x.

The world lies an hour in the past (a replay), so every event time is behind the wall
clock when it is read. A read whose watermark followed the wall clock closed every
window before its events were read; the local read now holds the watermark at the event
times actually read while pulls return messages, and follows its own event clock when
drained. At 4x the runner falls behind (pulls of 50 come back full); the event and dead
letter tables must still be identical, apart from what Pub/Sub or the wall clock assigns
(message ids, publish and processing times), and both runs must drain and end cleanly
(the old read ended such runs with a runner stall).

The churn alerts must be identical too (ids, revisions, event times): TrackCustomers
keeps rows until the watermark passes them and applies them in event-time order, so the
order in which the two subscriptions happen to be read does not matter. Not asserted:
aggregate panes, whose early firings follow the wall clock by design (their final values
are upserted per window).
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid

import pytest

from churnwatch.clock import now_ms
from churnwatch.emulator import ensure_topics, subscription_path, topic_path
from churnwatch.simulate import MALFORMED, SimConfig, SimMessage, simulate
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from pipelines import streaming
from tests.conftest import PROJECT
from transforms.pubsub_local import request_stop

pytestmark = pytest.mark.emulator

DAY_SECONDS = 0.25

#: table -> columns compared (everything but what Pub/Sub or the wall clock assigns).
COMPARED = {
    "feedback_events": "event_id, customer_id, occurred_at, channel, kind, nps_score, "
    "csat_score, topic, cause, text, segment, team",
    "customer_events": "event_id, customer_id, occurred_at, type, amount, currency, "
    "monthly_revenue, reason, segment",
    "dead_letters": "source, stage, error, payload",
    "churn_alerts": "alert_id, alert_type, customer_id, revision, epoch_ms(detected_at), "
    "severity, reason_codes",
}


def _publish_at_speed(messages: list[SimMessage], topics: dict[str, str], speed: float) -> None:
    """Publish in order; message i waits until its offset in the world divided by ``speed``."""
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    first, started = messages[0].publish_at_ms, time.monotonic()
    futures = []
    for m in messages:
        delay = (m.publish_at_ms - first) / 1000.0 / speed - (time.monotonic() - started)
        if delay > 0:
            time.sleep(delay)
        futures.append(publisher.publish(topics[m.source], m.data, **m.attributes))
    for f in futures:
        f.result(timeout=60)


def _run_at_speed(sim, speed: float, db) -> dict[str, list[tuple]]:
    suffix = uuid.uuid4().hex[:8]
    names = {s: f"{s}-pace-{suffix}" for s in ("feedback", "customer")}
    ensure_topics(PROJECT, {n: [f"{n}-sub"] for n in names.values()})
    topics = {s: topic_path(PROJECT, n) for s, n in names.items()}
    run_id = uuid.uuid4().hex

    def publish() -> None:
        try:
            _publish_at_speed(sim.messages, topics, speed)
        finally:
            request_stop(run_id)  # drain what is left, then stop

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    streaming.run(
        [
            f"--feedback_subscription={subscription_path(PROJECT, names['feedback'] + '-sub')}",
            f"--customer_subscription={subscription_path(PROJECT, names['customer'] + '-sub')}",
            f"--warehouse=duckdb://{db}",
            f"--day_seconds={DAY_SECONDS}",
            "--idle_stop_seconds=60",  # fallback only: the publisher requests the stop
            "--pull_max_messages=50",
            "--stream_quality=off",
        ],
        run_id=run_id,
    )
    publisher.join(timeout=60)
    wh = DuckDBWarehouse(db)
    try:
        out = {
            table: sorted(wh.query(f"SELECT {cols} FROM {table}"), key=repr)
            for table, cols in COMPARED.items()
        }
        return out
    finally:
        wh.close()


def test_one_world_gives_the_same_tables_at_1x_and_4x_pace(pubsub_emulator, tmp_path):
    sim = simulate(
        SimConfig(
            customers=50,
            days=90,
            seed=5,
            day_seconds=DAY_SECONDS,
            start_ms=now_ms() - 3_600_000,  # a replay: every event time is in the past
            duplicate_rate=0.05,
            malformed_rate=0.02,
            spike=False,
        )
    )
    kept = _run_at_speed(sim, 1.0, tmp_path / "paced.duckdb")
    fast = _run_at_speed(sim, 4.0, tmp_path / "fast.duckdb")

    n_valid = len({m.event_id for m in sim.messages if m.label != MALFORMED})
    assert len(kept["feedback_events"]) + len(kept["customer_events"]) == n_valid
    assert kept["dead_letters"]
    assert {row[1] for row in kept["churn_alerts"]} >= {"SILENT_CHURN", "AT_RISK_SILENT"}
    for pace, tables in (("1x", kept), ("4x", fast)):
        alerts = tables["churn_alerts"]
        kinds = {k: sum(a[1] == k for a in alerts) for k in sorted({a[1] for a in alerts})}
        digest = hashlib.sha256(repr(alerts).encode()).hexdigest()[:12]
        print(f"\n{pace}: {len(alerts)} churn alerts {kinds}, sha256 of the rows {digest}")
    for table in COMPARED:
        assert fast[table] == kept[table], f"{table} differs between 1x and 4x"
