"""Purchase histories for fitting: from a CDNOW-style summary or the warehouse.

``churnwatch fit --simulate-seed`` builds its history from the simulator in the command
itself: the library does not depend on the simulator.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from churnwatch.model.bgnbd import summarise_purchases

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
    return summarise_transactions(rows, day_seconds)


def summarise_transactions(rows, day_seconds: float, observed_until_ms: int | None = None):
    """``(customer_id, at_ms)`` transactions -> ``frequency, recency, T`` in customer days."""
    day_ms = day_seconds * 1000
    purchases: dict[str, list[float]] = {}
    for customer_id, at_ms in rows:
        purchases.setdefault(customer_id, []).append(at_ms / day_ms)
    end = (observed_until_ms if observed_until_ms is not None else max(r[1] for r in rows)) / day_ms
    return summarise_purchases(purchases, end)
