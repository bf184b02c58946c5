"""What a run did, in numbers: from the warehouse and the pipeline's metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from churnwatch.warehouse.duckdb_store import DuckDBWarehouse


def counters(result) -> dict[str, int]:
    """Committed counter values of a finished PipelineResult, by metric name."""
    out: dict[str, int] = {}
    for counter in result.metrics().query()["counters"]:
        # The streaming DirectRunner reports some counters as attempted only.
        value = max(int(counter.committed or 0), int(counter.attempted or 0))
        out[counter.key.metric.name] = out.get(counter.key.metric.name, 0) + value
    return out


def warehouse_summary(path: str) -> dict[str, Any]:
    wh = DuckDBWarehouse(path)
    try:
        tables = {
            name: wh.count(name)
            for (name,) in wh.query(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_type = 'BASE TABLE' ORDER BY 1"  # the views are not rows
            )
        }
        dead_by_stage = dict(
            wh.query("SELECT stage, count(*) FROM dead_letters GROUP BY stage ORDER BY stage")
        )
        return {"tables": tables, "dead_letters_by_stage": dead_by_stage}
    finally:
        wh.close()


def top_alerts(path: str, limit: int = 10) -> str:
    """The alerts a support lead would look at first, as a readable table."""
    wh = DuckDBWarehouse(path)
    try:
        rows = wh.query(
            "SELECT alert_type, severity, customer_id, revenue_at_risk, p_alive, "
            "days_since_last_activity, owner, authority_limit, reason_codes "
            "FROM churn_alerts WHERE customer_id IS NOT NULL "
            "ORDER BY revenue_at_risk DESC, detected_at LIMIT ?",
            [limit],
        )
        by_type = dict(wh.query("SELECT alert_type, count(*) FROM churn_alerts GROUP BY 1"))
    finally:
        wh.close()
    if not rows:
        return "no churn alerts"
    head = (
        f"{'type':15} {'sev':8} {'customer':9} {'at risk/yr':>11} {'P(alive)':>8} "
        f"{'quiet d':>7}  {'owner (may grant)':28} reasons"
    )
    lines = [f"churn alerts: {by_type}", head, "-" * len(head)]
    for t, sev, cid, revenue, alive, quiet, owner, limit_, reasons in rows:
        alive_s = "-" if alive is None else f"{alive:.2f}"
        quiet_s = "-" if quiet is None else f"{quiet:.0f}"
        lines.append(
            f"{t:15} {sev:8} {cid:9} {revenue:>11,.0f} {alive_s:>8} {quiet_s:>7}  "
            f"{owner + f' ({limit_:,.0f})':28} {', '.join(reasons)}"
        )
    return "\n".join(lines)


def render(
    published: Mapping[str, int], warehouse: Mapping[str, Any], metrics: Mapping[str, int]
) -> str:
    lines = ["", "Churnwatch run summary", "======================"]
    lines.append("messages published:")
    for key, value in sorted(published.items()):
        lines.append(f"  {key:28s} {value:>8,}")
    lines.append("rows in the warehouse:")
    for key, value in warehouse["tables"].items():
        lines.append(f"  {key:28s} {value:>8,}")
    lines.append("dead letters by stage:")
    for key, value in (warehouse["dead_letters_by_stage"] or {"(none)": 0}).items():
        lines.append(f"  {key:28s} {value:>8,}")
    rows = sum(warehouse["tables"].get(t, 0) for t in ("feedback_events", "customer_events"))
    dead = sum(warehouse["dead_letters_by_stage"].values())
    read = metrics.get("messages_read")
    if read is not None:
        lines.append(f"messages read (with redeliveries): {read:>4,}")
    lines.extend(accounting(published, rows, dead))
    return "\n".join(lines)


def accounting(published: Mapping[str, int], rows: int, dead: int) -> list[str]:
    """Every published message is a row, a dead letter or a duplicate of a row; the rest
    is a loss, and is printed as one (never folded into "duplicates dropped").

    Rows are unique by event id, so ``rows`` counts first occurrences; the duplicates are
    what the producer sent twice (the ``*_duplicate`` published counts).
    """
    total = published.get("total", 0)
    duplicates = sum(v for k, v in published.items() if k.endswith("_duplicate"))
    malformed = sum(v for k, v in published.items() if k.endswith("_malformed"))
    valid = total - duplicates - malformed
    lost_rows, lost_dead = valid - rows, malformed - dead
    lines = [
        f"rows (unique events):          {rows:>8,} of {valid:,} sent",
        f"dead letters:                  {dead:>8,} of {malformed:,} malformed sent",
        f"duplicates dropped:            {duplicates:>8,}",
    ]
    lost = max(lost_rows, 0) + max(lost_dead, 0)
    lines.append(
        f"LOST:                          {lost:>8,}"
        if lost
        else "lost:                                 0"
    )
    if lost_rows < 0 or lost_dead < 0:
        lines.append("(more rows or dead letters than sent: a reused warehouse or subscription?)")
    return lines


def alert_load(path: str, day_seconds: float) -> dict[str, float]:
    """What the AT_RISK list asks of its readers: alerts (one per episode) per 1,000 active
    customers per month, the share of customers ever alerted and those alerted in more than
    one episode. Months are customer months (``day_seconds`` per day), a customer is active
    from their first event until they cancel."""
    wh = DuckDBWarehouse(path)
    try:
        [(months, customers)] = wh.query(
            "WITH span AS (SELECT max(epoch_ms(occurred_at)) AS last_ms FROM customer_events), "
            "life AS (SELECT customer_id, min(epoch_ms(occurred_at)) AS first_ms, "
            "min(epoch_ms(occurred_at)) FILTER (WHERE type IN ('CANCELLATION', "
            "'ACCOUNT_CLOSED')) AS churn_ms FROM customer_events GROUP BY customer_id) "
            "SELECT sum(coalesce(churn_ms, span.last_ms) - first_ms) / ? , count(*) "
            "FROM life, span",
            [day_seconds * 1000 * 30.44],
        )
        [(alerts, alerted, twice)] = wh.query(
            "WITH a AS (SELECT customer_id, count(DISTINCT alert_id) AS n FROM churn_alerts "
            "WHERE alert_type = 'AT_RISK_SILENT' GROUP BY customer_id) "
            "SELECT coalesce(sum(n), 0), count(*), count(*) FILTER (WHERE n > 1) FROM a"
        )
    finally:
        wh.close()
    return {
        "at_risk_alerts": int(alerts),
        "per_1000_customers_per_month": round(1000 * alerts / months, 2) if months else 0.0,
        "customers_ever_alerted": round(alerted / customers, 4) if customers else 0.0,
        "customers_alerted_in_two_episodes_or_more": int(twice),
    }


def render_alert_load(load: Mapping[str, float]) -> str:
    return (
        f"AT_RISK_SILENT load: {load['at_risk_alerts']:,} alerts (one per episode) = "
        f"{load['per_1000_customers_per_month']:.1f} per 1,000 active customers per month; "
        f"{load['customers_ever_alerted']:.1%} of customers ever alerted, "
        f"{load['customers_alerted_in_two_episodes_or_more']} in more than one episode"
    )
