"""churnwatch evaluate: the detector beside the simple rules, on worlds it was not tuned on.

Prints, per world (tuning, held-out seeds, held-out generators apart): precision, recall,
median lead before the cancellation, delay after the last purchase, AT_RISK alerts per
1,000 active customers per month, the share of customers ever alerted, customers alerted
in more than one episode; then what each signal adds, and the CDNOW holdout ranking.
Writes ``results.json`` and ``precision_recall.png`` to ``--out-dir``.

``--warehouse duckdb:///...`` judges a running deployment on real labels instead: the
alerts' outcomes (saved, lost, recovered, not a risk; ``churnwatch alerts``) give production
precision, save rate, time to first action and revenue saved per owner and alert type;
with ``--truth ground_truth.jsonl`` (a simulated run such as the demo) the stored alerts are
also scored against the ground truth.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from churnwatch.model.packaged import load_model

HELP = "judge the detector beside the simple rules on tuning, held-out and real data"

TARGET = "precision >= 0.5 at recall >= 0.6, >= 3x the best rule's precision at equal recall, lead >= 14 d, <= 10 alerts / 1,000 / month"  # noqa: E501


def add_arguments(parser) -> None:
    parser.add_argument(
        "--worlds",
        default="all",
        help="comma-separated world names (ours-7, ours-11, ours-23, renewal-2, renewal-4, "
        "renewal-regular-3, cohorts-1, cohorts-2) or 'all'",
    )
    parser.add_argument("--customers", type=int, default=1000, help="customers per world")
    parser.add_argument("--days", type=float, default=540.0, help="days per world")
    parser.add_argument(
        "--budget",
        type=float,
        default=10.0,
        help="AT_RISK alerts per 1,000 active customers per month (sets the threshold)",
    )
    parser.add_argument(
        "--model-params", type=Path, default=None, help="packaged model to compare (default: ours)"
    )
    parser.add_argument("--no-cdnow", action="store_true", help="skip the CDNOW ranking")
    parser.add_argument("--no-ablation", action="store_true", help="skip the per-signal refits")
    parser.add_argument("--out-dir", type=Path, default=Path("evaluation"))
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument(
        "--warehouse",
        default=None,
        help="judge this duckdb:/// warehouse's alerts on their outcomes instead",
    )
    parser.add_argument(
        "--truth",
        type=Path,
        default=None,
        help="with --warehouse: also score against ground_truth.jsonl (simulated runs)",
    )
    parser.add_argument("--day-seconds", type=float, default=86400.0, help="with --warehouse")


def run(args) -> int:
    if args.warehouse:
        return _score_warehouse(args)
    from churnwatch.worlds import WORLDS, run_world

    names = [w.name for w in WORLDS] if args.worlds == "all" else args.worlds.split(",")
    unknown = set(names) - {w.name for w in WORLDS}
    if unknown:
        raise ValueError(f"unknown world(s) {sorted(unknown)}; known: {[w.name for w in WORLDS]}")
    packaged = load_model(args.model_params)
    reports = []
    chosen = [w for w in WORLDS if w.name in names]
    for i, world in enumerate(chosen, 1):

        def progress(step: str, i=i, world=world) -> None:
            print(f"[{i}/{len(chosen)}] {world.name}: {step}", file=sys.stderr, flush=True)

        progress(f"simulating {args.customers} customers over {args.days:g} days")
        reports.append(
            run_world(
                world,
                packaged,
                args.customers,
                args.days,
                args.budget,
                progress,
                ablation=not args.no_ablation,
            )
        )
    cdnow = None
    if not args.no_cdnow:
        print("CDNOW: fitting on the calibration weeks ...", file=sys.stderr, flush=True)
        from churnwatch.cdnow import evaluate_cdnow

        rankings, info = evaluate_cdnow()
        cdnow = {"rankings": [dataclasses.asdict(r) for r in rankings], **info}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "budget": args.budget,
        "packaged_model": packaged.version,
        "worlds": [r.to_dict() for r in reports],
        "cdnow": cdnow,
    }
    (args.out_dir / "results.json").write_text(json.dumps(doc, indent=2, default=str))
    _plot(reports, args.out_dir / "precision_recall.png")
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
        return 0
    _print_tables(reports, cdnow, args.budget, packaged.version)
    print(f"\nwrote {args.out_dir / 'results.json'} and {args.out_dir / 'precision_recall.png'}")
    return 0


def _fmt(v, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def _print_tables(reports, cdnow, budget: float, packaged_version: str) -> None:
    from churnwatch.worlds import HELD_OUT_GENERATOR, HELD_OUT_SEED, TUNING

    header = (
        f"{'method':44} {'setting':14} {'prec':>5} {'recall':>6} {'lead d':>6} {'delay d':>7} "
        f"{'/1k/mo':>6} {'alerted':>7} {'twice':>5}"
    )
    for role in (TUNING, HELD_OUT_SEED, HELD_OUT_GENERATOR):
        group = [r for r in reports if r.role == role]
        if not group:
            continue
        print(f"\n=== {role.upper()} " + "=" * (len(header) - len(role) - 5))
        for rep in group:
            expected, missing, unexpected = rep.silent_churn
            print(
                f"\n{rep.world} ({rep.customers} customers, {rep.days:g} days; alerts counted in "
                f"the last 40%; out-of-time AUC of the own fit {_fmt(rep.holdout_auc, '.3f')}; "
                f"SILENT_CHURN {expected - missing}/{expected}, {unexpected} unexpected)"
            )
            print(header)
            for row in rep.rows:
                s = row.score
                if s is None:
                    print(f"{row.method:44} {row.setting:14} {row.note}")
                    continue
                print(
                    f"{row.method:44} {row.setting:14} {s.precision:>5.2f} {s.recall:>6.2f} "
                    f"{_fmt(s.median_lead_days, '.0f'):>6} {_fmt(s.median_delay_days, '.0f'):>7} "
                    f"{s.alerts_per_1000_month:>6.1f} {s.share_alerted:>7.1%} "
                    f"{s.repeat_customers:>5}"
                )
            print("  " + _verdict(rep))
            if rep.ablation:
                full = rep.ablation.get("all signals")
                parts = ", ".join(
                    f"{name.split(' (')[0]} {_delta(full, auc)}"
                    for name, auc in rep.ablation.items()
                    if name != "all signals"
                )
                print(f"  what each signal adds (AUC {full} with all; without): {parts}")
    if cdnow:
        print(
            f"\n=== REAL DATA: CDNOW holdout ({cdnow['customers']:,} customers; "
            f"{cdnow['no_purchase_in_holdout']:.0%} buy nothing in the 39 holdout weeks) ==="
        )
        print(f"{'ranking at the end of the calibration':40} {'ROC-AUC':>8} {'PR-AUC':>7}")
        for r in cdnow["rankings"]:
            print(f"{r['name']:40} {r['roc_auc']:>8.3f} {r['pr_auc']:>7.3f}")
    print(
        f"\nbudget {budget:g} alerts / 1,000 active customers / month; packaged {packaged_version}"
    )
    print(f"target on every held-out world: {TARGET}")


def _delta(full, auc) -> str:
    if full is None or auc is None:
        return "-"
    return f"{auc - full:+.3f}"


def _verdict(rep) -> str:
    """Against the issue's targets and the best rule at equal recall, in words."""
    main = next((r for r in rep.rows if r.score is not None and r.method.startswith("Churn")), None)
    if main is None:
        return "no detector result"
    s = main.score
    rules = [r for r in rep.rows if "equal recall" in r.method and r.score is not None]
    best = max((r.score.precision for r in rules), default=0.0)
    ratio = s.precision / best if best else float("inf")
    checks = {
        "precision >= 0.5": s.precision >= 0.5,
        "recall >= 0.6": s.recall >= 0.6,
        "3x rule at equal recall": ratio >= 3,
        "lead >= 14 d": (s.median_lead_days or 0) >= 14,
        "<= 10 / 1k / month": s.alerts_per_1000_month <= 10,
    }
    met = [k for k, ok in checks.items() if ok]
    missed = [k for k, ok in checks.items() if not ok]
    return (
        f"{main.method}: {ratio:.1f}x the best rule's precision at equal recall; "
        f"met: {', '.join(met) or 'none'}; missed: {', '.join(missed) or 'none'}"
    )


def _plot(reports, path: Path) -> None:
    """Precision against recall per world: the detector's thresholds and the rules' N / k."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(reports)
    if not n:
        return
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 4 * rows), squeeze=False)
    styles = {
        "Churnwatch, fitted on own history": ("C0", "o-"),
        "Churnwatch, packaged": ("C2", "s--"),
        "no purchase in N days": ("C1", "-"),
        "gap > k x own median": ("C3", ":"),
    }
    for ax, rep in zip(axes.flat, reports, strict=False):
        for name, points in rep.curves.items():
            color, style = styles.get(name, ("grey", "-"))
            pts = sorted(points)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=color, label=name, ms=3)
        for row in rep.rows:
            if row.score is not None and row.method.startswith("Churnwatch"):
                ax.plot(row.score.recall, row.score.precision, "k*", ms=10)
        ax.set_title(f"{rep.world} ({rep.role})")
        ax.set_xlabel("recall (silent leavers)")
        ax.set_ylabel("precision (alerts)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="lower left")
    fig.suptitle("AT_RISK_SILENT: detector vs simple rules (star: at the alert budget)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _score_warehouse(args) -> int:
    from churnwatch.outcomes import production_scores, render_scores
    from churnwatch.warehouse import WarehouseUrl
    from churnwatch.warehouse.duckdb_store import DuckDBWarehouse

    url = WarehouseUrl.parse(args.warehouse)
    if url.scheme != "duckdb":
        raise ValueError("evaluate --warehouse reads DuckDB files (duckdb:///path)")
    wh = DuckDBWarehouse(url.location)
    try:
        scores = production_scores(wh)
        rows = wh.query(
            "SELECT alert_id, alert_type, customer_id, epoch_ms(detected_at) FROM churn_alerts "
            "WHERE customer_id IS NOT NULL"
        )
    finally:
        wh.close()
    doc: dict = {"outcomes": [dataclasses.asdict(s) for s in scores]}
    if args.truth:
        doc.update(_truth_scores(url.location, rows, args))
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
        return 0
    print("production precision from the alerts' outcomes (churnwatch alerts):")
    print(render_scores(scores))
    if args.truth:
        print("\nagainst the simulation's ground truth:")
        print(json.dumps({k: v for k, v in doc.items() if k != "outcomes"}, indent=2))
    return 0


def _truth_scores(location: str, rows: list[tuple], args) -> dict:
    from churnwatch.evaluate import Window, score, silent_churn_exact
    from churnwatch.model.history import events_from_duckdb
    from churnwatch.model.training import histories
    from churnwatch.simulate import read_truth

    alerts = [
        {"alert_id": i, "alert_type": t, "customer_id": c, "detected_at": d} for i, t, c, d in rows
    ]
    truth = read_truth(args.truth)
    hist = histories(events_from_duckdb(location))
    start = min(h.first_seen_ms for h in hist.values())
    end = max(h.rows[-1]["occurred_at"] for h in hist.values()) + 1
    result = score(alerts, truth, hist, Window(start, end, args.day_seconds * 1000))
    expected, missing, unexpected = silent_churn_exact(alerts, truth)
    return {
        "at_risk_silent": dataclasses.asdict(result),
        "silent_churn": {"expected": expected, "missing": missing, "unexpected": unexpected},
    }
