"""Learning the risk model from a warehouse's own history: labels, samples, traces, budget.

No ground truth is needed: what happened later in the history is the label.

* A **sample** is a (customer, check time ``t``) pair, every ``check_days``, while the
  customer is on the books (no cancellation yet) and silent (no negative feedback in the
  lookback): exactly the customers an AT_RISK_SILENT alert could be about.
* Its **label** says whether the customer came back: 0 if a transaction follows ``t``
  (within what was observed), 1 if they cancelled or closed the account after ``t``
  without buying again, or vanished (no transaction for ``vanish_days`` until the end of
  the observed history); otherwise the label is unknown and the sample is left out
  (censored). A pause that ends is a 0, however long.
* **Time split**: the model is fitted on check times before a split point with labels
  observed up to the split, and judged on the check times after it, so the quality
  printed is out of time, not in sample.
* **Traces** replay a history on a day grid with numpy and give every customer's risk
  per day; from them follow the alerts each threshold would raise (one per quiet spell,
  as the detector does), their rate per 1,000 active customers per month, and so the
  threshold that fits a user's alert budget.
"""

from __future__ import annotations

import bisect
import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from itertools import pairwise

import numpy as np

from churnwatch.customer import CHURN_TYPES, TRANSACTION_TYPES, Customer, event_order, fold
from churnwatch.model.bgnbd import BGNBDParams, summarise_purchases
from churnwatch.model.bgnbd_robust import fit_robust
from churnwatch.model.features import (
    FEATURES,
    STATIC,
    Priors,
    dynamic_features,
    static_features,
)
from churnwatch.model.risk import RiskModel, fit_logistic

THRESHOLDS = (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.99)
DAYS_PER_MONTH = 30.44


@dataclass(frozen=True)
class TrainingConfig:
    """How samples are drawn and labelled; durations in customer days."""

    day_seconds: float = 86400.0
    check_days: float = 7.0
    vanish_days: float = 120.0
    lookback_days: float = 180.0
    max_quiet_days: float = 365.0  # no samples this long after the last transaction
    l2: float = 1.0
    cooldown_days: float = 30.0

    @property
    def day_ms(self) -> float:
        return self.day_seconds * 1000.0


@dataclass
class History:
    """One customer's events in order, and what the history tells about them."""

    rows: list[dict]
    tx_ms: list[int]
    churn_ms: int | None
    first_seen_ms: int


def histories(events: Iterable[dict]) -> dict[str, History]:
    """Group valid events per customer, in the one event order every replay uses."""
    by_customer: dict[str, list[dict]] = {}
    for row in sorted(events, key=event_order):
        by_customer.setdefault(row["customer_id"], []).append(row)
    out = {}
    for cid, rows in by_customer.items():
        tx = sorted({r["occurred_at"] for r in rows if r.get("type") in TRANSACTION_TYPES})
        churn = [r["occurred_at"] for r in rows if r.get("type") in CHURN_TYPES]
        out[cid] = History(rows, tx, min(churn) if churn else None, rows[0]["occurred_at"])
    return out


def label(h: History, t: int, observed_until: int, vanish_ms: float) -> int | None:
    """Did the customer come back after ``t``, as far as the history up to
    ``observed_until`` tells? 0 came back, 1 left, None unknown."""
    i = bisect.bisect_right(h.tx_ms, t)
    if i < len(h.tx_ms) and h.tx_ms[i] <= observed_until:
        return 0
    if h.churn_ms is not None and t < h.churn_ms <= observed_until:
        return 1
    last = h.tx_ms[i - 1] if i else h.first_seen_ms
    if observed_until - last >= vanish_ms:
        return 1
    return None


def _eligible(c: Customer, t: int, cfg: TrainingConfig) -> bool:
    """On the books, silent, with a first transaction, and not gone for ages."""
    if c.first_ms is None or c.churned_ms is not None or t < c.first_ms:
        return False
    if c.last_negative_ms is not None and t - c.last_negative_ms <= cfg.lookback_days * cfg.day_ms:
        return False
    return t - (c.last_purchase_ms or c.first_ms) <= cfg.max_quiet_days * cfg.day_ms


def samples(
    hist: dict[str, History],
    priors: Priors,
    bgnbd: BGNBDParams,
    cfg: TrainingConfig,
    from_ms: int,
    to_ms: int,
    observed_until: int,
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, int]]]:
    """Feature rows, labels and (customer, time) of every labelled check in [from, to)."""
    day_ms, step = cfg.day_ms, cfg.check_days * cfg.day_ms
    xs: list[list[float]] = []
    ys: list[int] = []
    keys: list[tuple[str, int]] = []
    vanish = cfg.vanish_days * day_ms
    for cid, h in hist.items():
        c = Customer()
        rows = h.rows
        i = 0
        t = from_ms + (zlib.crc32(cid.encode()) % 97) / 97 * step  # stagger the checks
        while t < to_ms:
            while i < len(rows) and rows[i]["occurred_at"] <= t:
                fold(c, rows[i], day_ms)
                i += 1
            tt = int(t)
            if _eligible(c, tt, cfg):
                y = label(h, tt, observed_until, vanish)
                if y is not None:
                    last = max(c.last_activity_ms, c.last_purchase_ms or 0)
                    xs.append(
                        static_features(c, last, day_ms, priors)
                        + dynamic_features(c, tt, day_ms, priors, bgnbd)
                    )
                    ys.append(y)
                    keys.append((cid, tt))
            t += step
    x = np.asarray(xs, float).reshape(-1, len(FEATURES))
    return x, np.asarray(ys, int), keys


def population_priors(hist: dict[str, History], until_ms: int, cfg: TrainingConfig) -> Priors:
    """The population's purchase rhythm (mean and sd of log(1 + gap)) before ``until_ms``."""
    logs: list[float] = []
    for h in hist.values():
        tx = [t for t in h.tx_ms if t <= until_ms]
        logs += [math.log1p((b - a) / cfg.day_ms) for a, b in pairwise(tx)]
    if len(logs) < 10:
        return Priors(lookback_days=cfg.lookback_days)
    arr = np.asarray(logs)
    return Priors(float(arr.mean()), float(max(arr.std(), 0.1)), cfg.lookback_days)


def fit_bgnbd(hist: dict[str, History], until_ms: int, cfg: TrainingConfig):
    """BG/NBD on the transactions before ``until_ms`` (robust: see ``bgnbd_robust``)."""
    purchases = {
        cid: [t / cfg.day_ms for t in h.tx_ms if t <= until_ms]
        for cid, h in hist.items()
        if h.tx_ms and h.tx_ms[0] <= until_ms
    }
    x, t_x, big_t = summarise_purchases(purchases, until_ms / cfg.day_ms)
    return fit_robust(x, t_x, big_t, time_unit_days=1.0)


@dataclass
class FitResult:
    model: RiskModel
    bgnbd_note: str
    train_samples: int
    holdout_samples: int
    holdout_auc: float | None
    holdout_base_rate: float | None
    calibration: list[tuple[float, float, int]]  # (mean predicted, observed rate, n)


MIN_LEAVERS = 20  # labelled "left" samples the model needs to learn anything


def _check_labels(y: np.ndarray, where: str) -> None:
    left, stayed = int(y.sum()), int(len(y) - y.sum())
    if left < MIN_LEAVERS or stayed < MIN_LEAVERS:
        raise ValueError(
            f"{where}: {left} labelled checks of customers who left and {stayed} of customers "
            f"who came back; at least {MIN_LEAVERS} of each are needed to learn from. Fit on a "
            "longer history (leavers are known by a cancellation or by vanish_days of silence)"
        )


@dataclass(frozen=True)
class SampleSet:
    """Training and holdout samples of a history, split in time."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_holdout: np.ndarray
    y_holdout: np.ndarray
    keys_holdout: list[tuple[str, int]]  # (customer, check time) of each holdout row


def split_samples(
    hist: dict[str, History], cfg: TrainingConfig, split: float
) -> tuple[SampleSet, Priors, BGNBDParams, str, int, int]:
    """Samples before the split (labels observed up to it) and after it (labels observed
    up to the end), with the priors and BG/NBD fitted on the part before the split."""
    if not hist:
        raise ValueError("no events to fit on")
    start = min(h.first_seen_ms for h in hist.values())
    end = max(h.rows[-1]["occurred_at"] for h in hist.values())
    split_ms = int(start + split * (end - start))
    priors = population_priors(hist, split_ms, cfg)
    bg, note = fit_bgnbd(hist, split_ms, cfg)
    warm = start + cfg.check_days * cfg.day_ms
    x_tr, y_tr, _ = samples(hist, priors, bg, cfg, warm, split_ms, split_ms)
    x_ho, y_ho, keys = samples(hist, priors, bg, cfg, split_ms, end, end)
    return SampleSet(x_tr, y_tr, x_ho, y_ho, keys), priors, bg, note, start, end


def fit_risk_model(
    events: Iterable[dict],
    cfg: TrainingConfig = TrainingConfig(),
    split: float = 0.6,
    refit_on_all: bool = True,
) -> FitResult:
    """Fit on the history before the split, judge on the rest, then (by default) refit on
    everything observed and measure the budget table on the whole history.

    Raises ValueError, saying what is missing, when the history holds too few customers
    who left (or stayed) to learn from.
    """
    from churnwatch.model.risk import roc_auc

    hist = histories(events)
    sets, priors, bg, note, start, end = split_samples(hist, cfg, split)
    x_tr, y_tr, x_ho, y_ho = sets.x_train, sets.y_train, sets.x_holdout, sets.y_holdout
    _check_labels(y_tr, f"the first {split:.0%} of the history")
    warm = start + cfg.check_days * cfg.day_ms
    coefs, b0, means, scales = fit_logistic(x_tr, y_tr, cfg.l2)
    model = RiskModel(tuple(coefs), b0, tuple(means), tuple(scales), bg, priors)
    auc = base = None
    calibration: list[tuple[float, float, int]] = []
    if len(y_ho):
        p = _predict(model, x_ho)
        auc = roc_auc(p, y_ho) if len(set(y_ho.tolist())) == 2 else None
        base = float(y_ho.mean())
        calibration = _calibration(p, y_ho)
    if refit_on_all:
        priors = population_priors(hist, end, cfg)
        bg, note = fit_bgnbd(hist, end, cfg)
        x_all, y_all, _ = samples(hist, priors, bg, cfg, warm, end, end)
        coefs, b0, means, scales = fit_logistic(x_all, y_all, cfg.l2)
        model = RiskModel(tuple(coefs), b0, tuple(means), tuple(scales), bg, priors)
    table = budget_table(model, hist, cfg, start, end)
    model = replace(
        model,
        budget_table=table,
        trained_on={
            "customers": len(hist),
            "days": round((end - start) / cfg.day_ms, 1),
            "train_samples": len(y_tr),
            "holdout_samples": len(y_ho),
            "holdout_auc": None if auc is None else round(auc, 4),
        },
    )
    return FitResult(model, note, len(y_tr), len(y_ho), auc, base, calibration)


def _predict(model: RiskModel, x: np.ndarray) -> np.ndarray:
    z = (x - np.asarray(model.means)) / np.asarray(model.scales)
    return 1 / (1 + np.exp(-(model.intercept + z @ np.asarray(model.coefs))))


def _calibration(p: np.ndarray, y: np.ndarray, bins: int = 5) -> list[tuple[float, float, int]]:
    edges = np.quantile(p, np.linspace(0, 1, bins + 1))
    out = []
    for lo, hi in pairwise(edges):
        m = (p >= lo) & (p <= hi)
        if m.any():
            out.append((float(p[m].mean()), float(y[m].mean()), int(m.sum())))
    return out


# --- traces: risk per customer per day ---------------------------------------------
@dataclass
class Trace:
    """One customer's risk on the day grid, with the quiet spell each day belongs to."""

    customer_id: str
    times: np.ndarray  # ms
    logit: np.ndarray
    spell: np.ndarray  # last transaction time (the episode) per grid day
    eligible: np.ndarray  # bool: on the books and silent


def traces(
    model: RiskModel, hist: dict[str, History], cfg: TrainingConfig, from_ms: int, to_ms: int
) -> list[Trace]:
    """Every customer's risk on a daily grid in [from, to), vectorised between events."""
    day_ms = cfg.day_ms
    grid = np.arange(from_ms, to_ms, day_ms).astype(np.int64)
    k = len(STATIC)
    coefs, means, scales = map(np.asarray, (model.coefs, model.means, model.scales))
    out = []
    lookback = cfg.lookback_days * day_ms
    for cid, h in hist.items():
        c = Customer()
        logit = np.full(len(grid), -np.inf)
        spell = np.zeros(len(grid), np.int64)
        eligible = np.zeros(len(grid), bool)
        rows, n = h.rows, len(h.rows)
        bounds = [r["occurred_at"] for r in rows] + [to_ms + 1]
        for i in range(-1, n):
            if i >= 0:
                fold(c, rows[i], day_ms)
            lo = np.searchsorted(
                grid, bounds[i] if i >= 0 else grid[0], "left" if i < 0 else "right"
            )
            hi = np.searchsorted(grid, bounds[i + 1], "right")
            if hi <= lo or c.first_ms is None or c.churned_ms is not None:
                continue
            g = grid[lo:hi]
            last = max(c.last_activity_ms, c.last_purchase_ms or 0)
            s = static_features(c, last, day_ms, model.priors)
            d = dynamic_features(c, g.astype(float), day_ms, model.priors, model.bgnbd)
            z = model.intercept + float(((np.asarray(s) - means[:k]) / scales[:k]) @ coefs[:k])
            for j, v in enumerate(d):
                z = z + coefs[k + j] * (np.asarray(v) - means[k + j]) / scales[k + j]
            logit[lo:hi] = z
            spell[lo:hi] = c.last_purchase_ms or 0
            quiet_ok = g > last
            if c.last_negative_ms is not None:
                quiet_ok &= g - c.last_negative_ms > lookback
            eligible[lo:hi] = quiet_ok & (g >= c.first_ms)
        out.append(Trace(cid, grid, logit, spell, eligible))
    return out


def trace_alerts(trs: list[Trace], threshold: float, cooldown_ms: float) -> list[dict]:
    """The alerts a threshold raises on the traces: first day of each quiet spell whose
    risk reaches it, at least a cooldown after the customer's previous alert."""
    target = math.log(threshold / (1 - threshold))
    alerts = []
    for tr in trs:
        idx = np.nonzero(tr.eligible & (tr.logit >= target))[0]
        if not len(idx):
            continue
        _, first = np.unique(tr.spell[idx], return_index=True)
        last_alert = -math.inf
        for j in sorted(idx[first]):
            at = int(tr.times[j])
            if at - last_alert < cooldown_ms:
                later = idx[
                    (tr.spell[idx] == tr.spell[j]) & (tr.times[idx] >= last_alert + cooldown_ms)
                ]
                if not len(later):
                    continue
                at = int(tr.times[later[0]])
            last_alert = at
            alerts.append(
                {
                    "customer_id": tr.customer_id,
                    "detected_at": at,
                    "alert_id": f"{tr.customer_id}:{tr.spell[j]}",
                }
            )
    return alerts


def active_customer_months(
    hist: dict[str, History], from_ms: int, to_ms: int, day_ms: float
) -> float:
    """Customer-months on the books within [from, to): first seen until cancellation."""
    total = 0.0
    for h in hist.values():
        lo = max(h.first_seen_ms, from_ms)
        hi = min(h.churn_ms if h.churn_ms is not None else to_ms, to_ms)
        if hi > lo:
            total += (hi - lo) / day_ms / DAYS_PER_MONTH
    return total


def budget_table(
    model: RiskModel, hist: dict[str, History], cfg: TrainingConfig, from_ms: int, to_ms: int
) -> tuple[tuple[float, float], ...]:
    """(threshold, AT_RISK alerts per 1,000 active customers per month) on this history."""
    warm = from_ms + 60 * cfg.day_ms  # the first two months know too little to alert on
    if warm >= to_ms:
        warm = from_ms
    trs = traces(model, hist, cfg, int(warm), int(to_ms))
    months = active_customer_months(hist, warm, to_ms, cfg.day_ms)
    table = []
    for th in THRESHOLDS:
        n = len(trace_alerts(trs, th, cfg.cooldown_days * cfg.day_ms))
        table.append((th, round(1000 * n / months, 3) if months else 0.0))
    return tuple(table)
