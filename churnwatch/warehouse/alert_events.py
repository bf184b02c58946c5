"""Alert work items in the warehouse: the ``current_alerts`` view and the step writer.

``alert_events`` (schema ``schemas/alert_event.avsc``) is append-only: every
acknowledgement or resolution is a new row ``(alert_id, seq)``. An alert's state is its
highest ``seq`` (no row: OPEN). ``current_alerts`` joins that state onto the newest row of
each alert in ``churn_alerts``: the detector updates an AT_RISK episode in place with the
same ``alert_id`` and a higher ``revision`` (BigQuery keeps every revision as a row), so
alerts are picked per id (highest revision, then latest), never assumed unique. The
view SQL is written once for both DuckDB and BigQuery (``QUALIFY`` with a ``WHERE TRUE``,
``CASE`` instead of ``FILTER``); only table references differ.

Writes go through :class:`AlertLedger`, which checks each step with
:func:`churnwatch.lifecycle.check_transition` and inserts without ``ON CONFLICT``: if two
people act on one alert at once, the second insert of the same ``seq`` fails loudly
instead of being dropped, and nothing is written on a bad request.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from churnwatch import lifecycle
from churnwatch.clock import now_ms
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse

CURRENT_ALERTS = "current_alerts"
CURRENT_ALERTS_DOC = (
    "One row per alert (the newest row of each alert_id in churn_alerts) with its lifecycle "
    "state from alert_events: OPEN until someone acts, then the state of the latest step."
)
#: (column, description) of current_alerts, in select order.
CURRENT_ALERTS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("alert_id", "Deterministic alert id."),
    ("alert_type", "SILENT_CHURN, AT_RISK_SILENT, ISSUE_SPIKE or DATA_QUALITY."),
    ("severity", "LOW, MEDIUM, HIGH or CRITICAL."),
    ("owner", "Routing-policy owner whose queue the alert is in."),
    ("customer_id", "Customer the alert is about; null for topic/data alerts."),
    ("topic", "Feedback topic of an ISSUE_SPIKE; null otherwise."),
    ("detected_at", "Event time of the situation (UTC)."),
    ("processed_at", "Wall-clock time the pipeline raised the alert (UTC)."),
    ("revenue_at_risk", "Annualised revenue at stake."),
    ("authority_limit", "What the owner may spend without asking."),
    ("revision", "AT_RISK episode revision of the alert row shown (0 for other types)."),
    ("risk", "The risk model's probability that the customer will not come back."),
    ("p_alive", "BG/NBD probability the customer is still active at detected_at."),
    ("state", "OPEN, ACKNOWLEDGED, SAVED, LOST, NOT_A_RISK or RECOVERED."),
    ("steps", "Rows in alert_events for the alert (0 while untouched)."),
    ("state_at", "When the latest step happened; null while OPEN."),
    ("state_by", "Who took the latest step; null while OPEN."),
    ("state_note", "Note of the latest step."),
    ("acknowledged_at", "First ACKNOWLEDGED step (wall clock); null if never."),
    ("acknowledged_by", "Who acknowledged first."),
    ("first_action_at", "First step taken by a person (wall clock); null if none."),
    ("resolved_at", "When the alert reached a resolved state; null while active."),
)


def current_alerts_sql(ref: Callable[[str], str]) -> str:
    """The view body; ``ref(table)`` gives the table reference in the target dialect."""
    resolved = ", ".join(f"'{s}'" for s in sorted(lifecycle.RESOLVED_STATES))
    return f"""
WITH alerts AS (
    SELECT * FROM {ref("churn_alerts")}
    WHERE TRUE
    QUALIFY ROW_NUMBER() OVER (
        PARTITION BY alert_id ORDER BY revision DESC, processed_at DESC
    ) = 1
),
latest AS (
    SELECT * FROM {ref("alert_events")}
    WHERE TRUE
    QUALIFY ROW_NUMBER() OVER (PARTITION BY alert_id ORDER BY seq DESC) = 1
),
firsts AS (
    SELECT
        alert_id,
        COUNT(*) AS steps,
        MIN(CASE WHEN state = 'ACKNOWLEDGED' THEN occurred_at END) AS acknowledged_at,
        MIN(CASE WHEN state = 'ACKNOWLEDGED' THEN seq END) AS acknowledged_seq,
        MIN(CASE WHEN source = 'PERSON' THEN occurred_at END) AS first_action_at
    FROM {ref("alert_events")}
    GROUP BY alert_id
)
SELECT
    a.alert_id, a.alert_type, a.severity, a.owner, a.customer_id, a.topic,
    a.detected_at, a.processed_at, a.revenue_at_risk, a.authority_limit, a.revision, a.risk,
    a.p_alive,
    COALESCE(l.state, 'OPEN') AS state,
    COALESCE(f.steps, 0) AS steps,
    l.occurred_at AS state_at,
    l.actor AS state_by,
    l.note AS state_note,
    f.acknowledged_at,
    ack.actor AS acknowledged_by,
    f.first_action_at,
    CASE WHEN l.state IN ({resolved}) THEN l.occurred_at END AS resolved_at
FROM alerts a
LEFT JOIN latest l ON l.alert_id = a.alert_id
LEFT JOIN firsts f ON f.alert_id = a.alert_id
LEFT JOIN {ref("alert_events")} ack
    ON ack.alert_id = a.alert_id AND ack.seq = f.acknowledged_seq
"""


def create_current_alerts(warehouse: DuckDBWarehouse, temporary: bool = False) -> None:
    """Create (or replace) ``current_alerts`` in a DuckDB warehouse (``temporary``: read-only)."""
    if not temporary:
        warehouse.ensure_tables(["churn_alerts", "alert_events"])
    kind = "TEMP VIEW" if temporary else "VIEW"
    body = current_alerts_sql(lambda t: t).strip()
    warehouse.query(f"CREATE OR REPLACE {kind} {CURRENT_ALERTS} AS {body}")


class UnknownAlert(ValueError):
    """No alert with that id in the warehouse."""


def _millis(value: datetime | None) -> int | None:
    return None if value is None else int(value.replace(tzinfo=UTC).timestamp() * 1000)


def _timestamp(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Step:
    """One row written to alert_events."""

    alert_id: str
    seq: int
    state: str
    actor: str
    source: str
    occurred_at: int
    note: str | None = None
    evidence_event_id: str | None = None


class AlertLedger:
    """Reads queues and writes lifecycle steps on one DuckDB warehouse."""

    def __init__(self, warehouse: DuckDBWarehouse) -> None:
        self.warehouse = warehouse
        create_current_alerts(warehouse)

    def alert(self, alert_id: str) -> dict[str, Any]:
        """The alert's current_alerts row as a dict; :class:`UnknownAlert` if there is none."""
        names = [c for c, _ in CURRENT_ALERTS_COLUMNS]
        rows = self.warehouse.query(
            f"SELECT {', '.join(names)} FROM {CURRENT_ALERTS} WHERE alert_id = ?", [alert_id]
        )
        if not rows:
            raise UnknownAlert(f"no alert {alert_id!r} in the warehouse (see `churnwatch alerts`)")
        return dict(zip(names, rows[0], strict=True))

    def queue(self, owner: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Active (OPEN or ACKNOWLEDGED) alerts, highest revenue at risk first."""
        names = [c for c, _ in CURRENT_ALERTS_COLUMNS]
        where = "state IN ('OPEN', 'ACKNOWLEDGED')"
        params: list[Any] = []
        if owner:
            where += " AND owner = ?"
            params.append(owner)
        sql = (
            f"SELECT {', '.join(names)} FROM {CURRENT_ALERTS} WHERE {where} "
            "ORDER BY revenue_at_risk DESC, detected_at, alert_id"
        )
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [dict(zip(names, r, strict=True)) for r in self.warehouse.query(sql, params)]

    def owners(self) -> list[str]:
        return [r[0] for r in self.warehouse.query("SELECT DISTINCT owner FROM churn_alerts")]

    def act(
        self,
        alert_id: str,
        state: str,
        actor: str,
        note: str | None = None,
        source: str = lifecycle.PERSON,
        occurred_at: int | None = None,
        evidence_event_id: str | None = None,
    ) -> Step:
        """Append one step after checking it; raises and writes nothing if it is not legal."""
        if not actor or not actor.strip():
            raise ValueError("say who acts (--by NAME)")
        current = self.alert(alert_id)
        lifecycle.check_transition(current["state"], state, source)
        step = Step(
            alert_id,
            int(current["steps"]) + 1,
            state,
            actor.strip(),
            source,
            now_ms() if occurred_at is None else int(occurred_at),
            note,
            evidence_event_id,
        )
        try:
            self.warehouse.query(
                "INSERT INTO alert_events (alert_id, seq, state, actor, source, occurred_at,"
                " note, evidence_event_id, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    step.alert_id,
                    step.seq,
                    step.state,
                    step.actor,
                    step.source,
                    _timestamp(step.occurred_at),
                    step.note,
                    step.evidence_event_id,
                    _timestamp(now_ms()),
                ],
            )
        except duckdb.ConstraintException:
            raise RuntimeError(
                f"alert {alert_id} changed while you acted (step {step.seq} exists); look again"
            ) from None
        return step

    def reconcile(self) -> Counter:
        """Resolve active customer alerts from later customer events; returns counts by state.

        Idempotent: a resolved alert is no longer active, so a second run writes nothing.
        """
        types = ", ".join(f"'{t}'" for t in sorted(lifecycle.RESOLVABLE_TYPES))
        alerts = self.warehouse.query(
            f"SELECT alert_id, alert_type, customer_id, detected_at FROM {CURRENT_ALERTS} "
            f"WHERE state IN ('OPEN', 'ACKNOWLEDGED') AND customer_id IS NOT NULL "
            f"AND alert_type IN ({types}) ORDER BY detected_at, alert_id"
        )
        counts: Counter = Counter(checked=len(alerts))
        if not alerts:
            return counts
        events: dict[str, list[dict[str, Any]]] = {}
        for event_id, customer_id, kind, occurred in self.warehouse.query(
            f"SELECT e.event_id, e.customer_id, e.type, e.occurred_at FROM customer_events e "
            f"WHERE e.customer_id IN (SELECT customer_id FROM {CURRENT_ALERTS} "
            f"WHERE state IN ('OPEN', 'ACKNOWLEDGED'))"
        ):
            events.setdefault(customer_id, []).append(
                {
                    "event_id": event_id,
                    "customer_id": customer_id,
                    "type": kind,
                    "occurred_at": _millis(occurred),
                }
            )
        for alert_id, alert_type, customer_id, detected in alerts:
            alert = {
                "alert_type": alert_type,
                "customer_id": customer_id,
                "detected_at": _millis(detected),
            }
            outcome = lifecycle.outcome_from_data(alert, events.get(customer_id, ()))
            if outcome is None:
                continue
            self.act(
                alert_id,
                outcome.state,
                lifecycle.RECONCILER,
                outcome.note,
                lifecycle.DATA,
                outcome.occurred_at,
                outcome.event_id,
            )
            counts[outcome.state] += 1
        return counts
