"""churnwatch demo: the whole local path, end to end, in about two minutes.

Starts the Pub/Sub emulator on a free port, creates the topics, runs the real streaming
pipeline (DirectRunner) while a simulated customer base is published in compressed real
time (one customer day = ``--day-seconds``), lets the pipeline drain after the stream goes
quiet, and prints what happened. The DuckDB file stays behind for querying.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from pathlib import Path

from churnwatch import topology
from churnwatch.clock import now_ms
from churnwatch.emulator import ensure_topics, running_emulator
from churnwatch.publish import publish_messages
from churnwatch.simulate import SimConfig, simulate, write_truth
from churnwatch.summary import (
    alert_load,
    counters,
    render,
    render_alert_load,
    top_alerts,
    warehouse_summary,
)
from transforms.pubsub_local import messages_read, request_stop

HELP = "run the pipeline on the Pub/Sub emulator with simulated customers; write DuckDB"


def add_arguments(parser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder")
    parser.add_argument("--customers", type=int, default=400)
    parser.add_argument("--days", type=float, default=150.0, help="simulated days")
    parser.add_argument(
        "--day-seconds",
        type=float,
        default=0.5,
        help="seconds of event time per customer day "
        "(0.5: 150 days in 75 s, a pace the local DirectRunner keeps up with)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--idle-stop-seconds",
        type=float,
        default=30.0,
        help="fallback: drain after this long without input",
    )


def run(args) -> int:
    from pipelines import streaming  # Beam import is slow; keep `churnwatch --help` fast

    args.out.mkdir(parents=True, exist_ok=True)
    db = (args.out / "churnwatch.duckdb").resolve()
    for stale in (db, db.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)
    cfg = SimConfig(
        customers=args.customers,
        days=args.days,
        seed=args.seed,
        day_seconds=args.day_seconds,
        start_ms=now_ms() + 8000,  # leave the pipeline a few seconds to start
        malformed_rate=0.01,
        duplicate_rate=0.02,
        late_rate=0.01,
        out_of_order_rate=0.02,
    )
    sim = simulate(cfg)
    write_truth(sim.truth, args.out / "ground_truth.jsonl")
    print(
        f"simulated {len(sim.truth)} customers over {cfg.days:.0f} days: "
        f"{len(sim.messages):,} messages, ~{cfg.days * cfg.day_seconds:.0f} s of event time"
    )
    project = topology.DEFAULT_PROJECT
    with running_emulator() as emulator:
        print(f"Pub/Sub emulator on {emulator.host_port}")
        ensure_topics(project, topology.layout())
        published: dict[str, int] = {}
        stop = threading.Event()

        run_id = uuid.uuid4().hex

        def publish() -> None:
            topics = {s: topology.topic(project, s) for s in ("feedback", "customer")}
            try:
                publish_messages(sim.messages, topics, paced=True, should_stop=stop.is_set)
            finally:
                # Everything is published: drain what is left in the subscriptions and stop.
                # (Idle-stop stays as a fallback; a busy CPU can stall this thread.)
                request_stop(run_id)

        publisher = threading.Thread(target=publish, name="publisher", daemon=True)
        publisher.start()
        started = time.monotonic()
        argv = [
            f"--feedback_subscription={topology.subscription(project, 'feedback')}",
            f"--customer_subscription={topology.subscription(project, 'customer')}",
            f"--warehouse=duckdb://{db}",
            f"--day_seconds={cfg.day_seconds}",
            f"--idle_stop_seconds={args.idle_stop_seconds}",
        ]
        print("streaming pipeline running (Ctrl-C drains it)...")
        try:
            result = streaming.run(argv, run_id=run_id)
        finally:
            stop.set()
            publisher.join(timeout=30)
        elapsed = time.monotonic() - started
    for m in sim.messages:
        published[f"{m.source}_{m.label}"] = published.get(f"{m.source}_{m.label}", 0) + 1
    published["total"] = len(sim.messages)
    metrics = counters(result)
    warehouse = warehouse_summary(str(db))
    metrics["messages_read"] = messages_read(run_id)
    print(render(published, warehouse, metrics))
    print()
    print(top_alerts(str(db)))
    load = alert_load(str(db), cfg.day_seconds)
    print(render_alert_load(load))
    print(f"\npipeline ran {elapsed:.0f} s; warehouse: {db}")
    print(
        f"score the alerts:  .venv/bin/churnwatch evaluate --warehouse duckdb://{db} "
        f"--truth {args.out / 'ground_truth.jsonl'} --day-seconds {cfg.day_seconds}"
    )
    print(f'query it:  duckdb {db} "SELECT kind, count(*) FROM feedback_events GROUP BY 1"')
    print(
        f"data quality (checkpoints + Data Docs):  .venv/bin/churnwatch quality "
        f"--warehouse duckdb://{db} --docs-dir {args.out / 'quality-docs'}"
    )
    (args.out / "summary.json").write_text(
        json.dumps(
            {
                "config": dataclasses.asdict(cfg),
                "published": published,
                "warehouse": warehouse,
                "metrics": metrics,
                "alert_load": load,
                "elapsed_s": round(elapsed, 1),
            },
            indent=2,
            default=str,
        )
    )
    # Issue 15: support leads work the queue through `churnwatch alerts` (outcomes from
    # the data, a few alerts taken and resolved), so the report shows the funnel.
    from churnwatch.commands.alerts import demo_work_queue
    from churnwatch.warehouse.duckdb_store import DuckDBWarehouse

    DuckDBWarehouse.close_all()  # the pipeline's writer; the commands open the file anew
    print()
    demo_work_queue(f"duckdb://{db}")

    from churnwatch.report import write_report  # matplotlib import is slow

    report = write_report(db, args.out / "report.html", cfg.day_seconds).resolve()
    print(f"report (plots, open alerts, survey cadence): {report}")
    return 0
