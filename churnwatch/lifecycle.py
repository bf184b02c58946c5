"""An alert as a work item: its states, the legal steps between them, outcomes from data.

Pure rules, no storage (``churnwatch.warehouse.alert_events`` stores the steps)::

    OPEN ──ack──> ACKNOWLEDGED ──resolve──> SAVED | LOST | NOT_A_RISK      (people)
      │                │
      └────────────────┴──data──> RECOVERED | LOST                         (reconcile)

People acknowledge before they resolve, so "time to first action" always means someone
took the alert. The data may resolve an alert nobody touched: a customer who buys again
after an AT_RISK_SILENT alert has RECOVERED, one who cancels is LOST. Resolved states are
final; a second resolution is an illegal transition, not an overwrite.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

OPEN = "OPEN"
ACKNOWLEDGED = "ACKNOWLEDGED"
SAVED = "SAVED"
LOST = "LOST"
NOT_A_RISK = "NOT_A_RISK"
RECOVERED = "RECOVERED"

PERSON = "PERSON"
DATA = "DATA"
#: ``actor`` of the steps ``churnwatch alerts reconcile`` writes.
RECONCILER = "churnwatch-reconcile"

ACTIVE_STATES = frozenset({OPEN, ACKNOWLEDGED})
RESOLVED_STATES = frozenset({SAVED, LOST, NOT_A_RISK, RECOVERED})
#: What a person may resolve an acknowledged alert to.
PERSON_OUTCOMES = (SAVED, LOST, NOT_A_RISK)

_LEGAL: dict[tuple[str, str], frozenset[str]] = {
    (OPEN, PERSON): frozenset({ACKNOWLEDGED}),
    (ACKNOWLEDGED, PERSON): frozenset(PERSON_OUTCOMES),
    (OPEN, DATA): frozenset({RECOVERED, LOST}),
    (ACKNOWLEDGED, DATA): frozenset({RECOVERED, LOST}),
}

#: Customer events that end the relationship, and those that show it is alive again.
ENDING_EVENTS = frozenset({"CANCELLATION", "ACCOUNT_CLOSED"})
RENEWED_ACTIVITY = frozenset({"PURCHASE", "RENEWAL", "SIGNUP"})
#: Alert types the data can resolve (those about one customer's activity).
RESOLVABLE_TYPES = frozenset({"AT_RISK_SILENT", "SILENT_CHURN"})


class IllegalTransition(ValueError):
    """A step the lifecycle does not allow (e.g. resolving an alert nobody acknowledged)."""


def check_transition(current: str, target: str, source: str = PERSON) -> None:
    """Raise :class:`IllegalTransition` unless ``current -> target`` is legal for ``source``."""
    allowed = _LEGAL.get((current, source), frozenset())
    if target in allowed:
        return
    if current in RESOLVED_STATES:
        raise IllegalTransition(f"the alert is already resolved ({current}); nothing can follow")
    if source == PERSON and current == OPEN and target in PERSON_OUTCOMES:
        raise IllegalTransition(f"the alert is OPEN: acknowledge it before resolving it {target}")
    hint = f"; from {current} a person may go to {sorted(allowed)}" if allowed else ""
    raise IllegalTransition(f"cannot go from {current} to {target}{hint}")


@dataclass(frozen=True)
class DataOutcome:
    """What the data says happened after an alert: the state and the event that shows it."""

    state: str  # RECOVERED or LOST
    occurred_at: int  # event time of the evidence, epoch ms
    event_id: str
    note: str


def outcome_from_data(
    alert: Mapping[str, Any], later_events: Iterable[Mapping[str, Any]]
) -> DataOutcome | None:
    """The first decisive customer event strictly after the alert, as an outcome, or None.

    ``alert`` needs alert_type, customer_id and detected_at (ms); each event needs event_id,
    customer_id, type and occurred_at (ms). Events of other customers or at/before
    detected_at are ignored (a SILENT_CHURN alert is raised *at* its cancellation, which
    must not resolve it). AT_RISK_SILENT: a purchase, renewal or signup -> RECOVERED, a
    cancellation or closure -> LOST. SILENT_CHURN (already gone): coming back -> RECOVERED.
    Ties in time go to the event id order, so replays give the same answer.
    """
    alert_type = alert.get("alert_type")
    customer = alert.get("customer_id")
    if alert_type not in RESOLVABLE_TYPES or not customer:
        return None
    detected = int(alert["detected_at"])
    relevant = sorted(
        (
            e
            for e in later_events
            if e.get("customer_id") == customer and int(e["occurred_at"]) > detected
        ),
        key=lambda e: (int(e["occurred_at"]), str(e["event_id"])),
    )
    for event in relevant:
        kind = event.get("type")
        if kind in RENEWED_ACTIVITY:
            state = RECOVERED
        elif kind in ENDING_EVENTS and alert_type == "AT_RISK_SILENT":
            state = LOST
        else:
            continue
        return DataOutcome(
            state, int(event["occurred_at"]), str(event["event_id"]), f"{kind} after the alert"
        )
    return None


def revenue_at_risk(alerts: list[Mapping[str, Any]]) -> float:
    """Revenue at risk with each customer counted once (their largest alert)."""
    subjects: dict[str, float] = {}
    for a in alerts:
        key = a.get("customer_id") or a["alert_id"]
        subjects[key] = max(subjects.get(key, 0.0), float(a["revenue_at_risk"] or 0))
    return sum(subjects.values())
