"""churnwatch evaluate: precision, recall and lead time of the detector on simulations."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from churnwatch.detection import SIGNAL_BOOSTS, Detector, DetectorConfig
from churnwatch.evaluate import replay, score
from churnwatch.model.params import load_params
from churnwatch.routing import RoutingPolicy
from churnwatch.simulate import SimConfig, read_truth, simulate

HELP = "score churn alerts against a simulation's ground truth (per seed, per signal)"


def add_arguments(parser) -> None:
    parser.add_argument(
        "--seeds",
        default="7,11",
        help="simulation seeds: the first was used for tuning, the rest are held out",
    )
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--days", type=float, default=365.0)
    parser.add_argument(
        "--model-params",
        type=Path,
        default=None,
        help="BG/NBD parameters JSON (default: the packaged ones)",
    )
    parser.add_argument(
        "--warehouse",
        default=None,
        help="instead of replaying: score churn_alerts of this duckdb:/// file",
    )
    parser.add_argument(
        "--truth", type=Path, default=None, help="with --warehouse: ground_truth.jsonl of the run"
    )
    parser.add_argument("--day-seconds", type=float, default=86400.0)
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args) -> int:
    params, policy = load_params(args.model_params), RoutingPolicy.load()
    if args.warehouse:
        return _score_warehouse(args)
    results = []
    variants = {"all signals": frozenset(SIGNAL_BOOSTS), "no signals": frozenset()}
    variants.update({f"only {s}": frozenset({s}) for s in SIGNAL_BOOSTS})
    for i, seed in enumerate(int(s) for s in args.seeds.split(",")):
        sim = simulate(SimConfig(customers=args.customers, days=args.days, seed=seed))
        events = sim.events["feedback"] + sim.events["customer"]
        end_ms = sim.start_ms + int(args.days * 86400_000)
        for name, signals in variants.items():
            detector = Detector(DetectorConfig(signals=signals), params, policy)
            result = score(replay(detector, events, end_ms), sim.truth, 86400.0)
            results.append(
                {
                    "seed": seed,
                    "role": "tuning" if i == 0 else "held out",
                    "variant": name,
                    **dataclasses.asdict(result),
                }
            )
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"{'seed':>5} {'role':9} {'variant':26} {'precision':>9} {'recall':>7} "
        f"{'lead d':>7} {'alerted':>7} {'SILENT_CHURN exact':>18}"
    )
    for r in results:
        lead = "-" if r["median_lead_days"] is None else f"{r['median_lead_days']:.1f}"
        print(
            f"{r['seed']:>5} {r['role']:9} {r['variant']:26} {r['precision']:>9.2f} "
            f"{r['recall']:>7.2f} {lead:>7} {r['alerted_customers']:>7} "
            f"{'yes' if r['silent_churn_alerts_exact'] else 'NO':>18}"
        )
    print(f"model {params.version}; target: recall >= 0.8 at precision >= 0.7, lead >= 14 days")
    return 0


def _score_warehouse(args) -> int:
    from churnwatch.warehouse import WarehouseUrl
    from churnwatch.warehouse.duckdb_store import DuckDBWarehouse

    if not args.truth:
        raise ValueError("--warehouse needs --truth ground_truth.jsonl")
    wh = DuckDBWarehouse(WarehouseUrl.parse(args.warehouse).location)
    try:
        rows = wh.query(
            "SELECT alert_type, customer_id, epoch_ms(detected_at) FROM churn_alerts "
            "WHERE customer_id IS NOT NULL"
        )
    finally:
        wh.close()
    alerts = [{"alert_type": t, "customer_id": c, "detected_at": d} for t, c, d in rows]
    result = score(alerts, read_truth(args.truth), args.day_seconds)
    print(json.dumps(dataclasses.asdict(result), indent=2))
    return 0
