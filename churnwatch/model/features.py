"""What the risk model sees of a customer at event time ``t``: pure functions of the record.

Features split in two, so the stream can solve "when does the risk cross the threshold?"
cheaply and the evaluation can trace risk over a day grid with numpy:

* **static** features change only when an event arrives (orders, signals, scores);
* **dynamic** features grow with the silence since the last event, computed for a scalar
  ``t`` (the stream) or an array of times (traces in ``churnwatch evaluate`` / ``fit``).

Rhythm is the customer's own: gaps are summarised as log(1 + gap) and shrunk towards the
population's (``Priors``) with two pseudo-gaps, so one early gap does not make a customer
look like a metronome. ``quiet_z`` is how many of the customer's own standard deviations
the current silence lies beyond their usual gap: a metronome that misses two beats scores
high, a bursty buyer's long gap does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from churnwatch.customer import Customer
from churnwatch.model.bgnbd import BGNBDParams

STATIC = (
    "log_purchases",
    "fading_frequency",
    "shrinking_orders",
    "downgraded",
    "revenue_drop",
    "asked_about_leaving",
    "falling_scores",
)
DYNAMIC = (
    "quiet_vs_rhythm",
    "quiet_z",
    "p_alive_logit",
    "disengaged",
    "survey_silence",
)
FEATURES = STATIC + DYNAMIC

#: The words an alert uses for a feature that pushes the risk up (None: never named, it
#: says nothing a support lead can act on). A feature is named only when it is present:
#: a raw value above 0 (P(alive): below one half).
REASONS = {
    "log_purchases": None,
    "fading_frequency": "fading_frequency",
    "shrinking_orders": "shrinking_orders",
    "downgraded": "downgraded",
    "revenue_drop": "revenue_drop",
    "asked_about_leaving": "asked_about_leaving",
    "falling_scores": "falling_scores",
    "quiet_vs_rhythm": "quiet_beyond_own_rhythm",
    "quiet_z": "quiet_beyond_own_rhythm",
    "p_alive_logit": "p_alive_low",
    "disengaged": "disengaged",
    "survey_silence": "stopped_answering_surveys",
}
#: The direction each feature may push the risk, which the fit must respect: silence,
#: fading orders, a downgrade or a question about leaving never make a customer *less*
#: likely to go; more purchases or a higher P(alive) never make them more likely. Each
#: feature is defined so that its direction is known; what a history decides is only how
#: much. Without this, correlated features take opposite signs on one history and
#: extrapolate absurdly on the next (seen: a model fitted on one simulator scored frequent
#: buyers as leavers, and a customer quiet for a year as safe). It also keeps the risk
#: rising with silence, so the deadline is a true first crossing.
SIGNS = {
    "log_purchases": -1,
    "fading_frequency": 1,
    "shrinking_orders": 1,
    "downgraded": 1,
    "revenue_drop": 1,
    "asked_about_leaving": 1,
    "falling_scores": 1,
    "quiet_vs_rhythm": 1,
    "quiet_z": 1,
    "p_alive_logit": -1,
    "disengaged": 1,
    "survey_silence": 1,
}
PRIOR_WEIGHT = 2.0  # pseudo-gaps of the population's rhythm in every customer's own
MAX_SHRINK = math.log(4.0)  # one odd order cannot say more than "a quarter of usual"
LOGIT_CLIP = 12.0


@dataclass(frozen=True)
class Priors:
    """Population rhythm the customer's own is shrunk towards (fitted with the model)."""

    log_gap_mean: float = math.log1p(14.0)
    log_gap_sd: float = 0.8
    lookback_days: float = 180.0


def rhythm(c: Customer, priors: Priors) -> tuple[float, float]:
    """Mean and sd of log(1 + gap), shrunk towards the population's."""
    n, k = c.gap_n, PRIOR_WEIGHT
    mean = (c.gap_log_sum + k * priors.log_gap_mean) / (n + k)
    own_var = max(c.gap_log_sq / n - (c.gap_log_sum / n) ** 2, 0.0) if n else 0.0
    var = (n * own_var + k * priors.log_gap_sd**2) / (n + k)
    return mean, max(math.sqrt(var), 0.05)


def _log_ratio(recent: list[float], need: int = 4) -> float:
    """log(mean of the last two / mean of the earlier ones); 0 with too little history."""
    if len(recent) < need:
        return 0.0
    earlier = sum(recent[:-2]) / (len(recent) - 2)
    last = sum(recent[-2:]) / 2
    if earlier <= 0 or last <= 0:
        return 0.0
    return math.log(last / earlier)


def static_features(c: Customer, at_ms: int, day_ms: float, priors: Priors) -> list[float]:
    """Features fixed between events, evaluated at the customer's last event ``at_ms``."""
    lookback = priors.lookback_days * day_ms
    recent = lambda t: 1.0 if t is not None and at_ms - t <= lookback else 0.0  # noqa: E731
    drop = 0.0
    if c.peak_monthly_revenue > 0 and 0 < c.monthly_revenue < c.peak_monthly_revenue:
        drop = math.log(c.peak_monthly_revenue / c.monthly_revenue)
    fall = 0.0
    if c.prev_nps is not None and c.last_nps is not None:
        fall = max(0.0, (c.prev_nps - c.last_nps) / 10.0)
    return [
        math.log1p(c.repeat_purchases),
        max(0.0, _log_ratio(c.gaps_days)),  # gaps growing
        min(max(0.0, -_log_ratio(c.amounts)), MAX_SHRINK),  # orders shrinking
        recent(c.downgraded_ms),
        drop,
        recent(c.asked_about_leaving_ms),
        fall,
    ]


def dynamic_features(
    c: Customer, t, day_ms: float, priors: Priors, bgnbd: BGNBDParams
) -> list[np.ndarray | float]:
    """Features that grow with silence, at time(s) ``t`` (ms; scalar or numpy array)."""
    arr = isinstance(t, np.ndarray)
    log = np.log if arr else math.log
    log1p = np.log1p if arr else math.log1p
    last_tx = c.last_purchase_ms if c.last_purchase_ms is not None else c.last_activity_ms
    quiet = _clip0((t - last_tx) / day_ms, arr)
    mean, sd = rhythm(c, priors)
    log_quiet = log1p(quiet)
    quiet_vs_rhythm = log_quiet - mean
    quiet_z = quiet_vs_rhythm / sd
    # BG/NBD: logit P(alive) = log((b + x - 1) / a) - (r + x) log((alpha + T) / (alpha + t_x))
    x = c.repeat_purchases
    if x > 0 and c.first_ms is not None:
        unit = bgnbd.time_unit_days * day_ms
        t_x = (c.last_purchase_ms - c.first_ms) / unit
        age = _max(t_x, (t - c.first_ms) / unit, arr)
        alive = math.log((bgnbd.b + x - 1) / bgnbd.a) - (bgnbd.r + x) * log(
            (bgnbd.alpha + age) / (bgnbd.alpha + t_x)
        )
        alive = np.clip(alive, -LOGIT_CLIP, LOGIT_CLIP) if arr else _clamp(alive)
    else:
        alive = np.full(np.shape(t), LOGIT_CLIP) if arr else LOGIT_CLIP
    disengaged = log1p(_clip0((t - c.last_activity_ms) / day_ms, arr))
    if c.feedback_n >= 2:
        span = (c.last_feedback_ms - c.first_feedback_ms) / day_ms
        usual = span / (c.feedback_n - 1)
        since = _clip0((t - c.last_feedback_ms) / day_ms, arr)
        survey_silence = log1p(since) - math.log1p(usual)
    else:
        survey_silence = np.zeros(np.shape(t)) if arr else 0.0
    return [quiet_vs_rhythm, quiet_z, alive, disengaged, survey_silence]


def _clip0(v, arr: bool):
    return np.maximum(v, 0.0) if arr else max(v, 0.0)


def _max(a: float, v, arr: bool):
    return np.maximum(v, a) if arr else max(v, a)


def _clamp(v: float) -> float:
    return max(-LOGIT_CLIP, min(LOGIT_CLIP, v))
