"""BG/NBD against the published CDNOW estimates (Fader, Hardie & Lee 2005)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from churnwatch.model.bgnbd import (
    BGNBDParams,
    alive_crossing_time,
    expected_purchases,
    fit,
    p_alive,
    summarise_purchases,
)

CDNOW = Path(__file__).resolve().parents[1] / "data" / "cdnow"
PUBLISHED = BGNBDParams(r=0.243, alpha=4.414, a=0.793, b=2.426, time_unit_days=7)


def cdnow_summary():
    with open(CDNOW / "cdnow_customers_summary.csv") as fo:
        rows = list(csv.DictReader(fo))
    return tuple(np.array([float(r[k]) for r in rows]) for k in ("frequency", "recency", "T"))


@pytest.fixture(scope="module")
def fitted() -> BGNBDParams:
    return fit(*cdnow_summary(), time_unit_days=7)


def test_fit_reproduces_the_published_cdnow_estimates(fitted):
    assert fitted.customers == 2357
    for name in ("r", "alpha", "a", "b"):
        assert getattr(fitted, name) == pytest.approx(getattr(PUBLISHED, name), rel=0.005), name
    assert fitted.log_likelihood == pytest.approx(-9582.4, abs=0.5)


def test_conditional_expectations_for_the_papers_example_customer():
    # FHL 2005: x=2, t_x=30.43, T=38.86 weeks
    assert p_alive(PUBLISHED, 2, 30.43, 38.86) == pytest.approx(0.7266, abs=0.001)
    assert expected_purchases(PUBLISHED, 39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=0.001)


def test_crossing_time_is_where_p_alive_hits_theta():
    for x, t_x, theta in [(2, 30.43, 0.5), (5, 10.0, 0.3), (1, 0.5, 0.7)]:
        T = alive_crossing_time(PUBLISHED, x, t_x, theta)
        assert p_alive(PUBLISHED, x, t_x, T) == pytest.approx(theta, abs=1e-9)
        assert p_alive(PUBLISHED, x, t_x, T * 0.9) > theta  # falls monotonically with age


def test_a_customer_already_below_theta_is_due_at_once():
    # x=1 right after the purchase: P(alive) = 1 / (1 + a/b) = 0.754 < 0.8
    assert alive_crossing_time(PUBLISHED, 1, 0.5, 0.8) == 0.5


def test_no_repeat_purchases_has_no_crossing_and_is_alive_by_the_model():
    assert alive_crossing_time(PUBLISHED, 0, 0, 0.5) is None
    assert p_alive(PUBLISHED, 0, 0, 100) == 1.0


def test_transactions_file_agrees_with_the_summary():
    """CDNOW_sample.txt rebuilt into (x, t_x, T) matches the summary (calibration: 39 weeks)."""
    import datetime as dt

    start = dt.date(1997, 1, 1)
    purchases: dict[str, list[float]] = {}
    with open(CDNOW / "CDNOW_sample.txt") as fo:
        for line in fo:
            customer, _, date, *_ = line.split()
            day = (dt.date(int(date[:4]), int(date[4:6]), int(date[6:])) - start).days
            if day < 273:  # calibration: the first 39 weeks
                purchases.setdefault(customer, []).append(day)
    x, _t_x, _T = summarise_purchases(purchases, observed_until_day=273)
    sx, _, _ = cdnow_summary()
    assert len(x) == 2357
    assert sorted(x) == sorted(sx)


def test_params_round_trip_with_a_stable_version(tmp_path):
    path = tmp_path / "params.json"
    path.write_text(PUBLISHED.to_json())
    loaded = BGNBDParams.load(path)
    assert loaded == PUBLISHED
    assert loaded.version == PUBLISHED.version
    assert BGNBDParams(0.25, 4.414, 0.793, 2.426, 7).version != PUBLISHED.version


def test_invalid_params_are_refused():
    with pytest.raises(ValueError, match="alpha"):
        BGNBDParams(0.2, -1.0, 0.8, 2.4)
