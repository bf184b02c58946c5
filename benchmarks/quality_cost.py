"""Cost of stream quality: ms added per window (one GX validation per table and window).

    .venv/bin/python benchmarks/quality_cost.py [--sizes 100 1000 10000] [--repeat 5]

Measures, in this process: the once-per-process setup (GX import, then the ephemeral
context with suites and validation definitions, as ``_ValidateWindowFn.setup`` does), and
per window size the median time to build the DataFrame from row dicts and validate it,
for each stream table. Prints a table; writes benchmarks/results/quality_cost.json.
Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from churnwatch import schemas
from churnwatch.clock import now_ms
from churnwatch.quality.config import STREAM_TABLES, QualityConfig
from churnwatch.quality.suites import build_suite
from churnwatch.routing import RoutingPolicy
from transforms.quality import frame

RESULTS = Path(__file__).parent / "results"


def rows_for(table: str, n: int, rng: random.Random) -> list[dict]:
    """Valid rows shaped like the stream's (timestamps as epoch ms, ingest metadata)."""
    now = now_ms()
    out = []
    for i in range(n):
        base = {
            "event_id": f"{table[:2]}-{i}",
            "customer_id": f"C{rng.randrange(10**6):06d}",
            "occurred_at": now - rng.randrange(86_400_000),
            "segment": rng.choice(("smb", "mid_market", "enterprise")),
            "message_id": str(i),
            "publish_time": now,
            "schema_revision": "bench",
        }
        if table == "feedback_events":
            survey = rng.random() < 0.4
            base |= {
                "channel": rng.choice(("SURVEY", "CHAT", "EMAIL")),
                "kind": "SURVEY_RESPONSE" if survey else "COMPLAINT",
                "nps_score": rng.randint(0, 10) if survey else None,
                "csat_score": rng.randint(1, 5) if survey else None,
                "topic": None if survey else "login",
                "cause": None,
                "text": None,
                "team": "support_emea",
            }
        else:
            kind = rng.choice(("PURCHASE", "PURCHASE", "RENEWAL", "CANCELLATION"))
            base |= {
                "type": kind,
                "amount": round(rng.uniform(1, 500), 2) if kind == "PURCHASE" else None,
                "currency": "EUR" if kind == "PURCHASE" else None,
                "monthly_revenue": 0.0 if kind == "CANCELLATION" else None,
                "reason": None,
            }
        out.append(base)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    config = QualityConfig()
    policy = RoutingPolicy.load()
    suites = {
        t: build_suite(schemas.table(t), config.rules, tuple(policy.owners)) for t in STREAM_TABLES
    }

    started = time.perf_counter()
    from churnwatch.quality.gx_runner import SuiteRunner, import_gx

    import_gx()
    imported = time.perf_counter() - started
    runner = SuiteRunner(suites)
    setup = time.perf_counter() - started
    print(
        f"once per process: GX import {imported:.2f} s, + context/suites {setup - imported:.2f} s"
    )
    rng = random.Random(7)
    measured = []
    print(f"{'rows/window':>11}  {'table':<16} {'frame ms':>9} {'validate ms':>12} {'total ms':>9}")
    for size in args.sizes:
        window_total = 0.0
        for table in STREAM_TABLES:
            rows = rows_for(table, size, rng)
            columns = schemas.table(table).column_names
            runner.validate(table, frame(columns, rows), now_ms(), config.tolerance_ms)  # warm
            frame_ms, validate_ms = [], []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                df = frame(columns, rows)
                t1 = time.perf_counter()
                outcomes = runner.validate(table, df, now_ms(), config.tolerance_ms)
                t2 = time.perf_counter()
                frame_ms.append((t1 - t0) * 1000)
                validate_ms.append((t2 - t1) * 1000)
            assert all(o.success for o in outcomes), [o for o in outcomes if not o.success]
            f, v = statistics.median(frame_ms), statistics.median(validate_ms)
            window_total += f + v
            measured.append(
                {
                    "rows": size,
                    "table": table,
                    "expectations": len(outcomes),
                    "frame_ms": round(f, 2),
                    "validate_ms": round(v, 2),
                }
            )
            print(f"{size:>11,}  {table:<16} {f:>9.1f} {v:>12.1f} {f + v:>9.1f}")
        print(f"{size:>11,}  {'both tables':<16} {'':>9} {'':>12} {window_total:>9.1f}")
    result = {
        "cpu_count": os.cpu_count(),
        "gx_import_s": round(imported, 3),
        "setup_s": round(setup, 3),
        "windows": measured,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "quality_cost.json").write_text(json.dumps(result, indent=2))
    print(f"results: {RESULTS / 'quality_cost.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
