"""A small warehouse whose view outputs can be worked out by hand (shared by view/report tests).

The warehouse clock (v_as_of) ends at 2026-06-30 12:00 UTC, c4's complaint.

Customers: c1 surveyed 2026-06-10 and bought 2026-06-01; c2 last surveyed 2025-05-01
(> 365 days: overdue); c3 cancelled 2026-06-20 (not active); c4 never surveyed (overdue);
c5, c6 surveyed 2026-06-10. Active: c1 c2 c4 c5 c6 (5), overdue: c2 c4 (2).

Alerts: a1 (c3, 30000, director, open: c3 only cancelled since), a2 (c1, closed: c1 bought
on 06-01 after the 05-15 alert), a3 (c6, 800, frontline, open: c6 last seen 06-10 < 06-20),
a4/a6 ISSUE_SPIKE billing/login within 7 days (open), a5 billing spike 29 days old (closed).
"""

from __future__ import annotations

from datetime import UTC, datetime

from churnwatch.warehouse.duckdb_store import DuckDBWarehouse

AS_OF = datetime(2026, 6, 30, 12, 0)


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def customer_event(event_id, customer_id, when, kind, monthly_revenue=None):
    return {
        "event_id": event_id,
        "customer_id": customer_id,
        "occurred_at": when,
        "type": kind,
        "amount": None,
        "currency": "EUR",
        "monthly_revenue": monthly_revenue,
        "reason": None,
        "segment": "smb",
        "message_id": event_id,
        "publish_time": when,
        "schema_revision": "test",
    }


def feedback(event_id, customer_id, when, kind, nps=None, csat=None, topic=None):
    return {
        "event_id": event_id,
        "customer_id": customer_id,
        "occurred_at": when,
        "channel": "SURVEY" if kind == "SURVEY_RESPONSE" else "EMAIL",
        "kind": kind,
        "nps_score": nps,
        "csat_score": csat,
        "topic": topic,
        "cause": None,
        "text": None,
        "segment": "smb",
        "team": "support",
        "message_id": event_id,
        "publish_time": when,
        "schema_revision": "test",
    }


def alert(
    alert_id,
    alert_type,
    owner,
    detected,
    revenue,
    authority,
    customer_id=None,
    topic=None,
    affected=None,
    severity="HIGH",
):
    return {
        "alert_id": alert_id,
        "alert_type": alert_type,
        "severity": severity,
        "customer_id": customer_id,
        "topic": topic,
        "detected_at": detected,
        "processed_at": detected + 1000,
        "p_alive": 0.2 if customer_id else None,
        "expected_purchases": None,
        "days_since_last_activity": None,
        "typical_gap_days": None,
        "revenue_at_risk": float(revenue),
        "reason_codes": ["R"],
        "last_feedback_kind": None,
        "last_nps": None,
        "affected_customers": affected,
        "example_event_ids": [],
        "owner": owner,
        "authority_limit": float(authority),
        "model_version": "test",
    }


def aggregate(kind, day, dimension, value, churned, silent, vocal, revenue, pane):
    start = ms(2026, 6, day)
    return {
        "window_kind": kind,
        "window_start": start,
        "window_end": start + 86_400_000,
        "dimension": dimension,
        "dimension_value": value,
        "events": 10,
        "complaints": 1,
        "survey_responses": 2,
        "promoters": 1,
        "passives": 0,
        "detractors": 1,
        "nps": 0.0,
        "csat_mean": 3.0,
        "churned_customers": churned,
        "silent_churned": silent,
        "vocal_churned": vocal,
        "revenue_lost": float(revenue),
        "pane_index": pane,
        "pane_timing": "ON_TIME",
        "updated_at": start + pane,  # a later pane is written later
    }


def fill_sample(path) -> DuckDBWarehouse:
    wh = DuckDBWarehouse(path)
    wh.upsert(
        "customer_events",
        [
            customer_event(f"ce-{c}-signup", c, ms(2025, 1, 1), "SIGNUP", 100.0)
            for c in ("c1", "c2", "c3")
        ]
        + [
            customer_event("ce-c5-signup", "c5", ms(2026, 1, 1), "SIGNUP", 50.0),
            customer_event("ce-c6-signup", "c6", ms(2026, 1, 1), "SIGNUP", 50.0),
            customer_event("ce-c1-buy", "c1", ms(2026, 6, 1), "PURCHASE"),
            customer_event("ce-c3-cancel", "c3", ms(2026, 6, 20), "CANCELLATION"),
        ],
    )
    wh.upsert(
        "feedback_events",
        [
            feedback("f1", "c1", ms(2026, 6, 10, 9), "SURVEY_RESPONSE", nps=10, csat=5),
            feedback("f5", "c5", ms(2026, 6, 10, 10), "SURVEY_RESPONSE", nps=7, csat=4),
            feedback("f6", "c6", ms(2026, 6, 10, 11), "SURVEY_RESPONSE", nps=2),
            feedback("f2", "c2", ms(2025, 5, 1), "SURVEY_RESPONSE", nps=3, csat=2),
            feedback("f2c", "c2", ms(2026, 6, 10, 12), "COMPLAINT", topic="billing"),
            feedback("f4c", "c4", ms(2026, 6, 30, 12), "COMPLAINT", topic="login"),
        ],
    )
    wh.upsert(
        "churn_alerts",
        [
            alert("a1", "SILENT_CHURN", "account_director", ms(2026, 6, 25), 30000, 10000, "c3"),
            alert("a2", "AT_RISK_SILENT", "frontline_agent", ms(2026, 5, 15), 2000, 100, "c1"),
            alert("a3", "AT_RISK_SILENT", "frontline_agent", ms(2026, 6, 20), 800, 100, "c6"),
            alert(
                "a4",
                "ISSUE_SPIKE",
                "product_quality_lead",
                ms(2026, 6, 28),
                0,
                0,
                topic="billing",
                affected=12,
            ),
            alert(
                "a5",
                "ISSUE_SPIKE",
                "product_quality_lead",
                ms(2026, 6, 1),
                0,
                0,
                topic="billing",
                affected=5,
            ),
            alert(
                "a6",
                "ISSUE_SPIKE",
                "product_quality_lead",
                ms(2026, 6, 29),
                0,
                0,
                topic="login",
                affected=3,
            ),
        ],
    )
    wh.upsert(
        "feedback_aggregates",
        [
            aggregate("FIXED", 20, "all", "all", 2, 1, 1, 5000, 0),
            aggregate("FIXED", 21, "all", "all", 0, 0, 0, 0, 0),
            aggregate("SLIDING", 20, "all", "all", 9, 9, 0, 9000, 0),  # not in the daily view
            aggregate("FIXED", 20, "segment", "smb", 9, 9, 0, 9000, 0),  # not dimension 'all'
        ],
    )
    # A late pane for 06-20 replaces the first (version field updated_at).
    wh.upsert("feedback_aggregates", [aggregate("FIXED", 20, "all", "all", 3, 2, 1, 7000, 1)])
    return wh
