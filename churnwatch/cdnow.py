"""Real data: who among CDNOW's customers does not buy again? (calibration vs holdout)

The CDNOW sample (``data/cdnow/CDNOW_sample.txt``: 2,357 customers who first bought in
Q1 1997, every purchase until June 1998) is split as in Fader, Hardie & Lee (2005): 39
weeks of calibration, 39 weeks of holdout. Everything is fitted on the calibration
weeks only (the risk model with its own time split inside them); at the end of the
calibration every customer is ranked, and the ranking is judged against "no purchase in
the holdout" (about 71% of the customers).

Rankings compared: the risk model's, BG/NBD's 1 - P(alive) and -E[X(39 weeks)], and plain
recency (days since the last purchase). CDNOW has purchases only, so only the purchase
features speak here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from churnwatch.customer import Customer, fold
from churnwatch.model.bgnbd import expected_purchases, fit, p_alive, summarise_purchases
from churnwatch.model.risk import roc_auc
from churnwatch.model.training import TrainingConfig, fit_risk_model

DAY_MS = 86400_000
CALIBRATION_END = dt.date(1997, 10, 1)  # 39 weeks after 1997-01-01
HOLDOUT_END = dt.date(1998, 7, 1)


def data_path() -> Path:
    return Path(__file__).resolve().parent.parent / "data" / "cdnow" / "CDNOW_sample.txt"


def _ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


def read_transactions(path: Path | None = None) -> list[dict]:
    """One PURCHASE row per line (customer, date, CDs, dollars), as customer events."""
    rows = []
    with open(path or data_path()) as fo:
        for n, line in enumerate(fo):
            cid, _, date, _, amount = line.split()
            day = dt.date(int(date[:4]), int(date[4:6]), int(date[6:8]))
            rows.append(
                {
                    "event_id": f"cdnow-{n}",
                    "customer_id": f"CD{int(cid):05d}",
                    "occurred_at": _ms(day) + 12 * 3600_000,  # midday: one order a day
                    "type": "PURCHASE",
                    "amount": float(amount),
                    "monthly_revenue": None,
                }
            )
    return rows


@dataclass(frozen=True)
class Ranking:
    name: str
    roc_auc: float
    pr_auc: float  # average precision for "no purchase in the holdout"


def average_precision(score: np.ndarray, label: np.ndarray) -> float:
    order = np.argsort(-score, kind="mergesort")
    hits = np.asarray(label, bool)[order]
    precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision_at[hits].mean()) if hits.any() else float("nan")


def evaluate_cdnow(path: Path | None = None) -> tuple[list[Ranking], dict]:
    """Rankings at the end of the calibration, judged on the holdout."""
    rows = read_transactions(path)
    cal_end, hold_end = _ms(CALIBRATION_END), _ms(HOLDOUT_END)
    calibration = [r for r in rows if r["occurred_at"] < cal_end]
    bought_later = {r["customer_id"] for r in rows if cal_end <= r["occurred_at"] < hold_end}
    fitted = fit_risk_model(calibration, TrainingConfig(vanish_days=90.0), split=0.6)
    model = fitted.model
    customers: dict[str, Customer] = {}
    for r in sorted(calibration, key=lambda r: r["occurred_at"]):
        fold(customers.setdefault(r["customer_id"], Customer()), r, DAY_MS)
    ids = sorted(customers)
    label = np.array([cid not in bought_later for cid in ids])
    # BG/NBD in weeks on the calibration, as the published fit
    purchases: dict[str, list[float]] = {}
    for r in calibration:
        purchases.setdefault(r["customer_id"], []).append(r["occurred_at"] / DAY_MS / 7)
    x, t_x, big_t = summarise_purchases({c: purchases[c] for c in ids}, cal_end / DAY_MS / 7)
    bg = fit(x, t_x, big_t, time_unit_days=7.0)
    risk = np.array([float(model.risk(customers[c], cal_end, DAY_MS)) for c in ids])
    alive = np.array([p_alive(bg, a, b, c) for a, b, c in zip(x, t_x, big_t, strict=True)])
    ahead = np.array(
        [expected_purchases(bg, 39, a, b, c) for a, b, c in zip(x, t_x, big_t, strict=True)]
    )
    recency = np.array([(cal_end - customers[c].last_purchase_ms) / DAY_MS for c in ids])
    rankings = [
        Ranking(name, roc_auc(s, label), average_precision(s, label))
        for name, s in (
            ("Churnwatch risk", risk),
            ("BG/NBD 1 - P(alive)", 1 - alive),
            ("BG/NBD -E[X(39 weeks)]", -ahead),
            ("recency (days since last purchase)", recency),
        )
    ]
    info = {
        "customers": len(ids),
        "no_purchase_in_holdout": round(float(label.mean()), 4),
        "risk_model_holdout_auc_inside_calibration": fitted.holdout_auc,
        "bgnbd": {"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b},
    }
    return rankings, info
