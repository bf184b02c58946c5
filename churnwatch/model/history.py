"""Purchase histories for fitting: from a CDNOW-style summary, the warehouse or a simulation."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from churnwatch.model.bgnbd import summarise_purchases
from churnwatch.simulate import SimConfig, simulate

TRANSACTIONS = ("SIGNUP", "PURCHASE", "RENEWAL")


def from_summary_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``frequency, recency, T`` columns (the lifetimes / CDNOW summary layout)."""
    with open(path) as fo:
        rows = list(csv.DictReader(fo))
    if not rows or not {"frequency", "recency", "T"} <= set(rows[0]):
        raise ValueError(f"{path}: expected columns frequency, recency, T")
    return tuple(np.array([float(r[k]) for r in rows]) for k in ("frequency", "recency", "T"))


def from_duckdb(path: str, day_seconds: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transactions in the warehouse's customer_events, in customer days."""
    from churnwatch.warehouse.duckdb_store import DuckDBWarehouse

    wh = DuckDBWarehouse(path)
    try:
        rows = wh.query(
            "SELECT customer_id, epoch_ms(occurred_at) FROM customer_events WHERE type IN "
            f"({', '.join(repr(t) for t in TRANSACTIONS)})"
        )
    finally:
        wh.close()
    if not rows:
        raise ValueError(f"{path}: no transactions in customer_events to fit on")
    return _summarise(rows, day_seconds)


def from_simulation(seed: int, customers: int = 1000, days: float = 365.0):
    sim = simulate(SimConfig(customers=customers, days=days, seed=seed, spike=False))
    rows = [
        (r["customer_id"], r["occurred_at"] - sim.start_ms)
        for r in sim.events["customer"]
        if r["type"] in TRANSACTIONS
    ]
    return _summarise(rows, 86400.0, observed_until_ms=int(days * 86400_000))


def _summarise(rows, day_seconds: float, observed_until_ms: int | None = None):
    day_ms = day_seconds * 1000
    purchases: dict[str, list[float]] = {}
    for customer_id, at_ms in rows:
        purchases.setdefault(customer_id, []).append(at_ms / day_ms)
    end = (observed_until_ms if observed_until_ms is not None else max(r[1] for r in rows)) / day_ms
    return summarise_purchases(purchases, end)
