"""BG/NBD fits that do not degenerate on histories unlike CDNOW.

On a customer base where nobody drops out after a purchase (hazard-based leaving,
subscriptions, long pauses), the maximum-likelihood dropout parameters run away:
a, b -> 0 or infinity (seen: a = 6e-11, b = 4e-9), and P(alive) becomes 1 for everyone
or a step function. :func:`fit_robust` checks the plain fit and, where it degenerated,
refits with weak log-normal priors centred on the published CDNOW estimates (in the
history's time unit), which keeps the parameters finite and the likelihood nearly as good.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize

from churnwatch.model.bgnbd import BGNBDParams, fit, log_likelihood

#: Fader, Hardie & Lee (2005) on CDNOW, time unit one week.
REFERENCE = {"r": 0.243, "alpha_weeks": 4.414, "a": 0.793, "b": 2.426}
LOG_BOUNDS = (1e-3, 1e3)  # a, b and r outside this are degenerate
PRIOR_SD = 1.5  # in log space: a factor of ~4.5 either way costs one unit of log-likelihood


def degenerate(p: BGNBDParams) -> list[str]:
    """Which parameters ran to a bound (empty when the fit is usable)."""
    lo, hi = LOG_BOUNDS
    bad = [f"{n}={getattr(p, n):.3g}" for n in ("r", "a", "b") if not lo < getattr(p, n) < hi]
    if not 1e-4 < p.alpha < 1e6:
        bad.append(f"alpha={p.alpha:.3g}")
    if p.log_likelihood is None or not math.isfinite(p.log_likelihood):
        bad.append("log-likelihood not finite")
    return bad


def fit_regularised(x, t_x, big_t, time_unit_days: float = 1.0) -> BGNBDParams:
    """Maximum a posteriori with weak log-normal priors around the CDNOW estimates."""
    x, t_x, big_t = (np.asarray(v, float) for v in (x, t_x, big_t))
    centre = np.log(
        [
            REFERENCE["r"],
            REFERENCE["alpha_weeks"] * 7.0 / time_unit_days,
            REFERENCE["a"],
            REFERENCE["b"],
        ]
    )

    def objective(log_params: np.ndarray) -> float:
        ll = np.sum(log_likelihood(tuple(np.exp(log_params)), x, t_x, big_t))
        if not np.isfinite(ll):
            return 1e300
        return -ll + np.sum((log_params - centre) ** 2) / (2 * PRIOR_SD**2)

    result = optimize.minimize(
        objective, centre, method="Nelder-Mead", options={"maxiter": 20000, "xatol": 1e-7}
    )
    r, alpha, a, b = (float(v) for v in np.exp(result.x))
    ll = float(np.sum(log_likelihood((r, alpha, a, b), x, t_x, big_t)))
    return BGNBDParams(r, alpha, a, b, time_unit_days, ll, len(x))


def fit_robust(x, t_x, big_t, time_unit_days: float = 1.0) -> tuple[BGNBDParams, str]:
    """The plain MLE when it is usable, else the regularised fit; and a note saying which."""
    try:
        plain = fit(x, t_x, big_t, time_unit_days=time_unit_days)
        bad = degenerate(plain)
    except ValueError as exc:  # parameters at 0 or infinity do not even construct
        plain, bad = None, [str(exc)]
    if not bad:
        return plain, "maximum likelihood"
    reg = fit_regularised(x, t_x, big_t, time_unit_days)
    return reg, (
        f"plain fit degenerated ({', '.join(bad)}); regularised towards the CDNOW estimates: "
        f"r={reg.r:.3g} alpha={reg.alpha:.3g} a={reg.a:.3g} b={reg.b:.3g}"
    )
