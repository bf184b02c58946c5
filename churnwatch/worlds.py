"""The worlds the detector is judged on, kept apart by role, and one world's report.

=================  ===========================  ==========================================
role               worlds                       what it tells
=================  ===========================  ==========================================
tuning             ours, seed 7                 where features and defaults were chosen
held-out seed      ours, seeds 11 and 23        the same story, data never looked at
held-out generator renewal, seeds 2, 4;          a different story (``renewal_world``)
                   renewal-regular, seed 3       written apart from the first
held-out generator cohorts, seeds 1, 2           subscriptions and contracts
                                                (``world_cohorts``), written by someone
                                                who never saw the detector's code
=================  ===========================  ==========================================

Real data (the CDNOW holdout) is in ``churnwatch.cdnow``.

Each world is run the way a user runs Churnwatch: the risk model is fitted on the first
60% of the history (``churnwatch fit --warehouse``; no ground truth), the detector replays
the whole history, and alerts are counted in the last 40% only. The packaged model
(fitted on the tuning world) is run beside it, and so are the baselines, on the same
events, window and silence filter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from churnwatch.detection import Detector, DetectorConfig
from churnwatch.evaluate import (
    Score,
    Window,
    replay,
    rule_alerts,
    score,
    silent_churn_exact,
)
from churnwatch.model.features import FEATURES
from churnwatch.model.risk import RiskModel, fit_logistic, roc_auc
from churnwatch.model.training import (
    TrainingConfig,
    fit_risk_model,
    histories,
    split_samples,
    trace_alerts,
    traces,
)
from churnwatch.renewal_world import REGULAR, RenewalConfig, simulate_renewal
from churnwatch.routing import RoutingPolicy
from churnwatch.simulate import SimConfig, Simulation, simulate
from churnwatch.world_cohorts import simulate_cohorts

TUNING, HELD_OUT_SEED, HELD_OUT_GENERATOR = "tuning", "held-out seed", "held-out generator"
FIT_SPLIT = 0.6

#: Signal groups whose worth ``evaluate`` measures by leaving them out of the model.
SIGNAL_GROUPS = {
    "orders (fading frequency, shrinking orders)": ("fading_frequency", "shrinking_orders"),
    "lifecycle (downgrade, revenue drop)": ("downgraded", "revenue_drop"),
    "feedback (exit questions, survey silence, scores, engagement)": (
        "asked_about_leaving",
        "survey_silence",
        "falling_scores",
        "disengaged",
    ),
    "BG/NBD P(alive)": ("p_alive_logit",),
    "own rhythm (quiet vs own gaps, regularity)": ("quiet_vs_rhythm", "quiet_z"),
}


@dataclass(frozen=True)
class World:
    name: str
    role: str
    make: Callable[[SimConfig], Simulation]
    seed: int


def _ours(cfg: SimConfig) -> Simulation:
    return simulate(cfg, with_messages=False)


def _renewal(world: RenewalConfig) -> Callable[[SimConfig], Simulation]:
    return lambda cfg: simulate_renewal(cfg, world, with_messages=False)


WORLDS = (
    World("ours-7", TUNING, _ours, 7),
    World("ours-11", HELD_OUT_SEED, _ours, 11),
    World("ours-23", HELD_OUT_SEED, _ours, 23),
    World("renewal-2", HELD_OUT_GENERATOR, _renewal(RenewalConfig()), 2),
    World("renewal-4", HELD_OUT_GENERATOR, _renewal(RenewalConfig()), 4),
    World("renewal-regular-3", HELD_OUT_GENERATOR, _renewal(REGULAR), 3),
    World("cohorts-1", HELD_OUT_GENERATOR, lambda cfg: simulate_cohorts(cfg, False), 1),
    World("cohorts-2", HELD_OUT_GENERATOR, lambda cfg: simulate_cohorts(cfg, False), 2),
)


@dataclass
class Row:
    """One detector or baseline on one world."""

    method: str
    setting: str
    score: Score | None
    note: str = ""


@dataclass
class WorldReport:
    world: str
    role: str
    customers: int
    days: float
    rows: list[Row]
    silent_churn: tuple[int, int, int]  # expected, missing, unexpected
    fit_note: str
    holdout_auc: float | None
    ablation: dict[str, float | None] = field(default_factory=dict)
    curves: dict[str, list[tuple[float, float, float]]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        return d


def _sweep(hist, sim, window, **rule) -> list[tuple[str, Score]]:
    ((name, values),) = rule.items()
    out = []
    for v in values:
        alerts = rule_alerts(hist, **{name: v}, day_ms=window.day_ms)
        out.append((f"{v:g}", score(alerts, sim.truth, hist, window)))
    return out


def _at_equal_recall(sweep: list[tuple[str, Score]], recall: float) -> tuple[str, Score] | None:
    """The setting with the best precision among those that reach ``recall``."""
    reaching = [(s, sc) for s, sc in sweep if sc.recall >= recall and sc.alerts]
    return max(reaching, key=lambda r: r[1].precision) if reaching else None


def _at_equal_volume(sweep: list[tuple[str, Score]], rate: float) -> tuple[str, Score] | None:
    """The setting whose alert rate is closest to ``rate`` without exceeding it by > 10%."""
    under = [(s, sc) for s, sc in sweep if sc.alerts and sc.alerts_per_1000_month <= rate * 1.1]
    return max(under, key=lambda r: r[1].alerts_per_1000_month) if under else None


def run_world(
    world: World,
    packaged: RiskModel,
    customers: int = 1000,
    days: float = 540.0,
    budget: float = 10.0,
    progress: Callable[[str], None] = lambda s: None,
    ablation: bool = True,
) -> WorldReport:
    """Fit, replay, score and compare one world (see the module doc for the protocol)."""
    policy = RoutingPolicy.load()
    sim = world.make(SimConfig(customers=customers, days=days, seed=world.seed, start_ms=0))
    events = sim.events["feedback"] + sim.events["customer"]
    end = int(days * 86400_000)
    split = int(FIT_SPLIT * end)
    window = Window(split, end)
    hist = histories(events)
    rows: list[Row] = []
    progress("fitting on the first 60%")
    past = [e for e in events if e["occurred_at"] < split]
    own_model, fit_note, auc = None, "", None
    try:
        fitted = fit_risk_model(past)
        own_model, fit_note, auc = fitted.model, fitted.bgnbd_note, fitted.holdout_auc
    except ValueError as exc:
        fit_note = f"refused: {exc}"
    detectors = [
        ("Churnwatch, fitted on own history", own_model),
        ("Churnwatch, packaged", packaged),
    ]
    silent = (0, 0, 0)
    curves: dict[str, list[tuple[float, float, float]]] = {}
    for name, model in detectors:
        if model is None:
            rows.append(Row(name, "-", None, fit_note))
            continue
        progress(f"replaying: {name}")
        det = Detector(DetectorConfig(alert_budget=budget), model, policy)
        alerts = replay(det, events, end)
        silent = silent_churn_exact(alerts, sim.truth)
        rows.append(Row(name, f"risk >= {det.threshold:g}", score(alerts, sim.truth, hist, window)))
        trs = traces(model, hist, TrainingConfig(), 0, end)  # alerts before the window count
        curves[name] = [
            _point(score(trace_alerts(trs, th, 30 * 86400_000), sim.truth, hist, window))
            for th in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995)
        ]
    progress("baselines")
    quiet = _sweep(hist, sim, window, quiet_days=range(14, 241, 4))
    gaps = _sweep(hist, sim, window, gap_multiple=[1.5 + 0.5 * i for i in range(30)])
    curves["no purchase in N days"] = [_point(s) for _, s in quiet]
    curves["gap > k x own median"] = [_point(s) for _, s in gaps]
    rows.append(Row("no purchase in 60 days", "N=60", _rule60(hist, sim, window)))
    main = next((r for r in rows if r.score is not None), None)
    if main is not None:
        for label, sweep, unit in (
            ("no purchase in N days", quiet, "N"),
            ("gap > k x own median", gaps, "k"),
        ):
            eq = _at_equal_recall(sweep, main.score.recall)
            rows.append(
                Row(
                    f"{label}, equal recall",
                    f"{unit}={eq[0]}" if eq else "-",
                    eq[1] if eq else None,
                    "" if eq else "never reaches the detector's recall",
                )
            )
            vol = _at_equal_volume(sweep, main.score.alerts_per_1000_month)
            rows.append(
                Row(
                    f"{label}, equal volume",
                    f"{unit}={vol[0]}" if vol else "-",
                    vol[1] if vol else None,
                )
            )
    report = WorldReport(
        world.name, world.role, customers, days, rows, silent, fit_note, auc, curves=curves
    )
    if ablation and own_model is not None:
        progress("measuring what each signal adds")
        report.ablation = signal_ablation(past)
    return report


def _rule60(hist, sim, window) -> Score:
    return score(rule_alerts(hist, quiet_days=60, day_ms=window.day_ms), sim.truth, hist, window)


def _point(s: Score) -> tuple[float, float, float]:
    return (round(s.recall, 4), round(s.precision, 4), round(s.alerts_per_1000_month, 3))


def signal_ablation(events: list[dict]) -> dict[str, float | None]:
    """Out-of-time ROC-AUC of the risk model with all signals, and without each group."""
    cfg = TrainingConfig()
    sets, *_ = split_samples(histories(events), cfg, FIT_SPLIT)
    out: dict[str, float | None] = {}
    if len(set(sets.y_holdout.tolist())) < 2:
        return out
    for name, drop in {"all signals": (), **SIGNAL_GROUPS}.items():
        cols = [FEATURES.index(f) for f in drop]
        x_tr, x_ho = sets.x_train.copy(), sets.x_holdout.copy()
        x_tr[:, cols] = 0.0
        x_ho[:, cols] = 0.0
        coefs, b0, means, scales = fit_logistic(x_tr, sets.y_train, cfg.l2)
        z = (x_ho - means) / scales
        out[name] = round(roc_auc(b0 + z @ coefs, sets.y_holdout), 4)
    return out
