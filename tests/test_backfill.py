"""Backfill: the same flow on an Avro message log, in batch, idempotent when replayed."""

from __future__ import annotations

from churnwatch.simulate import DUPLICATE, MALFORMED, SimConfig, simulate, write_message_log
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from pipelines import backfill


def test_backfill_counts_and_replay_adds_nothing(tmp_path):
    sim = simulate(
        SimConfig(
            customers=50, days=60, seed=5, malformed_rate=0.05, duplicate_rate=0.05, json_rate=0.3
        )
    )
    log = tmp_path / "messages.avro"
    assert write_message_log(sim.messages, log) == len(sim.messages)
    db = tmp_path / "wh.duckdb"
    argv = [f"--input={log}", f"--warehouse=duckdb://{db}"]
    backfill.run(argv)
    backfill.run(argv)  # a replay over the same history must not add a row

    malformed = sum(m.label == MALFORMED for m in sim.messages)
    duplicates = sum(m.label == DUPLICATE for m in sim.messages)
    wh = DuckDBWarehouse(db)
    try:
        rows = wh.count("feedback_events") + wh.count("customer_events")
        assert rows == len(sim.messages) - malformed - duplicates
        assert wh.count("dead_letters") == malformed
    finally:
        wh.close()
