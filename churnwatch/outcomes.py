"""Closing the loop: how good the alerts were in production, judged on their outcomes.

The simulator's ground truth scores the detector offline (``churnwatch.evaluate``); this
module scores it on what really happened to the alerts (``current_alerts``), per owner and
alert type. Labels:

=============================================  ============  ==========
final state                                     real risk?    saved?
=============================================  ============  ==========
SAVED (a person kept the customer)              yes           yes
RECOVERED after a person acknowledged it        yes           yes
LOST (by a person or from a cancellation)       yes           no
NOT_A_RISK (a person said the alert was wrong)  no            -
RECOVERED with nobody acting                    no            -
OPEN / ACKNOWLEDGED                             unlabelled    -
=============================================  ============  ==========

A customer who comes back on their own was not at risk in the sense that matters (nobody
needed to act), so it counts against precision; one who comes back after the owner
stepped in counts as a save.

* production precision = real risks / labelled alerts;
* save rate = saved / real risks;
* time to first action = median wall-clock time from the pipeline raising the alert
  (``processed_at``) to the first step a person took;
* revenue saved = revenue at risk of the saved alerts.

:func:`production_scores` reads a DuckDB warehouse; :func:`score_outcomes` is the pure rule.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from churnwatch import lifecycle
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse

#: Grouping keys of :func:`production_scores`.
GROUPINGS = {"owner_type": ("owner", "alert_type"), "owner": ("owner",), "type": ("alert_type",)}
ALL = "(all)"


@dataclass(frozen=True)
class OutcomeScore:
    """Outcome metrics of one group of alerts (``owner`` / ``alert_type`` may be ``(all)``)."""

    owner: str
    alert_type: str
    raised: int
    labelled: int
    real_risks: int
    saved: int
    lost: int
    false_alarms: int
    acted_on: int
    median_seconds_to_first_action: float | None
    revenue_at_risk: float
    revenue_saved: float

    @property
    def precision(self) -> float | None:
        return self.real_risks / self.labelled if self.labelled else None

    @property
    def save_rate(self) -> float | None:
        return self.saved / self.real_risks if self.real_risks else None


def _seconds(start: Any, end: Any) -> float | None:
    if start is None or end is None:
        return None
    if isinstance(start, datetime):
        return (end - start).total_seconds()
    return (float(end) - float(start)) / 1000.0  # epoch milliseconds


def label(row: Mapping[str, Any]) -> tuple[bool | None, bool]:
    """``(real risk?, saved?)`` of one alert; real risk is None while it is unlabelled."""
    state = row["state"]
    acted = row.get("first_action_at") is not None
    if state in (lifecycle.SAVED,) or (state == lifecycle.RECOVERED and acted):
        return True, True
    if state == lifecycle.LOST:
        return True, False
    if state in (lifecycle.NOT_A_RISK, lifecycle.RECOVERED):
        return False, False
    return None, False


def score_outcomes(
    rows: Iterable[Mapping[str, Any]], by: tuple[str, ...] = ("owner", "alert_type")
) -> list[OutcomeScore]:
    """One score per group (sorted) plus a last ``(all)`` row over every alert.

    Each row needs owner, alert_type, state, revenue_at_risk, processed_at and
    first_action_at (datetimes or epoch ms), as ``current_alerts`` has them.
    """
    rows = list(rows)
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        key = (
            row["owner"] if "owner" in by else ALL,
            row["alert_type"] if "alert_type" in by else ALL,
        )
        groups.setdefault(key, []).append(row)
    out = [_score(owner, kind, members) for (owner, kind), members in sorted(groups.items())]
    if rows and len(groups) > 1:
        out.append(_score(ALL, ALL, rows))
    return out


def _score(owner: str, alert_type: str, rows: list[Mapping[str, Any]]) -> OutcomeScore:
    labels = [label(r) for r in rows]
    waits = [
        s
        for r in rows
        if (s := _seconds(r.get("processed_at"), r.get("first_action_at"))) is not None
    ]
    return OutcomeScore(
        owner=owner,
        alert_type=alert_type,
        raised=len(rows),
        labelled=sum(real is not None for real, _ in labels),
        real_risks=sum(real is True for real, _ in labels),
        saved=sum(saved for _, saved in labels),
        lost=sum(r["state"] == lifecycle.LOST for r in rows),
        false_alarms=sum(real is False for real, _ in labels),
        acted_on=len(waits),
        median_seconds_to_first_action=statistics.median(waits) if waits else None,
        revenue_at_risk=round(sum(float(r["revenue_at_risk"] or 0) for r in rows), 2),
        revenue_saved=round(
            sum(
                float(r["revenue_at_risk"] or 0)
                for r, (_, saved) in zip(rows, labels, strict=True)
                if saved
            ),
            2,
        ),
    )


def production_scores(warehouse: DuckDBWarehouse, by: str = "owner_type") -> list[OutcomeScore]:
    """Outcome scores from a DuckDB warehouse's ``current_alerts`` (created if missing).

    ``by``: ``owner_type`` (default), ``owner`` or ``type``. This is what
    ``churnwatch alerts stats`` prints and ``churnwatch evaluate --warehouse`` can call.
    """
    from churnwatch.warehouse.alert_events import create_current_alerts

    if by not in GROUPINGS:
        raise ValueError(f"group outcomes by one of {sorted(GROUPINGS)}, not {by!r}")
    if not warehouse.read_only:
        create_current_alerts(warehouse)
    columns = ("owner", "alert_type", "state", "revenue_at_risk", "processed_at")
    rows = warehouse.query(f"SELECT {', '.join(columns)}, first_action_at FROM current_alerts")
    dicts = [dict(zip((*columns, "first_action_at"), r, strict=True)) for r in rows]
    return score_outcomes(dicts, GROUPINGS[by])


def duration(seconds: float | None) -> str:
    """A short human duration: 45 s, 12 min, 3.5 h, 2.1 d; '-' for none."""
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def render_scores(scores: list[OutcomeScore]) -> str:
    """The production-precision table as plain text (fixed width, for terminals and notes)."""
    if not scores:
        return "no alerts in the warehouse yet"
    head = (
        f"{'owner':<22} {'alert_type':<15} {'raised':>6} {'labelled':>8} {'precision':>9} "
        f"{'saved':>5} {'lost':>4} {'save rate':>9} {'1st action':>10} {'revenue saved':>13}"
    )
    lines = [head, "-" * len(head)]
    for s in scores:
        lines.append(
            f"{s.owner[:22]:<22} {s.alert_type[:15]:<15} {s.raised:>6} {s.labelled:>8} "
            f"{_pct(s.precision):>9} {s.saved:>5} {s.lost:>4} {_pct(s.save_rate):>9} "
            f"{duration(s.median_seconds_to_first_action):>10} {s.revenue_saved:>13,.0f}"
        )
    lines.append(
        "precision = (saved + lost) / labelled; save rate = saved / (saved + lost); "
        "1st action = median time from raised to a person's first step"
    )
    return "\n".join(lines)
