"""Capacity of the local streaming path: the highest publish rate the full flow sustains.

    .venv/bin/python benchmarks/streaming_capacity.py [--rates 25,50,100,200] [--seconds 30]
        [--stages] [pipeline flags, e.g. --pull_max_messages=1000]

For each rate, one simulated world is published live to a fresh emulator topic pair
(each message at its event time, day 0 = now) while the real streaming pipeline runs
(BundleBasedDirectRunner, stream quality on, DuckDB). Printed per rate:

* event->row: Pub/Sub publish time (= event time, paced) to the commit of the message's
  row or dead letter (measured by the local read's ack bookkeeping), p50 / p95;
* event->alert: a churn alert's ``processed_at`` minus its ``detected_at`` (event time of
  the deadline or event that raised it), p50 / p95, at the first emission of each alert
  revision on the alerts topic (``--alerts_topic``, as the notifier reads it), over
  alerts detected before the last publish (the drain at the end fires every later
  deadline at once; not a latency);
* drain: seconds from the last publish until the pipeline had committed everything.

``--stages`` also prints the runner worker's CPU per pipeline step (element and timer
bundles, benchmarks/stage_profile.py); any other flag goes to the pipeline.

A rate is "sustained" when the run drained within ``--max-drain`` seconds of the last
publish and nothing was lost. Numbers are printed (and written to
benchmarks/results/streaming_capacity.json), never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.stage_profile import StageProfile
from churnwatch import schemas
from churnwatch.clock import now_ms
from churnwatch.emulator import ensure_topics, running_emulator, subscription_path, topic_path
from churnwatch.publish import publish_messages
from churnwatch.simulate import DUPLICATE, SimConfig, simulate
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from churnwatch.wire import WriterSchemas
from pipelines import streaming
from transforms.pubsub_local import local_run, request_stop

PROJECT = "churnwatch-bench"
CHURN_ALERTS = ("AT_RISK_SILENT", "SILENT_CHURN")
RESULTS = Path(__file__).parent / "results" / "streaming_capacity.json"


def _quantiles(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    if len(values) == 1:
        return values[0], values[0]
    cuts = statistics.quantiles(values, n=20)
    return statistics.median(values), cuts[18]


def _first_emissions(alerts_topic: str) -> list[tuple[int, int, str, int]]:
    """``(processed_at, detected_at, type, revision)`` of each churn alert revision's first
    emission (times in epoch ms).

    Read from the alerts topic, not the table: the table keeps one row per alert id, and a
    re-emitted revision (the detector re-sends an open episode's alert with a later event)
    overwrites its ``processed_at``, so there ``processed_at - detected_at`` is not a
    latency.
    """
    from google.cloud import pubsub_v1

    reader = WriterSchemas(schemas.load(schemas.CHURN_ALERT))
    subscriber = pubsub_v1.SubscriberClient()
    subscription = subscription_path(PROJECT, alerts_topic + "-sub")
    first: dict[tuple[str, int], tuple[int, int, str, int]] = {}
    while True:
        response = subscriber.pull(
            subscription=subscription, max_messages=1000, timeout=5.0, retry=None
        )
        received = list(response.received_messages)
        if not received:
            break
        for r in received:
            alert, _ = reader.decode(r.message.data, dict(r.message.attributes))
            if alert["alert_type"] not in CHURN_ALERTS:
                continue
            key = (alert["alert_id"], alert["revision"])
            seen = (
                alert["processed_at"],
                alert["detected_at"],
                alert["alert_type"],
                alert["revision"],
            )
            first[key] = min(first.get(key, seen), seen)
        subscriber.acknowledge(subscription=subscription, ack_ids=[r.ack_id for r in received])
    return list(first.values())


def _world(rate: float, seconds: float, seed: int):
    """A world of about ``rate * seconds`` messages whose event time spans ``seconds``."""
    days = 60.0
    probe = simulate(SimConfig(customers=100, days=days, seed=seed, spike=False))
    per_customer = len(probe.messages) / 100
    customers = max(20, int(rate * seconds / per_customer))
    return simulate(
        SimConfig(
            customers=customers,
            days=days,
            seed=seed,
            day_seconds=seconds / days,
            start_ms=now_ms() + 15_000,  # the pipeline starts meanwhile
            duplicate_rate=0.02,
            malformed_rate=0.01,
            spike=False,
        )
    )


def measure(
    rate: float,
    seconds: float,
    workdir: Path,
    stages: bool = False,
    extra_args: tuple[str, ...] = (),
) -> dict:
    sim = _world(rate, seconds, seed=int(rate))
    suffix = uuid.uuid4().hex[:8]
    names = {s: f"{s}-cap-{suffix}" for s in ("feedback", "customer", "alerts")}
    ensure_topics(PROJECT, {n: [f"{n}-sub"] for n in names.values()})
    topics = {s: topic_path(PROJECT, n) for s, n in names.items() if s != "alerts"}
    run_id, db = uuid.uuid4().hex, workdir / f"capacity-{int(rate)}.duckdb"
    for stale in (db, Path(f"{db}.wal")):  # a previous run's dead letters would count
        stale.unlink(missing_ok=True)
    last_publish: list[float] = []

    def publish() -> None:
        try:
            publish_messages(sim.messages, topics, paced=True, progress=False)
            last_publish.append(time.time())
        finally:
            request_stop(run_id)

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    profile = StageProfile() if stages else contextlib.nullcontext()
    with profile:
        streaming.run(
            [
                f"--feedback_subscription={subscription_path(PROJECT, names['feedback'] + '-sub')}",
                f"--customer_subscription={subscription_path(PROJECT, names['customer'] + '-sub')}",
                f"--warehouse=duckdb://{db}",
                f"--day_seconds={sim.config.day_seconds}",
                f"--alerts_topic={topic_path(PROJECT, names['alerts'])}",
                "--idle_stop_seconds=120",  # fallback; the publisher requests the stop
                *extra_args,
            ],
            run_id=run_id,
        )
    ended = time.time()
    publisher.join(timeout=60)
    stream_end_ms = int((last_publish[0] if last_publish else ended) * 1000)
    run = local_run(run_id)
    rows_p50, rows_p95 = _quantiles(run.commit_latencies)
    emitted = [e for e in _first_emissions(names["alerts"]) if e[1] <= stream_end_ms]
    lags = [(processed - detected) / 1000.0 for processed, detected, _, _ in emitted]
    wh = DuckDBWarehouse(db)
    try:
        stored = wh.count("feedback_events") + wh.count("customer_events")
        stored += wh.count("dead_letters")
    finally:
        wh.close()
    duplicates = sum(1 for m in sim.messages if m.label == DUPLICATE)
    alert_p50, alert_p95 = _quantiles(lags)
    span = (sim.messages[-1].publish_at_ms - sim.messages[0].publish_at_ms) / 1000.0
    result = {
        "target_rate": rate,
        "messages": len(sim.messages),
        "published_rate": round(len(sim.messages) / max(span, 1e-9), 1),
        "lost": len(sim.messages) - duplicates - stored,
        "drain_s": round(ended - last_publish[0], 1) if last_publish else None,
        "event_to_row_p50_s": rows_p50,
        "event_to_row_p95_s": rows_p95,
        "event_to_alert_p50_s": alert_p50,
        "event_to_alert_p95_s": alert_p95,
        "alerts": len(lags),
        "alert_lags": [  # (type, revision, detected at s after the first event, lag s)
            (kind, revision, (detected - sim.messages[0].publish_at_ms) / 1000.0, lag)
            for (_, detected, kind, revision), lag in zip(emitted, lags, strict=True)
        ],
    }
    if stages:
        result["stages"] = profile.as_dict()
        result["stages_report"] = profile.report()
    return result


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="25,50,100,200", help="msg/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=30.0, help="event-time span per rate")
    parser.add_argument("--max-drain", type=float, default=10.0, help="sustained: drain <= s")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/churnwatch-capacity"))
    parser.add_argument(
        "--stages",
        action="store_true",
        help="also print the runner worker's CPU per pipeline step (benchmarks/stage_profile.py)",
    )
    args, pipeline_args = parser.parse_known_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = []
    print(
        f"{'rate':>6} {'msgs':>6} {'sent/s':>7} {'lost':>5} {'drain s':>8} "
        f"{'row p50':>8} {'row p95':>8} {'alert p50':>9} {'alert p95':>9} {'alerts':>6}"
    )
    with running_emulator():
        for rate in (float(r) for r in args.rates.split(",")):
            r = measure(rate, args.seconds, args.workdir, args.stages, tuple(pipeline_args))
            results.append(r)
            print(
                f"{rate:>6.0f} {r['messages']:>6} {r['published_rate']:>7.1f} {r['lost']:>5} "
                f"{_fmt(r['drain_s']):>8} {_fmt(r['event_to_row_p50_s']):>8} "
                f"{_fmt(r['event_to_row_p95_s']):>8} {_fmt(r['event_to_alert_p50_s']):>9} "
                f"{_fmt(r['event_to_alert_p95_s']):>9} {r['alerts']:>6}",
                flush=True,
            )
            if args.stages:
                print(r.pop("stages_report"), flush=True)
    sustained = [
        r
        for r in results
        if r["lost"] == 0 and r["drain_s"] is not None and r["drain_s"] <= args.max_drain
    ]
    best = max(sustained, key=lambda r: r["published_rate"]) if sustained else None
    if best:
        print(
            f"highest sustained: {best['published_rate']:.0f} msg/s (full flow, stream quality "
            f"on): event->row p50 {_fmt(best['event_to_row_p50_s'])} s / p95 "
            f"{_fmt(best['event_to_row_p95_s'])} s, event->alert p50 "
            f"{_fmt(best['event_to_alert_p50_s'])} s / p95 {_fmt(best['event_to_alert_p95_s'])} s"
        )
    else:
        print("no rate sustained")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"results": results, "max_drain_s": args.max_drain}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
