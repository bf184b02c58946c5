"""churnwatch fit: fit BG/NBD on history and write versioned parameters (JSON)."""

from __future__ import annotations

from pathlib import Path

from churnwatch.model import history
from churnwatch.model.bgnbd import fit
from churnwatch.warehouse import WarehouseUrl

HELP = "fit the BG/NBD churn model on history; write versioned parameters for the pipeline"


def add_arguments(parser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--summary-csv", type=Path, help="CDNOW-style summary: frequency, recency, T per customer"
    )
    source.add_argument("--warehouse", help="duckdb:///file: fit on customer_events")
    source.add_argument(
        "--simulate-seed", type=int, help="fit on a simulated year of history with this seed"
    )
    parser.add_argument(
        "--time-unit-days",
        type=float,
        default=1.0,
        help="days per time unit of --summary-csv (CDNOW: 7, weeks)",
    )
    parser.add_argument(
        "--day-seconds",
        type=float,
        default=86400.0,
        help="with --warehouse: seconds of event time per customer day",
    )
    parser.add_argument("--out", type=Path, required=True, help="parameters JSON to write")


def run(args) -> int:
    unit = 1.0
    if args.summary_csv:
        x, t_x, T = history.from_summary_csv(args.summary_csv)
        unit = args.time_unit_days
    elif args.warehouse:
        url = WarehouseUrl.parse(args.warehouse)
        if url.scheme != "duckdb":
            raise ValueError("fit --warehouse reads DuckDB files (duckdb:///path)")
        x, t_x, T = history.from_duckdb(url.location, args.day_seconds)
    else:
        x, t_x, T = _from_simulation(args.simulate_seed)
    print(f"fitting BG/NBD on {len(x):,} customers ...", flush=True)
    params = fit(x, t_x, T, time_unit_days=unit)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(params.to_json() + "\n")
    print(
        f"r={params.r:.4f} alpha={params.alpha:.4f} a={params.a:.4f} b={params.b:.4f} "
        f"LL={params.log_likelihood:.2f}  version {params.version} -> {args.out}"
    )
    return 0


def _from_simulation(seed: int, customers: int = 1000, days: float = 365.0):
    """A simulated year of transactions (the simulator is a tool, so it is used here)."""
    from churnwatch.simulate import SimConfig, simulate

    sim = simulate(SimConfig(customers=customers, days=days, seed=seed, spike=False))
    rows = [
        (r["customer_id"], r["occurred_at"] - sim.start_ms)
        for r in sim.events["customer"]
        if r["type"] in history.TRANSACTIONS
    ]
    return history.summarise_transactions(rows, 86400.0, observed_until_ms=int(days * 86400_000))
