"""`churnwatch alerts` on a real DuckDB file: queues, steps, bad input, reconcile."""

from __future__ import annotations

import subprocess
import sys

import pytest

from churnwatch.cli import main
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from tests.helpers import duckdb_locked_by_another_process
from tests.test_views_samples import customer_event, fill_sample, ms


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "wh.duckdb"
    fill_sample(path).close()
    return path


def steps(path) -> list[tuple]:
    wh = DuckDBWarehouse(path)
    try:
        wh.ensure_tables(["alert_events"])
        return wh.query("SELECT alert_id, seq, state, actor, source, note FROM alert_events")
    finally:
        wh.close()


def cli(*argv: str) -> int:
    return main(["alerts", *argv])


def test_queue_is_ranked_by_revenue_and_filtered_by_owner(db, capsys):
    url = f"duckdb://{db}"
    assert cli("list", "--warehouse", url, "--owner", "frontline_agent") == 0
    out = capsys.readouterr().out
    # a2 (2000) before a3 (800); nobody else's alerts.
    assert "revenue at risk 2,800" in out
    assert out.index("a2") < out.index("a3")
    assert "a1" not in out and "a4" not in out


def test_ack_then_resolve_writes_two_steps_with_who_and_note(db, capsys):
    url = f"duckdb://{db}"
    assert cli("ack", "--warehouse", url, "a3", "--by", "alice", "--note", "calling") == 0
    assert cli("resolve", "--warehouse", url, "a3", "--outcome", "SAVED", "--by", "alice") == 0
    out = capsys.readouterr().out
    assert "a3: ACKNOWLEDGED by alice (step 1)" in out and "a3: SAVED by alice (step 2)" in out
    assert steps(db) == [
        ("a3", 1, "ACKNOWLEDGED", "alice", "PERSON", "calling"),
        ("a3", 2, "SAVED", "alice", "PERSON", None),
    ]
    # Saved alerts leave the queue.
    assert cli("list", "--warehouse", url, "--owner", "frontline_agent") == 0
    assert "a3" not in capsys.readouterr().out.split("revenue at risk")[1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ack", "nope", "--by", "alice"], "no alert 'nope' in the warehouse"),
        (["resolve", "a1", "--outcome", "SAVED", "--by", "bob"], "acknowledge it before"),
        (["ack", "a1", "--by", "  "], "say who acts"),
    ],
)
def test_bad_input_is_a_clear_error_and_changes_nothing(db, capsys, argv, message):
    before = steps(db)
    assert cli(argv[0], "--warehouse", f"duckdb://{db}", *argv[1:]) == 2
    assert message in capsys.readouterr().err
    assert steps(db) == before


def test_resolving_twice_is_refused(db, capsys):
    url = f"duckdb://{db}"
    assert cli("ack", "--warehouse", url, "a1", "--by", "bob") == 0
    assert cli("resolve", "--warehouse", url, "a1", "--outcome", "LOST", "--by", "bob") == 0
    assert cli("resolve", "--warehouse", url, "a1", "--outcome", "SAVED", "--by", "eve") == 2
    assert "already resolved (LOST)" in capsys.readouterr().err
    assert [s[2] for s in steps(db)] == ["ACKNOWLEDGED", "LOST"]


def test_reconcile_resolves_from_data_once(db, capsys):
    url = f"duckdb://{db}"
    wh = DuckDBWarehouse(db)
    # c6 (a3, AT_RISK since 06-20) cancels on 06-29: LOST. c1 bought after a2: RECOVERED.
    wh.upsert("customer_events", [customer_event("ce-c6-x", "c6", ms(2026, 6, 29), "CANCELLATION")])
    wh.close()
    assert cli("reconcile", "--warehouse", url) == 0
    assert "3 active customer alerts: 1 RECOVERED, 1 LOST" in capsys.readouterr().out
    assert sorted(steps(db)) == [
        ("a2", 1, "RECOVERED", "churnwatch-reconcile", "DATA", "PURCHASE after the alert"),
        ("a3", 1, "LOST", "churnwatch-reconcile", "DATA", "CANCELLATION after the alert"),
    ]
    assert cli("reconcile", "--warehouse", url) == 0  # idempotent
    assert "1 active customer alerts: 0 RECOVERED, 0 LOST" in capsys.readouterr().out
    assert len(steps(db)) == 2


def test_a_repeated_alert_row_is_one_work_item(db, capsys):
    """The detector may write an AT_RISK alert again with the same id (an updated episode;
    BigQuery appends it): current_alerts keeps the newest row, so a3 stays one work item."""
    wh = DuckDBWarehouse(db)
    wh.query("CREATE TABLE appended AS SELECT * FROM churn_alerts")  # no primary key
    wh.query("DROP TABLE churn_alerts")
    wh.query("ALTER TABLE appended RENAME TO churn_alerts")
    wh.query(
        "INSERT INTO churn_alerts SELECT * REPLACE (processed_at + INTERVAL 1 HOUR AS "
        "processed_at, 900.0 AS revenue_at_risk) FROM churn_alerts WHERE alert_id = 'a3'"
    )
    assert wh.query("SELECT count(*) FROM churn_alerts WHERE alert_id = 'a3'") == [(2,)]
    wh.close()
    url = f"duckdb://{db}"
    assert cli("list", "--warehouse", url, "--owner", "frontline_agent") == 0
    out = capsys.readouterr().out
    assert out.count("a3") == 1 and "900" in out and "800" not in out.split("2,900")[1]
    assert "revenue at risk 2,900" in out
    assert cli("ack", "--warehouse", url, "a3", "--by", "alice") == 0
    assert steps(db) == [("a3", 1, "ACKNOWLEDGED", "alice", "PERSON", None)]


def test_a_locked_warehouse_is_a_clear_error(db):
    # Another process holds DuckDB's write lock (as a running pipeline does).
    with duckdb_locked_by_another_process(db):
        done = subprocess.run(
            [sys.executable, "-m", "churnwatch.cli", "alerts", "list", "--warehouse",
             f"duckdb://{db}"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 2
    assert "is locked by another process" in done.stderr
