"""Histories to fit on: a CDNOW-style summary (BG/NBD alone) or a warehouse's events."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def from_summary_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``frequency, recency, T`` columns (the lifetimes / CDNOW summary layout)."""
    with open(path) as fo:
        rows = list(csv.DictReader(fo))
    if not rows or not {"frequency", "recency", "T"} <= set(rows[0]):
        raise ValueError(f"{path}: expected columns frequency, recency, T")
    return tuple(np.array([float(r[k]) for r in rows]) for k in ("frequency", "recency", "T"))


def events_from_duckdb(path: str) -> list[dict]:
    """The warehouse's valid customer and feedback events, as the detector sees them."""
    from churnwatch import schemas
    from churnwatch.warehouse.duckdb_store import DuckDBWarehouse

    wh = DuckDBWarehouse(path)
    events: list[dict] = []
    try:
        for name in (schemas.CUSTOMER_EVENT, schemas.FEEDBACK_EVENT):
            spec = schemas.load(name)
            cols = [f.name for f in spec.fields]
            select = ", ".join(f"epoch_ms({c})" if spec.field(c).is_timestamp else c for c in cols)
            for values in wh.query(f"SELECT {select} FROM {spec.table}"):
                events.append(dict(zip(cols, values, strict=True)))
    finally:
        wh.close()
    if not events:
        raise ValueError(f"{path}: no customer or feedback events to fit on")
    return events
