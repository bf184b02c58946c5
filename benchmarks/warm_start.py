"""What a warm start costs: a pipeline starting on a warehouse that already holds a history.

    .venv/bin/python benchmarks/warm_start.py [--customers 600,3000] [--days 540]

For each size, a simulated world's events are written to a fresh DuckDB warehouse (as a
previous run would have left them, alerts included: the backfill writes them), then the
real streaming pipeline (BundleBasedDirectRunner, emulator, nothing to read) starts on it
and drains at once. Printed per size and ``--warm_start`` on / off: stored events, seconds
from start to drained, CPU seconds of the process, and how many stored alerts the start
changed (a replay that re-raised what was stored would show here). The difference between
on and off is what restoring the state costs. Numbers are printed (and written to
benchmarks/results/warm_start.json), never asserted.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from churnwatch.emulator import ensure_topics, running_emulator, subscription_path
from churnwatch.simulate import SimConfig, simulate, write_message_log
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from pipelines import backfill, streaming

PROJECT = "churnwatch-bench"
RESULTS = Path(__file__).parent / "results" / "warm_start.json"


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def history(customers: int, days: float, workdir: Path) -> Path:
    """A warehouse as a run over the whole world leaves it (the backfill writes the same)."""
    sim = simulate(SimConfig(customers=customers, days=days, seed=7, spike=False))
    source = workdir / f"world-{customers}.avro"
    write_message_log(sim.messages, source)
    db = workdir / f"history-{customers}.duckdb"
    db.unlink(missing_ok=True)
    backfill.run([f"--input={source}", f"--warehouse=duckdb://{db}", "--stream_quality=off"])
    DuckDBWarehouse.close_all()
    return db


def start_on(db: Path, warm: str) -> dict:
    suffix = uuid.uuid4().hex[:8]
    names = {s: f"{s}-warm-{suffix}" for s in ("feedback", "customer")}
    ensure_topics(PROJECT, {n: [f"{n}-sub"] for n in names.values()})
    copy = db.with_name(f"{db.stem}-{warm}.duckdb")
    copy.write_bytes(db.read_bytes())
    before = _alert_revisions(copy)
    cpu, wall = _cpu_s(), time.monotonic()
    streaming.run(
        [
            f"--feedback_subscription={subscription_path(PROJECT, names['feedback'] + '-sub')}",
            f"--customer_subscription={subscription_path(PROJECT, names['customer'] + '-sub')}",
            f"--warehouse=duckdb://{copy}",
            "--idle_stop_seconds=1",
            "--stream_quality=off",
            f"--warm_start={warm}",
        ]
    )
    wh = DuckDBWarehouse(copy)
    try:
        events = wh.count("feedback_events") + wh.count("customer_events")
    finally:
        wh.close()
    after = _alert_revisions(copy)
    return {
        "warm_start": warm,
        "stored_events": events,
        "start_to_drained_s": round(time.monotonic() - wall, 1),
        "cpu_s": round(_cpu_s() - cpu, 1),
        "stored_alerts": len(before),
        "alerts_changed_by_the_restart": len(after - before),
    }


def _alert_revisions(db: Path) -> set[tuple]:
    wh = DuckDBWarehouse(db)
    try:
        return set(wh.query("SELECT alert_id, revision FROM churn_alerts"))
    finally:
        wh.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", default="600,3000", help="comma-separated sizes")
    parser.add_argument("--days", type=float, default=540.0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/churnwatch-warm-start"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = []
    print(
        f"{'customers':>9} {'events':>8} {'warm':>5} {'start->drained s':>17} {'cpu s':>6} "
        f"{'alerts':>7} {'changed':>8}"
    )
    with running_emulator():
        for customers in (int(c) for c in args.customers.split(",")):
            print(f"writing the history of {customers} customers ...", flush=True)
            db = history(customers, args.days, args.workdir)
            for warm in ("off", "on"):
                r = {"customers": customers, **start_on(db, warm)}
                results.append(r)
                print(
                    f"{customers:>9} {r['stored_events']:>8} {warm:>5} "
                    f"{r['start_to_drained_s']:>17} {r['cpu_s']:>6} "
                    f"{r['stored_alerts']:>7} {r['alerts_changed_by_the_restart']:>8}",
                    flush=True,
                )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
