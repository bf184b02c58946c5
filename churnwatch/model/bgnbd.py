"""BG/NBD (Fader, Hardie & Lee 2005) with numpy/scipy: fit, P(alive), expected purchases.

A customer is summarised by ``x`` (repeat purchases), ``t_x`` (time of the last purchase
since the first) and ``T`` (time since the first purchase), all in the model's time unit.
While alive, a customer buys at Poisson rate lambda ~ Gamma(r, alpha); after each purchase
they drop out with probability p ~ Beta(a, b). ``lifetimes`` implements the same model but
is unmaintained and breaks on pandas 3, hence this module.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import optimize, special


@dataclass(frozen=True)
class BGNBDParams:
    r: float
    alpha: float
    a: float
    b: float
    time_unit_days: float = 1.0  # one model time unit in customer days (CDNOW: 7)
    log_likelihood: float | None = None
    customers: int | None = None

    def __post_init__(self) -> None:
        for name in ("r", "alpha", "a", "b", "time_unit_days"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"BG/NBD parameter {name} must be positive, got {value}")

    @property
    def version(self) -> str:
        """Content hash of the parameters: alerts record which model raised them."""
        core = f"{self.r:.6g}:{self.alpha:.6g}:{self.a:.6g}:{self.b:.6g}:{self.time_unit_days:g}"
        return "bgnbd-" + hashlib.sha256(core.encode()).hexdigest()[:10]

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "version": self.version}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> BGNBDParams:
        doc = json.loads(text)
        doc.pop("version", None)
        return cls(**doc)

    @classmethod
    def load(cls, path: str | Path) -> BGNBDParams:
        return cls.from_json(Path(path).read_text())


def log_likelihood(params: tuple[float, float, float, float], x, t_x, T) -> np.ndarray:
    """Per-customer log-likelihood (FHL 2005, eq. 6), computed in log space."""
    r, alpha, a, b = params
    x, t_x, T = np.asarray(x, float), np.asarray(t_x, float), np.asarray(T, float)
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = (
        special.gammaln(a + b)
        + special.gammaln(b + x)
        - special.gammaln(b)
        - special.gammaln(a + b + x)
    )
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return a1 + a2 + np.logaddexp(a3, a4)


def fit(x, t_x, T, time_unit_days: float = 1.0, initial=(1.0, 1.0, 1.0, 1.0)) -> BGNBDParams:
    """Maximum likelihood by Nelder-Mead on log-parameters (keeps them positive)."""
    x, t_x, T = np.asarray(x, float), np.asarray(t_x, float), np.asarray(T, float)
    if not (len(x) == len(t_x) == len(T)) or len(x) == 0:
        raise ValueError("x, t_x and T must be non-empty and of equal length")
    if np.any(t_x > T) or np.any(x < 0) or np.any(t_x < 0):
        raise ValueError("need 0 <= t_x <= T and x >= 0 for every customer")

    def negative_ll(log_params: np.ndarray) -> float:
        value = -np.sum(log_likelihood(tuple(np.exp(log_params)), x, t_x, T))
        return value if np.isfinite(value) else 1e300

    result = optimize.minimize(
        negative_ll,
        np.log(np.asarray(initial, float)),
        method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-8, "maxiter": 20000, "maxfev": 40000},
    )
    r, alpha, a, b = (float(v) for v in np.exp(result.x))
    return BGNBDParams(r, alpha, a, b, time_unit_days, -float(result.fun), len(x))


def p_alive(p: BGNBDParams, x: float, t_x: float, T: float) -> float:
    """P(still active | x, t_x, T); 1.0 for customers without repeat purchases (model)."""
    if x <= 0:
        return 1.0
    ratio = (p.alpha + T) / (p.alpha + t_x)
    return 1.0 / (1.0 + p.a / (p.b + x - 1) * ratio ** (p.r + x))


def expected_purchases(p: BGNBDParams, t: float, x: float, t_x: float, T: float) -> float:
    """E[X(t) | x, t_x, T]: expected purchases in the next ``t`` time units (FHL eq. 10)."""
    r, alpha, a, b = p.r, p.alpha, p.a, p.b
    z = t / (alpha + T + t)
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
    head = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    return float(head * p_alive(p, x, t_x, T))


def alive_crossing_time(p: BGNBDParams, x: float, t_x: float, theta: float) -> float | None:
    """The age T at which P(alive) falls to ``theta``, in closed form; None when x == 0.

    Solves 1 / [1 + a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x)] = theta for T:
    T = (alpha + t_x) * [(1/theta - 1) * (b+x-1) / a]^(1/(r+x)) - alpha.
    P(alive) only falls while nothing happens, so the crossing is a deadline that new
    activity moves.
    """
    if x <= 0:
        return None
    if not 0 < theta < 1:
        raise ValueError("theta must be within (0, 1)")
    base = (1 / theta - 1) * (p.b + x - 1) / p.a
    return max(t_x, (p.alpha + t_x) * base ** (1 / (p.r + x)) - p.alpha)


def summarise_purchases(
    purchase_days: dict[str, list[float]], observed_until_day: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-customer (x, t_x, T) from purchase times in days (same day counts once)."""
    xs, txs, ts = [], [], []
    for days in purchase_days.values():
        distinct = sorted(set(round(d, 6) for d in days))
        if not distinct:
            continue
        first = distinct[0]
        xs.append(len(distinct) - 1)
        txs.append(distinct[-1] - first)
        ts.append(max(observed_until_day - first, distinct[-1] - first))
    return np.asarray(xs, float), np.asarray(txs, float), np.asarray(ts, float)
