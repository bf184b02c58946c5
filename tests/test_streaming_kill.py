"""Nothing lost to a crash: SIGKILL the local pipeline mid-stream, restart, exact counts.

The local read acks a message only once its row or dead letter is committed (or its
duplicate dropped), so what a killed run had pulled but not written comes back to the
next run when its short lease runs out. Warehouse writes are idempotent by primary key,
so what was written and then redelivered is not doubled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from churnwatch.emulator import EMULATOR_ENV
from churnwatch.publish import publish_messages
from churnwatch.simulate import DUPLICATE, MALFORMED, SimConfig, simulate
from churnwatch.warehouse import prepare_warehouse
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from tests.helpers import streaming_argv
from transforms.pubsub_local import LEASE_S

pytestmark = pytest.mark.emulator

ROOT = Path(__file__).resolve().parent.parent
KILLS = 3


def _start(topics, db: Path, idle_stop_s: float, log: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        streaming_argv(topics, db, idle_stop_s),
        cwd=ROOT,
        env={**os.environ, EMULATOR_ENV: os.environ[EMULATOR_ENV]},
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb") if log else subprocess.DEVNULL,
        start_new_session=True,
    )


def _kill_after_first_commit(process: subprocess.Popen, db: Path, timeout_s: float = 120) -> None:
    """SIGKILL once the run has committed something (its WAL grew), i.e. mid-stream."""
    wal = Path(f"{db}.wal")
    start_size = wal.stat().st_size if wal.exists() else 0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        if wal.exists() and wal.stat().st_size > start_size:
            break
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_sigkill_mid_stream_then_restart_loses_and_doubles_nothing(topics, tmp_path):
    sim = simulate(
        SimConfig(customers=80, days=90, seed=13, malformed_rate=0.05, duplicate_rate=0.05)
    )
    publish_messages(
        sim.messages, {s: topics[s]["topic"] for s in ("feedback", "customer")}, progress=False
    )
    valid_ids = {m.event_id for m in sim.messages if m.label not in (MALFORMED,)}
    malformed = [m for m in sim.messages if m.label == MALFORMED]
    assert any(m.label == DUPLICATE for m in sim.messages) and malformed
    db = tmp_path / "wh.duckdb"
    prepare_warehouse(f"duckdb://{db}")  # tables up front: later WAL growth is rows
    DuckDBWarehouse.close_all()

    for _ in range(KILLS):
        _kill_after_first_commit(_start(topics, db, idle_stop_s=60), db)
    # What the killed runs leased comes back within LEASE_S; idle-stop waits longer.
    log = tmp_path / "final.log"
    final = _start(topics, db, idle_stop_s=LEASE_S + 8, log=log)
    assert final.wait(timeout=600) == 0, log.read_text()[-3000:]  # a drain exits 0

    wh = DuckDBWarehouse(db)
    try:
        ids = [
            r[0]
            for r in wh.query(
                "SELECT event_id FROM feedback_events "
                "UNION ALL SELECT event_id FROM customer_events"
            )
        ]
        dead = {bytes(p) for (p,) in wh.query("SELECT payload FROM dead_letters")}
        n_dead = wh.count("dead_letters")
    finally:
        wh.close()
    assert len(ids) == len(set(ids)) == len(valid_ids)  # none lost, none doubled
    assert set(ids) == valid_ids
    assert n_dead == len(malformed)  # one dead letter per malformed message
    assert dead == {m.data for m in malformed}
