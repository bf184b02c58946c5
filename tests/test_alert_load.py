"""The demo's AT_RISK load figure, from a real DuckDB file."""

from __future__ import annotations

from churnwatch import schemas
from churnwatch.summary import alert_load, render_alert_load
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from tests.helpers import at_risk_alert

DAY = 86_400_000
MONTH = 30.44 * DAY


def event(cid: str, at: float, type_: str) -> dict:
    return {
        "event_id": f"{cid}-{type_}-{at}",
        "customer_id": cid,
        "occurred_at": int(at),
        "type": type_,
        "message_id": f"m-{cid}-{at}",
        "publish_time": int(at),
        "schema_revision": schemas.load(schemas.CUSTOMER_EVENT).revision,
    }


def alert(alert_id: str, cid: str, revision: int) -> dict:
    return at_risk_alert(alert_id, cid, revision, DAY)


def test_alert_load_counts_episodes_per_active_customer_month(tmp_path):
    path = str(tmp_path / "w.duckdb")
    wh = DuckDBWarehouse(path)
    try:
        wh.upsert(
            "customer_events",
            [
                event("A", 0, "SIGNUP"),
                event("A", 2 * MONTH, "PURCHASE"),  # A: two months on the books
                event("B", 0, "SIGNUP"),
                event("B", MONTH, "CANCELLATION"),  # B: one month, then gone
            ],
        )
        # A: two episodes (a1 updated once: still one alert), B: one
        wh.upsert(
            "churn_alerts",
            [alert("a1", "A", 0), alert("a1", "A", 1), alert("a2", "A", 0), alert("b1", "B", 0)],
        )
    finally:
        wh.close()
    load = alert_load(path, day_seconds=86400.0)
    assert load["at_risk_alerts"] == 3
    assert load["per_1000_customers_per_month"] == 1000.0  # 3 alerts over 3 customer-months
    assert load["customers_ever_alerted"] == 1.0
    assert load["customers_alerted_in_two_episodes_or_more"] == 1
    assert "3 alerts (one per episode) = 1000.0 per 1,000 active customers per month; " in (
        render_alert_load(load)
    )
