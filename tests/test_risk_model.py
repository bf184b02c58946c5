"""The risk model: features, the fast curve, crossings, fitting, robust BG/NBD, files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from churnwatch.customer import Customer, fold
from churnwatch.model.bgnbd import BGNBDParams
from churnwatch.model.bgnbd_robust import degenerate, fit_robust
from churnwatch.model.features import FEATURES, SIGNS
from churnwatch.model.packaged import load_model
from churnwatch.model.risk import RiskModel, fit_logistic, roc_auc
from churnwatch.model.training import (
    TrainingConfig,
    fit_risk_model,
    histories,
    label,
    trace_alerts,
    traces,
)
from churnwatch.renewal_world import simulate_renewal
from churnwatch.simulate import SimConfig

DAY = 86_400_000.0


@pytest.fixture(scope="module")
def world():
    sim = simulate_renewal(
        SimConfig(customers=400, days=540, seed=9, start_ms=0), with_messages=False
    )
    return sim, sim.events["feedback"] + sim.events["customer"]


@pytest.fixture(scope="module")
def fitted(world):
    return fit_risk_model(world[1])


def replayed(events, limit=60):
    """(customer, time of each event) states of the first ``limit`` customers."""
    for h in list(histories(events).values())[:limit]:
        c = Customer()
        for row in h.rows:
            fold(c, row, DAY)
            if c.first_ms is not None:
                yield c, row["occurred_at"]


def test_the_fast_curve_is_the_models_logit(world, fitted):
    m, checked = fitted.model, 0
    for c, t in replayed(world[1]):
        f = m.curve(c, DAY)
        for days in (0.0, 0.3, 5, 40, 300):
            assert f(t + days * DAY) == pytest.approx(m.logit(c, t + days * DAY, DAY), abs=1e-9)
            checked += 1
    assert checked > 1000


def test_the_crossing_is_the_first_time_the_risk_reaches_the_threshold(world, fitted):
    m, crossings = fitted.model, 0
    for c, t in replayed(world[1]):
        due = m.crossing(c, t + 1, 0.6, DAY, max_days=400)
        if due is None:
            assert m.risk(c, t + 400 * DAY, DAY) < 0.6
            continue
        crossings += 1
        assert m.risk(c, due, DAY) >= 0.6 - 1e-9
        if due > t + 1:
            assert m.risk(c, due - DAY / 24, DAY) < 0.6  # within an hour
    assert crossings > 50


def test_risk_never_falls_with_silence(world, fitted):
    """The sign constraints make every silence feature push one way."""
    m = fitted.model
    for i, name in enumerate(FEATURES):
        assert SIGNS.get(name, 0) * m.coefs[i] >= 0, name
    for c, t in replayed(world[1], limit=30):
        risks = [m.risk(c, t + d * DAY, DAY) for d in (1, 10, 30, 90, 200)]
        assert risks == sorted(risks)


def test_fit_is_out_of_time_and_calibrated(fitted):
    assert fitted.train_samples > 1000 and fitted.holdout_samples > 1000
    assert fitted.holdout_auc > 0.75  # judged on check times after the split
    for predicted, observed, n in fitted.calibration:
        assert n > 0 and abs(predicted - observed) < 0.15


def test_budget_table_and_traces_agree(world, fitted):
    m = fitted.model
    rates = [rate for _, rate in m.budget_table]
    assert rates == sorted(rates, reverse=True)  # a higher threshold never alerts more
    trs = traces(m, histories(world[1]), TrainingConfig(), 0, int(540 * DAY))
    low, high = (len(trace_alerts(trs, th, 30 * DAY)) for th in (0.4, 0.9))
    assert low > high > 0
    assert m.threshold_for_budget(rates[0] + 1) == m.budget_table[0][0]


def test_labels_follow_what_the_history_shows():
    h = histories(
        [
            {
                "customer_id": "A",
                "occurred_at": int(d * DAY),
                "type": "PURCHASE",
                "event_id": f"a{d}",
            }
            for d in (0, 10, 20)
        ]
        + [
            {
                "customer_id": "A",
                "occurred_at": int(80 * DAY),
                "type": "CANCELLATION",
                "event_id": "c",
            }
        ]
    )["A"]
    vanish = 120 * DAY
    assert label(h, int(5 * DAY), int(100 * DAY), vanish) == 0  # bought again
    assert label(h, int(25 * DAY), int(100 * DAY), vanish) == 1  # cancelled, never bought
    assert label(h, int(25 * DAY), int(60 * DAY), vanish) is None  # unknown yet: censored
    quiet = histories([{"customer_id": "B", "occurred_at": 0, "type": "PURCHASE", "event_id": "b"}])
    assert label(quiet["B"], int(DAY), int(200 * DAY), vanish) == 1  # vanished


def test_too_short_a_history_is_refused_with_what_is_missing(world):
    early = [e for e in world[1] if e["occurred_at"] < 60 * DAY]
    with pytest.raises(ValueError, match="at least 20 of each"):
        fit_risk_model(early)


def test_logistic_fit_respects_signs_and_recovers_effects():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 3))
    y = (rng.random(4000) < 1 / (1 + np.exp(-(0.5 + 2 * x[:, 0] - 1 * x[:, 1])))).astype(int)
    coefs, _, _, _ = fit_logistic(x, y, l2=0.1, signs=(0, 0, 0))
    assert coefs[0] > 1.5 and coefs[1] < -0.7 and abs(coefs[2]) < 0.2
    bounded, _, _, _ = fit_logistic(x, y, l2=0.1, signs=(0, 1, 0))
    assert bounded[1] == 0.0  # the wrong sign is held at the bound


def test_roc_auc_counts_ties_half():
    assert roc_auc(np.array([1, 2, 3, 4]), np.array([0, 0, 1, 1])) == 1.0
    assert roc_auc(np.array([1, 1, 1, 1]), np.array([0, 1, 0, 1])) == 0.5
    assert roc_auc(np.array([4, 3, 2, 1]), np.array([0, 0, 1, 1])) == 0.0


def test_degenerate_bgnbd_is_regularised():
    """Regular buyers who never drop out: the plain fit runs a, b to a bound."""
    rng = np.random.default_rng(3)
    n = 400
    big_t = np.full(n, 52.0)
    x = rng.poisson(20, n).astype(float)
    t_x = np.minimum(big_t, 50 + rng.random(n) * 2)
    params, note = fit_robust(x, t_x, big_t, time_unit_days=7)
    assert "regularised" in note
    assert not degenerate(params)
    assert all(math.isfinite(getattr(params, k)) for k in ("r", "alpha", "a", "b"))
    cdnow = BGNBDParams(0.243, 4.414, 0.793, 2.426, 7, -9582.4, 2357)
    assert not degenerate(cdnow)


def test_model_files_round_trip_and_refuse_what_they_are_not(tmp_path, fitted):
    m = fitted.model
    path = tmp_path / "model.json"
    path.write_text(m.to_json())
    again = load_model(path)
    assert again.version == m.version and again.budget_table == m.budget_table
    bgnbd_only = tmp_path / "bgnbd.json"
    bgnbd_only.write_text(m.bgnbd.to_json())
    with pytest.raises(ValueError, match="fit --warehouse"):
        load_model(bgnbd_only)
    doc = json.loads(m.to_json())
    doc["features"] = doc["features"][:-1]
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="refit"):
        load_model(stale)
    assert load_model().version.startswith("risk-")  # the packaged one loads


def test_reasons_name_only_signals_that_are_present():
    n = len(FEATURES)
    w = dict.fromkeys(FEATURES, 0.0) | {"downgraded": 2.0, "survey_silence": 1.0}
    m = RiskModel(
        tuple(w[f] for f in FEATURES),
        -3.0,
        (0.2,) * n,  # means above 0: a 0 would still "contribute" against them
        (1.0,) * n,
        BGNBDParams(0.243, 4.414, 0.793, 2.426, 7),
    )
    c = Customer()
    fold(c, {"occurred_at": 0, "type": "PURCHASE", "customer_id": "C"}, DAY)
    assert m.reasons(c, int(30 * DAY), DAY) == []  # no downgrade, no survey history
    fold(c, {"occurred_at": int(DAY), "type": "DOWNGRADE", "customer_id": "C"}, DAY)
    assert m.reasons(c, int(30 * DAY), DAY) == ["downgraded"]
