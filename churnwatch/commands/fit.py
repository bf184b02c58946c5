"""churnwatch fit: learn the risk model from history; refuse one that does not beat the rules.

``--warehouse`` (or ``--simulate-seed``) fits the whole risk model on a time split of the
history: BG/NBD (checked for degenerate parameters, regularised when needed), the
logistic risk over the features, and the budget table. It prints the out-of-time quality
beside the simple rules on the same later part of the history and writes the model only
when it ranks better than every rule (``--force`` writes it anyway).

``--summary-csv`` fits BG/NBD alone on a CDNOW-style summary (to reproduce the published
estimates); that file is not a detector model.
"""

from __future__ import annotations

import json
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np

from churnwatch.model import history
from churnwatch.model.bgnbd import fit
from churnwatch.model.bgnbd_robust import degenerate
from churnwatch.model.training import TrainingConfig, fit_risk_model, histories, split_samples
from churnwatch.warehouse import WarehouseUrl

HELP = "fit the churn risk model on history (time split, checked against the simple rules)"
REFUSED = 3


def add_arguments(parser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--warehouse", help="duckdb:///file: fit on its customer and feedback events"
    )
    source.add_argument(
        "--simulate-seed", type=int, help="fit on a simulated history with this seed (ours)"
    )
    source.add_argument(
        "--summary-csv",
        type=Path,
        help="BG/NBD only, on a CDNOW-style summary: frequency, recency, T per customer",
    )
    parser.add_argument("--customers", type=int, default=1000, help="with --simulate-seed")
    parser.add_argument("--days", type=float, default=540.0, help="with --simulate-seed")
    parser.add_argument(
        "--time-unit-days",
        type=float,
        default=1.0,
        help="with --summary-csv: days per time unit (CDNOW: 7, weeks)",
    )
    parser.add_argument(
        "--day-seconds",
        type=float,
        default=86400.0,
        help="with --warehouse: seconds of event time per customer day",
    )
    parser.add_argument(
        "--split", type=float, default=0.6, help="share of the history the model is fitted on"
    )
    parser.add_argument(
        "--force", action="store_true", help="write the model even if a simple rule ranks better"
    )
    parser.add_argument("--out", type=Path, required=True, help="model JSON to write")


def run(args) -> int:
    if args.summary_csv:
        return _bgnbd_only(args)
    if not 0.2 <= args.split <= 0.9:
        raise ValueError("--split must be within [0.2, 0.9]")
    cfg = TrainingConfig(day_seconds=args.day_seconds)
    if args.warehouse:
        url = WarehouseUrl.parse(args.warehouse)
        if url.scheme != "duckdb":
            raise ValueError("fit --warehouse reads DuckDB files (duckdb:///path)")
        events = history.events_from_duckdb(url.location)
    else:
        from churnwatch.simulate import SimConfig, simulate

        cfg = TrainingConfig()
        sim = simulate(
            SimConfig(
                customers=args.customers, days=args.days, seed=args.simulate_seed, start_ms=0
            ),
            with_messages=False,
        )
        events = sim.events["feedback"] + sim.events["customer"]
    print(f"fitting the risk model on {len(events):,} events ...", file=sys.stderr, flush=True)
    result = fit_risk_model(events, cfg, split=args.split)
    model = result.model
    print(f"BG/NBD: {result.bgnbd_note}")
    print(
        f"samples: {result.train_samples:,} before the split, {result.holdout_samples:,} after "
        f"(share who left: {result.holdout_base_rate:.3f})"
    )
    print("calibration after the split (mean predicted -> observed, n):")
    for pred, obs, n in result.calibration:
        print(f"  {pred:6.3f} -> {obs:6.3f}  ({n:,})")
    rules = rule_aucs(events, cfg, args.split)
    print(f"{'ranking after the split':40} {'ROC-AUC':>8}")
    print(f"{'Churnwatch risk model':40} {result.holdout_auc:>8.3f}")
    for name, auc in rules.items():
        print(f"{name:40} {auc:>8.3f}")
    print("budget (alerts per 1,000 active customers per month) -> threshold on the history:")
    print("  " + ", ".join(f"{rate:g} @ {th:g}" for th, rate in model.budget_table))
    best_rule = max(rules.values())
    if not beats_rules(result.holdout_auc, rules):
        message = (
            f"refusing to write {args.out}: the risk model ranks no better than the best "
            f"simple rule after the split ({result.holdout_auc} vs {best_rule:.3f}); "
            "use a longer history, or --force"
        )
        if not args.force:
            print(f"churnwatch fit: {message}", file=sys.stderr)
            return REFUSED
        print(f"warning: {message} (written anyway: --force)", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(model.to_json() + "\n")
    print(
        f"model {model.version} -> {args.out}   (run the pipeline with --model_params {args.out})"
    )
    return 0


def beats_rules(model_auc: float | None, rules: dict[str, float]) -> bool:
    """Write a model only if it ranks strictly better than every simple rule."""
    return model_auc is not None and all(model_auc > auc for auc in rules.values())


def rule_aucs(events: list[dict], cfg: TrainingConfig, split: float) -> dict[str, float]:
    """The simple rules as rankings of the same checks after the split: days since the last
    purchase ("no purchase in N days"), and that silence over the customer's own median gap
    ("gap > k x own median gap")."""
    import bisect
    import statistics

    from churnwatch.model.risk import roc_auc

    hist = histories(events)
    sets, *_ = split_samples(hist, cfg, split)
    recency, ratio = [], []
    for cid, t in sets.keys_holdout:
        tx = hist[cid].tx_ms[: bisect.bisect_right(hist[cid].tx_ms, t)]
        quiet = (t - tx[-1]) / cfg.day_ms if tx else 0.0
        gaps = [(b - a) / cfg.day_ms for a, b in pairwise(tx)]
        recency.append(quiet)
        ratio.append(quiet / max(statistics.median(gaps), 0.5) if len(gaps) >= 2 else quiet / 14)
    y = sets.y_holdout
    return {
        "no purchase in N days (recency)": roc_auc(np.asarray(recency), y),
        "gap > k x own median gap": roc_auc(np.asarray(ratio), y),
    }


def _bgnbd_only(args) -> int:
    x, t_x, big_t = history.from_summary_csv(args.summary_csv)
    print(f"fitting BG/NBD on {len(x):,} customers ...", flush=True)
    params = fit(x, t_x, big_t, time_unit_days=args.time_unit_days)
    bad = degenerate(params)
    if bad:
        print(f"warning: degenerate fit ({', '.join(bad)})", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(params.to_json() + "\n")
    print(
        f"r={params.r:.4f} alpha={params.alpha:.4f} a={params.a:.4f} b={params.b:.4f} "
        f"LL={params.log_likelihood:.2f}  version {params.version} -> {args.out}"
    )
    print(json.dumps({"note": "BG/NBD parameters only; the detector needs `fit --warehouse`"}))
    return 0
