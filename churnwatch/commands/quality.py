"""churnwatch quality: a GX checkpoint per warehouse table, results kept, Data Docs built.

Suites come from ``schemas/*.avsc`` plus ``churnwatch/policy/quality.yaml``
(churnwatch/quality/suites.py). Every run appends its outcomes to ``quality_results``
(run id, suite, expectation, success, observed value) and rebuilds the Data Docs site.
Exit status 1 when an expectation failed (unless ``--no-fail``), so it can gate a job.
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

from churnwatch.commands import add_renamed_flag

HELP = (
    "validate every warehouse table with its expectation suite; write quality_results + Data Docs"
)


def add_arguments(parser) -> None:
    parser.add_argument(
        "--warehouse",
        default="duckdb:///churnwatch.duckdb",
        help="duckdb:///path/file.duckdb (the pipeline must not be writing to it)",
    )
    parser.add_argument(
        "--docs-dir",
        type=Path,
        default=Path("quality-docs"),
        help="where the Data Docs HTML site is written (index.html)",
    )
    add_renamed_flag(
        parser,
        "--quality-rules",
        "--rules",
        default=None,
        help="quality rules YAML (default: packaged)",
    )
    parser.add_argument(
        "--routing-policy", default=None, help="routing policy YAML (owners; default: packaged)"
    )
    parser.add_argument(
        "--tables", default=None, help="comma-separated tables to check (default: all)"
    )
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even when expectations fail")


def _select(spec) -> str:
    """Columns as the stream sees them: timestamps as epoch milliseconds."""
    cols = [f"epoch_ms({c.name}) AS {c.name}" if c.is_timestamp else c.name for c in spec.columns]
    return f"SELECT {', '.join(cols)} FROM {spec.name}"


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args) -> int:
    from churnwatch import schemas
    from churnwatch.clock import now_ms
    from churnwatch.quality import results
    from churnwatch.quality.rules import QualityRules
    from churnwatch.quality.suites import build_suites
    from churnwatch.routing import RoutingPolicy
    from churnwatch.warehouse import WarehouseUrl
    from churnwatch.warehouse.duckdb_store import DuckDBWarehouse

    url = WarehouseUrl.parse(args.warehouse)
    if url.scheme != "duckdb":
        raise ValueError("churnwatch quality reads duckdb:/// warehouses only (BigQuery: TODO)")
    if not Path(url.location).exists():
        raise FileNotFoundError(f"no warehouse file {url.location}")
    rules = QualityRules.load(args.quality_rules)
    owners = tuple(RoutingPolicy.load(args.routing_policy).owners)
    all_tables = schemas.tables()
    names = sorted(all_tables)
    if args.tables:
        names = [t.strip() for t in args.tables.split(",") if t.strip()]
        unknown = sorted(set(names) - set(all_tables))
        if unknown:
            raise ValueError(f"--tables: unknown {unknown}; known: {sorted(all_tables)}")
    suites = build_suites({n: all_tables[n] for n in names}, rules, owners)

    _progress("loading Great Expectations (a few seconds)...")
    began = time.perf_counter()
    from churnwatch.quality.gx_runner import SuiteRunner

    runner = SuiteRunner(suites, docs_dir=args.docs_dir)
    _progress(f"  ready in {time.perf_counter() - began:.1f} s")
    warehouse = DuckDBWarehouse.shared(url.location)
    warehouse.ensure_tables()
    run_id = f"warehouse:{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}:{uuid.uuid4().hex[:8]}"
    tolerance_ms = int(rules.future_tolerance_seconds * 1000)
    summary = []
    rows = []
    for index, name in enumerate(names, start=1):
        spec = all_tables[name]
        started = time.perf_counter()
        frame = warehouse.query_df(_select(spec))
        outcomes = runner.checkpoint(name, frame, now_ms(), tolerance_ms)
        failed = [o.expectation_id for o in outcomes if not o.success]
        seconds = time.perf_counter() - started
        _progress(
            f"[{index}/{len(names)}] {name}: {len(frame):,} rows, {len(outcomes)} expectations, "
            f"{len(failed)} failed ({seconds:.1f} s)"
        )
        summary.append((name, len(frame), len(outcomes), failed))
        rows += results.result_rows(outcomes, run_id, results.WAREHOUSE, now_ms())
    warehouse.upsert("quality_results", rows)
    index_html = runner.build_docs()
    DuckDBWarehouse.close_all()

    width = max(len("suite"), *(len(n) for n, *_ in summary))
    print(f"run {run_id}")
    print(f"{'suite':<{width}}  {'rows':>9}  {'expectations':>12}  {'failed':>6}")
    for name, count, total, failed in summary:
        print(f"{name:<{width}}  {count:>9,}  {total:>12}  {len(failed):>6}")
    for name, _, _, failed in summary:
        for expectation_id in failed:
            print(f"FAILED {name}: {expectation_id}")
    print(f"{len(rows)} results written to quality_results")
    if index_html:
        print(f"Data Docs: {index_html}")
    any_failed = any(failed for *_, failed in summary)
    return 1 if any_failed and not args.no_fail else 0
