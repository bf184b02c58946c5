"""Throughput of the hot path, next to raw fastavro decoding of the same bytes, in one run.

    .venv/bin/python benchmarks/throughput.py [--events 50000] [--modes in_process subprocess]

Input is a bounded Avro message log read by ReadMessageLog (a file source, never
``beam.Create``, which alone caps out near 9k elements/s). Every stage runs on the
FnApiRunner with one worker, so events/s is per core, in two modes:

* ``in_process``: the DoFns run in this process, with the runner's hard-coded 100 MB state
  cache (objsize sizing made cheap by ``transforms.state_cache``);
* ``subprocess``: ``--direct_running_mode=multi_processing``, an SDK harness process talking
  to the runner over the Fn API (gRPC data and state planes) with the state cache off
  (``--max_cache_memory_usage_mb=0``), as Dataflow's Python workers run by default since
  Beam 2.55.

Dataflow bills vCPU time, and the machine this runs on is shared, so a stage is measured
in CPU seconds (this process's threads plus the SDK harness process), minus the CPU of a
one-element pipeline in the same mode (runner and harness start-up, which a long-running
worker pays once); raw fastavro in process time. Wall seconds are printed beside.

The number we track is the ratio to raw ``fastavro.schemaless_reader`` in a plain loop
over the same payloads, measured in the same run (goal: target path >= 15%, whole flow
>= 8% in the subprocess mode). Cost per million events is one vCPU at Dataflow's streaming
price (:data:`VCPU_HOUR_USD`). Prints a table; writes benchmarks/results/throughput.json.
Never asserted in tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import apache_beam as beam
import fastavro
from apache_beam.options.pipeline_options import PipelineOptions

from churnwatch import schemas
from churnwatch.detection import DetectorConfig
from churnwatch.model.packaged import load_model
from churnwatch.quality.config import QualityConfig
from churnwatch.routing import RoutingPolicy
from churnwatch.simulate import SimConfig, simulate, write_message_log
from pipelines.flow import ChurnwatchFlow, FlowConfig
from pipelines.streaming import SINKS
from transforms.decode import DecodeAndValidate
from transforms.dedupe import DropDuplicates
from transforms.file_io import ReadMessageLog
from transforms.quality import ValidateWindows
from transforms.state_cache import size_state_without_module_walk
from transforms.track_customers import TrackCustomers, TrackingSetup
from transforms.warehouse_io import WriteToWarehouse

RESULTS = Path(__file__).parent / "results"

#: Dataflow streaming worker vCPU, on demand, us-central1, USD per hour. Derived from
#: https://cloud.google.com/dataflow/docs/cuds (read 2026-12-01): its worked example prices
#: "1 streaming vCPU ... $0.0552 per streaming vCPU per hour" at the 1-year commitment,
#: which is 20% off on demand, so 0.0552 / 0.8 = 0.069. Memory (3.75 GB per vCPU on
#: n1-standard) and Streaming Engine units are billed on top and are not included.
VCPU_HOUR_USD = 0.069
PRICE_SOURCE = "https://cloud.google.com/dataflow/docs/cuds (us-central1, read 2026-12-01)"

MODES = {
    "in_process": [
        "--runner=FnApiRunner",
        "--direct_num_workers=1",
        "--direct_running_mode=in_memory",
    ],
    "subprocess": [
        "--runner=FnApiRunner",
        "--direct_num_workers=1",
        "--direct_running_mode=multi_processing",
        "--max_cache_memory_usage_mb=0",
    ],
}


def usd_per_million(events_per_s: float) -> float:
    """One vCPU busy for the time a million events take, at :data:`VCPU_HOUR_USD`."""
    return 1e6 / events_per_s / 3600 * VCPU_HOUR_USD


def make_log(events: int, path: Path) -> int:
    """Simulate enough customers for ``events`` messages (all Avro binary, no noise)."""
    customers = max(50, events // 17)
    sim = simulate(SimConfig(customers=customers, days=180, seed=2024, json_rate=0.0, spike=False))
    messages = sim.messages[:events]
    return write_message_log(messages, path)


def raw_fastavro(path: Path) -> tuple[int, float]:
    """Plain loop: schemaless_reader over every payload (payloads preloaded in memory)."""
    with open(path, "rb") as fo:
        logged = [(r["source"], r["data"]) for r in fastavro.reader(fo)]
    parsed = {
        "feedback": schemas.load(schemas.FEEDBACK_EVENT).parsed_plain,
        "customer": schemas.load(schemas.CUSTOMER_EVENT).parsed_plain,
    }
    reader = fastavro.schemaless_reader
    started = time.process_time()
    for source, data in logged:
        reader(io.BytesIO(data), parsed[source], None)
    return len(logged), time.process_time() - started


def _cpu_seconds() -> float:
    """CPU of this process (all threads: runner, gRPC servers) and of finished SDK harnesses."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    harness = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + harness.ru_utime + harness.ru_stime


def run_beam(build: Callable[[beam.Pipeline], None], mode: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one pipeline, the SDK harness process included."""
    options = PipelineOptions(MODES[mode])
    cpu, wall = _cpu_seconds(), time.perf_counter()
    with beam.Pipeline(options=options) as p:
        build(p)
    return time.perf_counter() - wall, _cpu_seconds() - cpu


def fixed_cost(mode: str) -> tuple[float, float]:
    """(wall, CPU) of a one-element pipeline: runner and harness start-up, paid once per worker."""
    runs = [run_beam(lambda p: p | beam.Create([1]) | beam.Map(abs), mode) for _ in range(2)]
    return min(w for w, _ in runs), min(c for _, c in runs)


def stages(log: Path, db: Path) -> dict[str, Callable[[beam.Pipeline], None]]:
    config = FlowConfig(dedupe_ttl_seconds=7 * 86400, future_tolerance_seconds=300)
    tracking = TrackingSetup(
        DetectorConfig(drain_guard_seconds=None),
        load_model(),
        RoutingPolicy.load(),
        bounded=True,  # as pipelines/backfill.py runs it on bounded input
    )
    detect_config = dataclasses.replace(config, tracking=tracking)
    # Stream quality: one GX validation per table and (daily) window; the once-per-process
    # GX import (~5 s) is part of the measured time.
    policy = RoutingPolicy.load()
    feedback = schemas.load(schemas.FEEDBACK_EVENT)
    customer = schemas.load(schemas.CUSTOMER_EVENT)

    def read_only(p):
        fb, cu = p | ReadMessageLog(str(log))
        (fb, cu) | beam.Flatten() | beam.combiners.Count.Globally()

    def decode_validate(p):
        fb, cu = p | ReadMessageLog(str(log))
        fb_rows, _ = fb | "DecodeFeedback" >> DecodeAndValidate("feedback", feedback)
        cu_rows, _ = cu | "DecodeCustomer" >> DecodeAndValidate("customer", customer)
        (fb_rows, cu_rows) | beam.Flatten() | beam.combiners.Count.Globally()

    def decoded(p):
        fb, cu = p | ReadMessageLog(str(log))
        fb_rows, _ = fb | "DecodeFeedback" >> DecodeAndValidate("feedback", feedback)
        cu_rows, _ = cu | "DecodeCustomer" >> DecodeAndValidate("customer", customer)
        return (
            fb_rows | "DedupeFeedback" >> DropDuplicates(config.dedupe_ttl_seconds),
            cu_rows | "DedupeCustomer" >> DropDuplicates(config.dedupe_ttl_seconds),
        )

    def decode_validate_dedupe(p):
        decoded(p) | beam.Flatten() | beam.combiners.Count.Globally()

    def with_quality(p):
        """decode..dedupe + stream quality: one GX validation per table and daily window."""
        fb, cu = decoded(p)
        checked = [
            rows | f"Quality_{table}" >> ValidateWindows(table, QualityConfig(), policy)
            for table, rows in (("feedback_events", fb), ("customer_events", cu))
        ]
        [c["results"] for c in checked] | beam.Flatten() | beam.combiners.Count.Globally()

    def with_detection(p):
        """The target path: decode -> validate -> dedupe -> detect, as the backfill runs it."""
        fb, cu = decoded(p)
        alerts = (fb, cu) | TrackCustomers(tracking)
        (fb, cu, alerts["alerts"]) | beam.Flatten() | beam.combiners.Count.Globally()

    def whole_flow(p):
        out = p | ReadMessageLog(str(log)) | ChurnwatchFlow(detect_config)
        (
            [out[name] for name in ("feedback_events", "customer_events", "alerts", "aggregates")]
            | beam.Flatten()
            | beam.combiners.Count.Globally()
        )

    def to_duckdb(p):
        out = p | ReadMessageLog(str(log)) | ChurnwatchFlow(detect_config)
        for name, table in SINKS.items():
            if name in out:
                out[name] | f"Write_{name}" >> WriteToWarehouse(f"duckdb://{db}", table, 5000)

    return {
        "read message log": read_only,
        "+ decode + validate": decode_validate,
        "+ dedupe (sharded state)": decode_validate_dedupe,
        "+ detect (per-customer state): target path": with_detection,
        "whole flow (+ revenue, aggregates, spikes)": whole_flow,
        "whole flow + DuckDB sink": to_duckdb,
        # Last: importing GX loads thousands of modules; before transforms.state_cache the
        # SDK's state cache walked the globals of every loaded module on each state write.
        "+ dedupe + quality (GX per daily window)": with_quality,
    }


def _line(row: tuple[str, str, float, float, float]) -> str:
    _, label, rate, ratio, wall = row
    return (
        f"{label:44s} {rate:>9,.0f} events/s {ratio:6.1%} of raw  "
        f"${usd_per_million(rate):.5f}/M events  ({wall:.1f} s wall)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES), default=list(MODES))
    parser.add_argument(
        "--only", nargs="*", default=None, help="run only stages whose label contains one of these"
    )
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    size_state_without_module_walk()  # the in-process runner's cache, as the pipelines run it
    workdir = Path(tempfile.mkdtemp(prefix="churnwatch-bench-"))
    log = workdir / "messages.avro"
    print(f"simulating {args.events:,} events ...", flush=True)
    events = make_log(args.events, log)
    size = os.path.getsize(log)
    print(f"message log: {events:,} messages, {size / events:.0f} B/message on disk")

    print(f"cost: one vCPU at ${VCPU_HOUR_USD}/h, {PRICE_SOURCE}")
    rows = []
    for mode in args.modes:
        # Raw fastavro again before each mode: the machine is shared, ratios are per mode.
        n, seconds = raw_fastavro(log)
        raw_rate = n / seconds
        start_wall, start_cpu = fixed_cost(mode)
        print(f"\n[{mode}] {' '.join(MODES[mode])}")
        print(
            f"start-up (one-element pipeline, subtracted below): {start_wall:.2f} s wall, "
            f"{start_cpu:.2f} s CPU; events/s = events per CPU-second after start-up"
        )
        rows.append((mode, "raw fastavro.schemaless_reader loop", raw_rate, 1.0, seconds))
        print(_line(rows[-1]), flush=True)
        for label, build in stages(log, workdir / f"bench-{mode}.duckdb").items():
            if args.only and not any(word in label for word in args.only):
                continue
            wall, cpu = run_beam(build, mode)
            rate = events / max(cpu - start_cpu, 1e-9)
            rows.append((mode, label, rate, rate / raw_rate, wall))
            print(_line(rows[-1]), flush=True)
    result = {
        "events": events,
        "cpu_count": os.cpu_count(),
        "vcpu_hour_usd": VCPU_HOUR_USD,
        "price_source": PRICE_SOURCE,
        "stages": [
            {
                "mode": m,
                "stage": s,
                "events_per_s": round(r),
                "ratio_to_raw": round(q, 4),
                "usd_per_million_events": round(usd_per_million(r), 5),
                "wall_s": round(w, 2),
            }
            for m, s, r, q, w in rows
        ],
    }
    (RESULTS / "throughput.json").write_text(json.dumps(result, indent=2))
    print(f"results: {RESULTS / 'throughput.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
