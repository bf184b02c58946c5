"""`churnwatch fit --warehouse`: a model from a real DuckDB file, checked against the rules."""

from __future__ import annotations

import subprocess
import sys

import pytest

from churnwatch import schemas
from churnwatch.cli import main
from churnwatch.model.packaged import load_model
from churnwatch.renewal_world import simulate_renewal
from churnwatch.simulate import SimConfig
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from pipelines.options import ChurnwatchOptions


def warehouse_with(path, days: float, customers: int = 500) -> str:
    sim = simulate_renewal(
        SimConfig(customers=customers, days=days, seed=21, start_ms=1_600_000_000_000),
        with_messages=False,
    )
    wh = DuckDBWarehouse(path)
    try:
        for table, source, record in (
            ("customer_events", "customer", schemas.CUSTOMER_EVENT),
            ("feedback_events", "feedback", schemas.FEEDBACK_EVENT),
        ):
            revision = schemas.load(record).revision
            rows = [  # as the pipeline stores them: with their message's metadata
                {
                    **r,
                    "message_id": r["event_id"],
                    "publish_time": r["occurred_at"],
                    "schema_revision": revision,
                }
                for r in sim.events[source]
            ]
            wh.upsert(table, rows)
    finally:
        wh.close()
    return f"duckdb://{path}"


def test_fit_on_the_warehouse_writes_a_model_the_pipeline_accepts(tmp_path, capsys):
    url = warehouse_with(tmp_path / "wh.duckdb", days=540)
    out = tmp_path / "model.json"
    assert main(["fit", "--warehouse", url, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Churnwatch risk model" in printed and "no purchase in N days" in printed
    model = load_model(out)
    assert model.trained_on["customers"] > 400 and model.budget_table
    options = ChurnwatchOptions(
        [
            "--feedback_subscription=projects/churnwatch-local/subscriptions/fb-sub",
            "--customer_subscription=projects/churnwatch-local/subscriptions/cu-sub",
            f"--model_params={out}",
        ]
    )
    assert options.tracking_setup().model.version == model.version


def test_a_history_too_short_to_learn_from_is_refused_and_nothing_written(tmp_path):
    url = warehouse_with(tmp_path / "short.duckdb", days=60, customers=100)
    out = tmp_path / "model.json"
    done = subprocess.run(
        [sys.executable, "-m", "churnwatch.cli", "fit", "--warehouse", url, "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "at least 20 of each are needed" in done.stderr
    assert not out.exists()


def test_a_bgnbd_parameter_file_is_not_taken_for_a_detector_model(tmp_path):
    from churnwatch.model.bgnbd import BGNBDParams

    path = tmp_path / "bgnbd.json"
    path.write_text(BGNBDParams(0.243, 4.414, 0.793, 2.426, 7).to_json())
    options = ChurnwatchOptions(
        [
            "--feedback_subscription=projects/churnwatch-local/subscriptions/fb-sub",
            "--customer_subscription=projects/churnwatch-local/subscriptions/cu-sub",
            f"--model_params={path}",
        ]
    )
    with pytest.raises(ValueError, match="fit --warehouse"):
        options.validate_churnwatch()


def test_the_removed_p_alive_threshold_flag_says_what_replaced_it():
    options = ChurnwatchOptions(
        [
            "--feedback_subscription=projects/churnwatch-local/subscriptions/fb-sub",
            "--customer_subscription=projects/churnwatch-local/subscriptions/cu-sub",
            "--p_alive_threshold=0.2",
        ]
    )
    with pytest.raises(ValueError, match="--alert_budget"):
        options.validate_churnwatch()


def test_refusal_rule():
    """The model is refused when a rule ranks at least as well after the split."""
    from churnwatch.commands.fit import beats_rules

    assert beats_rules(0.80, {"recency": 0.70, "gap": 0.64})
    assert not beats_rules(0.70, {"recency": 0.70, "gap": 0.64})
    assert not beats_rules(None, {"recency": 0.70})
