"""Production scores from alert outcomes: the pure rule, then `churnwatch alerts stats`."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from churnwatch.cli import main
from churnwatch.outcomes import ALL, production_scores, render_scores, score_outcomes
from churnwatch.warehouse.alert_events import AlertLedger
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from tests.test_views_samples import fill_sample

T0 = datetime(2026, 6, 1, 9, 0)


def row(state, revenue=100.0, acted_after=None, owner="am", kind="AT_RISK_SILENT"):
    return {
        "owner": owner,
        "alert_type": kind,
        "state": state,
        "revenue_at_risk": revenue,
        "processed_at": T0,
        "first_action_at": None if acted_after is None else T0 + timedelta(seconds=acted_after),
    }


def test_scores_follow_the_label_table():
    rows = [
        row("SAVED", 1000, acted_after=60),  # real, saved
        row("RECOVERED", 500, acted_after=180),  # owner acted, customer back: saved
        row("LOST", 300, acted_after=600),  # real, not saved
        row("LOST", 200),  # lost from the data, nobody acted
        row("NOT_A_RISK", 50, acted_after=30),  # false alarm
        row("RECOVERED", 70),  # back on their own: false alarm
        row("OPEN", 999),  # unlabelled
        row("ACKNOWLEDGED", 10, acted_after=120),  # unlabelled, but acted on
    ]
    (score,) = score_outcomes(rows)
    assert (score.raised, score.labelled, score.real_risks) == (8, 6, 4)
    assert (score.saved, score.lost, score.false_alarms) == (2, 2, 2)
    assert score.precision == pytest.approx(4 / 6)
    assert score.save_rate == pytest.approx(2 / 4)
    assert score.revenue_saved == 1500.0
    # First actions after 30, 60, 120, 180, 600 s -> median 120 s.
    assert (score.acted_on, score.median_seconds_to_first_action) == (5, 120.0)


def test_groups_and_a_total_row():
    rows = [row("SAVED", owner="am", acted_after=10), row("NOT_A_RISK", owner="fa", acted_after=5)]
    scores = score_outcomes(rows)
    assert [(s.owner, s.precision) for s in scores] == [("am", 1.0), ("fa", 0.0), (ALL, 0.5)]
    assert score_outcomes([row("OPEN")])[0].precision is None  # nothing labelled yet


def test_stats_from_a_real_warehouse(tmp_path, capsys):
    db = tmp_path / "wh.duckdb"
    wh = fill_sample(db)
    ledger = AlertLedger(wh)
    ledger.reconcile()  # a2: c1 bought after it -> RECOVERED with nobody acting
    ledger.act("a3", "ACKNOWLEDGED", "alice")
    ledger.act("a3", "SAVED", "alice", "gave a discount")
    ledger.act("a1", "ACKNOWLEDGED", "bob")
    ledger.act("a1", "LOST", "bob")
    scores = {(s.owner, s.alert_type): s for s in production_scores(wh)}
    wh.close()
    frontline = scores[("frontline_agent", "AT_RISK_SILENT")]
    assert (frontline.raised, frontline.labelled, frontline.saved) == (2, 2, 1)
    assert frontline.precision == 0.5 and frontline.revenue_saved == 800.0
    director = scores[("account_director", "SILENT_CHURN")]
    assert (director.lost, director.save_rate, director.acted_on) == (1, 0.0, 1)
    assert scores[(ALL, ALL)].raised == 6

    assert main(["alerts", "stats", "--warehouse", f"duckdb://{db}"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(render_scores(list(scores.values())).splitlines()[0])
    line = next(ln for ln in out.splitlines() if ln.startswith("frontline_agent"))
    assert line.split()[2:6] == ["2", "2", "50%", "1"]


def test_stats_on_an_empty_warehouse(tmp_path, capsys):
    db = tmp_path / "empty.duckdb"
    DuckDBWarehouse(db).close()
    assert main(["alerts", "stats", "--warehouse", f"duckdb://{db}"]) == 0
    assert "no alerts in the warehouse yet" in capsys.readouterr().out
