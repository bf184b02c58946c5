"""The churn risk model: a small, calibrated logistic model over explainable features.

Why logistic regression, fitted here with numpy/scipy rather than a library model: the
detector needs (1) a calibrated probability to rank alerts by expected loss, (2) the
contribution of each feature to name an alert's reasons, (3) a score cheap enough to solve
"when does this customer cross the threshold?" inside a stateful DoFn, and (4) a model
that Dataflow workers load from a few numbers of JSON with no extra dependency.
A discrete-time hazard fitted as a logistic regression over (customer, check time)
samples gives all four; BG/NBD's P(alive) is one of its inputs, not the whole story.

The model file also carries what the detector needs to run on its own: the BG/NBD
parameters it was trained with, the population's purchase rhythm (:class:`Priors`), and a
table threshold -> alerts per 1,000 active customers per month measured on the fitting
history, so a user states capacity (an alert budget) and the threshold follows from data.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy import optimize

from churnwatch.customer import Customer
from churnwatch.model.bgnbd import BGNBDParams
from churnwatch.model.features import (
    DYNAMIC,
    FEATURES,
    LOGIT_CLIP,
    REASONS,
    SIGNS,
    STATIC,
    Priors,
    dynamic_features,
    rhythm,
    static_features,
)

MODEL_KIND = "churnwatch-risk"


@dataclass(frozen=True)
class RiskModel:
    """Standardised logistic regression + what the detector needs to run with it."""

    coefs: tuple[float, ...]
    intercept: float
    means: tuple[float, ...]
    scales: tuple[float, ...]
    bgnbd: BGNBDParams
    priors: Priors = field(default_factory=Priors)
    # (threshold on the risk, alerts per 1,000 active customers per month) on the history
    budget_table: tuple[tuple[float, float], ...] = ()
    features: tuple[str, ...] = FEATURES
    trained_on: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        n = len(self.features)
        if tuple(self.features) != FEATURES:
            raise ValueError(
                f"risk model features {list(self.features)} do not match this version's "
                f"{list(FEATURES)}: refit it with `churnwatch fit`"
            )
        if not (len(self.coefs) == len(self.means) == len(self.scales) == n):
            raise ValueError("risk model: coefs, means and scales must have one value a feature")
        values = (*self.coefs, *self.means, *self.scales, self.intercept)
        if not all(math.isfinite(v) for v in values) or min(self.scales) <= 0:
            raise ValueError("risk model: coefficients must be finite and scales positive")

    # --- identity and files --------------------------------------------------------
    @property
    def version(self) -> str:
        """Content hash: every alert records the model that raised it."""
        core = json.dumps(
            [self.coefs, self.intercept, self.means, self.scales, self.bgnbd.version],
            default=float,
        )
        return "risk-" + hashlib.sha256(core.encode()).hexdigest()[:10]

    def to_json(self) -> str:
        doc = asdict(self)
        doc["bgnbd"] = json.loads(self.bgnbd.to_json())
        doc["kind"], doc["version"] = MODEL_KIND, self.version
        return json.dumps(doc, indent=2)

    @classmethod
    def from_json(cls, text: str) -> RiskModel:
        doc = json.loads(text)
        if doc.pop("kind", None) != MODEL_KIND:
            raise ValueError(
                "not a churnwatch risk model (BG/NBD parameters alone are not enough for the "
                "detector): write one with `churnwatch fit --warehouse ...`"
            )
        doc.pop("version", None)
        bg = dict(doc.pop("bgnbd"))
        bg.pop("version", None)
        return cls(
            coefs=tuple(doc.pop("coefs")),
            means=tuple(doc.pop("means")),
            scales=tuple(doc.pop("scales")),
            intercept=float(doc.pop("intercept")),
            bgnbd=BGNBDParams(**bg),
            priors=Priors(**doc.pop("priors")),
            budget_table=tuple(tuple(row) for row in doc.pop("budget_table")),
            features=tuple(doc.pop("features")),
            trained_on=doc.pop("trained_on", {}),
        )

    @classmethod
    def load(cls, path: str | Path) -> RiskModel:
        return cls.from_json(Path(path).read_text())

    # --- scoring -------------------------------------------------------------------
    def static_logit(self, c: Customer, at_ms: int, day_ms: float) -> float:
        """Intercept + the static features' part of the logit (fixed until the next event)."""
        total = self.intercept
        for i, v in enumerate(static_features(c, at_ms, day_ms, self.priors)):
            total += self.coefs[i] * (v - self.means[i]) / self.scales[i]
        return total

    def logit(self, c: Customer, t, day_ms: float, static: float | None = None):
        """Log-odds that the customer will not come back, at time(s) ``t`` (ms)."""
        if static is None:
            static = self.static_logit(c, _last_event_ms(c), day_ms)
        total = static
        k = len(STATIC)
        for j, v in enumerate(dynamic_features(c, t, day_ms, self.priors, self.bgnbd)):
            i = k + j
            total = total + self.coefs[i] * (v - self.means[i]) / self.scales[i]
        return total

    def risk(self, c: Customer, t, day_ms: float):
        return _sigmoid(self.logit(c, t, day_ms))

    def reasons(self, c: Customer, t: int, day_ms: float, top: int = 3) -> list[str]:
        """The features that push this customer's risk up most, in plain words."""
        values = static_features(c, _last_event_ms(c), day_ms, self.priors) + [
            float(v) for v in dynamic_features(c, t, day_ms, self.priors, self.bgnbd)
        ]
        parts = [
            (self.coefs[i] * (v - self.means[i]) / self.scales[i], name)
            for i, (name, v) in enumerate(zip(FEATURES, values, strict=True))
            if REASONS[name] and (v < 0 if name == "p_alive_logit" else v > 0)
        ]
        named: list[str] = []
        for contribution, name in sorted(parts, reverse=True):
            if contribution <= 0 or len(named) >= top:
                break
            if REASONS[name] not in named:
                named.append(REASONS[name])
        return named

    def curve(self, c: Customer, day_ms: float) -> Callable[[float], float]:
        """The logit as a function of time until the next event, constants folded in.

        The same numbers as :meth:`logit` (a test holds them equal), at a few logs a call,
        so the stream can search for the crossing time at every event.
        """
        k = len(STATIC)
        w = [self.coefs[k + j] / self.scales[k + j] for j in range(len(DYNAMIC))]
        base = self.static_logit(c, _last_event_ms(c), day_ms) - sum(
            w[j] * self.means[k + j] for j in range(len(DYNAMIC))
        )
        priors, bg = self.priors, self.bgnbd
        last_tx = c.last_purchase_ms if c.last_purchase_ms is not None else c.last_activity_ms
        mean, sd = rhythm(c, priors)
        w_quiet = w[0] + w[1] / sd  # quiet_vs_rhythm and quiet_z share log1p(quiet)
        base -= (w[0] + w[1] / sd) * mean
        x = c.repeat_purchases
        alive_const: float | None = None
        if x > 0 and c.first_ms is not None:
            unit = bg.time_unit_days * day_ms
            t_x = (c.last_purchase_ms - c.first_ms) / unit
            alive_const = math.log((bg.b + x - 1) / bg.a)
            alive_k = bg.r + x
        else:
            base += w[2] * LOGIT_CLIP
        last_act = c.last_activity_ms
        survey = c.feedback_n >= 2
        if survey:
            usual = (c.last_feedback_ms - c.first_feedback_ms) / day_ms / (c.feedback_n - 1)
            base -= w[4] * math.log1p(usual)
        first = c.first_ms if c.first_ms is not None else c.last_activity_ms
        log1p, log = math.log1p, math.log
        last_feedback = c.last_feedback_ms

        def logit_at(t: float) -> float:
            z = base + w_quiet * log1p(max((t - last_tx) / day_ms, 0.0))
            if alive_const is not None:
                age = max(t_x, (t - first) / unit)
                alive = alive_const - alive_k * log((bg.alpha + age) / (bg.alpha + t_x))
                z += w[2] * max(-LOGIT_CLIP, min(LOGIT_CLIP, alive))
            z += w[3] * log1p(max((t - last_act) / day_ms, 0.0))
            if survey:
                z += w[4] * log1p(max((t - last_feedback) / day_ms, 0.0))
            return z

        return logit_at

    def crossing(
        self, c: Customer, from_ms: int, threshold: float, day_ms: float, max_days: float
    ) -> int | None:
        """First time >= ``from_ms`` at which the risk reaches ``threshold``, if within
        ``max_days``: doubling steps bracket it, regula falsi (Illinois) narrows it to an
        hour of customer time. The risk grows with silence; a non-monotone stretch is
        re-checked when the deadline fires."""
        f = self.curve(c, day_ms)
        target = math.log(threshold / (1 - threshold))
        g = lambda days: f(from_ms + days * day_ms) - target  # noqa: E731
        g_lo = g(0.0)
        if g_lo >= 0:
            return from_ms
        lo, hi = 0.0, 2.0
        while (g_hi := g(hi)) < 0:
            if hi >= max_days:
                return None
            lo, g_lo, hi = hi, g_hi, min(hi * 2, max_days)
        side = 0
        while hi - lo > 1 / 24:
            mid = (lo * g_hi - hi * g_lo) / (g_hi - g_lo)
            mid = min(max(mid, lo + 1 / 96), hi - 1 / 96)
            g_mid = g(mid)
            if g_mid >= 0:
                hi, g_hi = mid, g_mid
                if side == 1:
                    g_lo /= 2
                side = 1
            else:
                lo, g_lo = mid, g_mid
                if side == -1:
                    g_hi /= 2
                side = -1
        return int(from_ms + hi * day_ms)

    # --- budget ----------------------------------------------------------------------
    def threshold_for_budget(self, alerts_per_1000_month: float) -> float:
        """The lowest threshold whose alert rate on the fitting history fits the budget."""
        if not self.budget_table:
            raise ValueError("risk model has no budget table: refit it with `churnwatch fit`")
        fitting = [th for th, rate in self.budget_table if rate <= alerts_per_1000_month]
        return min(fitting) if fitting else max(th for th, _ in self.budget_table)


def _last_event_ms(c: Customer) -> int:
    return max(c.last_activity_ms, c.last_purchase_ms or 0)


def _sigmoid(z):
    if isinstance(z, np.ndarray):
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    l2: float = 1.0,
    weights: np.ndarray | None = None,
    signs: tuple[int, ...] | None = None,
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """L2-penalised logistic regression on standardised features (L-BFGS-B).

    ``signs`` (one per column: +1, -1 or 0 for free) bound coefficients to a sign; by
    default the features' ``SIGNS``. Returns (coefs, intercept, means, scales). Constant
    columns get scale 1 and end with a zero coefficient, so a feature a history never
    shows is simply not used.
    """
    if signs is None and np.shape(x)[1] == len(FEATURES):
        signs = tuple(SIGNS.get(f, 0) for f in FEATURES)
    x, y = np.asarray(x, float), np.asarray(y, float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    means = x.mean(axis=0)
    scales = x.std(axis=0)
    scales[scales < 1e-9] = 1.0
    z = (x - means) / scales
    k = z.shape[1]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        b, beta = theta[0], theta[1:]
        eta = b + z @ beta
        # log(1 + e^eta) - y * eta, stably
        value = np.sum(w * (np.logaddexp(0.0, eta) - y * eta)) + 0.5 * l2 * beta @ beta
        p = 1.0 / (1.0 + np.exp(-eta))
        g = w * (p - y)
        return value, np.concatenate([[g.sum()], z.T @ g + l2 * beta])

    signs = signs or (0,) * k
    bounds = [(None, None)] + [
        (0.0, None) if sg > 0 else (None, 0.0) if sg < 0 else (None, None) for sg in signs
    ]
    result = optimize.minimize(loss, np.zeros(k + 1), jac=True, method="L-BFGS-B", bounds=bounds)
    return result.x[1:], float(result.x[0]), means, scales


def roc_auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve (ties count half), without scikit-learn."""
    score, label = np.asarray(score, float), np.asarray(label, bool)
    pos, neg = label.sum(), (~label).sum()
    if not pos or not neg:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    sorted_scores = score[order]
    i = 0
    while i < len(score):  # average ranks over ties
        j = i
        while j + 1 < len(score) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[label].sum() - pos * (pos + 1) / 2) / (pos * neg))
