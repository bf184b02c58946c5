"""BI views over the DuckDB warehouse: stable, documented columns for dashboards and people.

Each view is declared once here with its description, its columns (name + doc, in select
order) and its SQL. ``create_views`` installs them (``CREATE OR REPLACE VIEW``), the
``churnwatch docs`` command renders them into ``docs/warehouse.md`` and a test checks that
the columns DuckDB reports for each view are exactly the documented ones, so docs cannot drift.

"Now" in these views is the warehouse's own clock, ``v_as_of.as_of``: the latest event or
alert time stored. That keeps views deterministic for replays and simulated data, and means
"last 12 months" is measured from the newest data, not from the wall clock of the reader.
"""

from __future__ import annotations

from dataclasses import dataclass

from churnwatch.warehouse.duckdb_store import DuckDBWarehouse

#: An alert about a customer stays open until the customer is seen again (purchase,
#: renewal, signup or any feedback) after the alert; other alerts stay open this long.
OPEN_DAYS_NON_CUSTOMER = 7
#: Customers should answer a survey at least once a year.
SURVEY_CADENCE_DAYS = 365


def nps_trend_sql(bucket: str) -> str:
    """NPS/CSAT per time bucket; the view buckets by UTC day, the demo report by sim day."""
    return f"""
SELECT
    {bucket} AS day,
    count(*) FILTER (WHERE nps_score IS NOT NULL OR csat_score IS NOT NULL) AS survey_responses,
    count(nps_score) AS nps_answers,
    count(*) FILTER (WHERE nps_score >= 9) AS promoters,
    count(*) FILTER (WHERE nps_score BETWEEN 7 AND 8) AS passives,
    count(*) FILTER (WHERE nps_score <= 6) AS detractors,
    CASE WHEN count(nps_score) > 0 THEN 100.0 * (
        count(*) FILTER (WHERE nps_score >= 9) - count(*) FILTER (WHERE nps_score <= 6)
    ) / count(nps_score) END AS nps,
    count(csat_score) AS csat_answers,
    avg(csat_score) AS csat_mean
FROM feedback_events
GROUP BY 1
HAVING count(*) FILTER (WHERE nps_score IS NOT NULL OR csat_score IS NOT NULL) > 0
ORDER BY 1
"""


@dataclass(frozen=True)
class View:
    name: str
    doc: str
    columns: tuple[tuple[str, str], ...]  # (column, description) in select order
    sql: str

    def __post_init__(self) -> None:
        if not self.name.startswith("v_") or not self.columns or not self.doc:
            raise ValueError(f"view {self.name!r}: needs a v_ name, a doc and documented columns")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)

    def create_statement(self) -> str:
        return f"CREATE OR REPLACE VIEW {self.name} AS\n{self.sql.strip()}"


VIEWS: tuple[View, ...] = (
    View(
        "v_as_of",
        "The warehouse clock: the newest event or alert time stored (one row).",
        (("as_of", "Latest of feedback/customer occurred_at and alert detected_at (UTC)."),),
        """
SELECT greatest(
    coalesce((SELECT max(occurred_at) FROM feedback_events), TIMESTAMP '1970-01-01'),
    coalesce((SELECT max(occurred_at) FROM customer_events), TIMESTAMP '1970-01-01'),
    coalesce((SELECT max(detected_at) FROM churn_alerts), TIMESTAMP '1970-01-01')
) AS as_of
""",
    ),
    View(
        "v_nps_trend",
        "Daily NPS and CSAT from the stored feedback events (one row per UTC day with answers).",
        (
            ("day", "UTC day of the feedback (occurred_at)."),
            ("survey_responses", "Feedback events carrying an NPS or CSAT answer."),
            ("nps_answers", "Events with an NPS score."),
            ("promoters", "NPS answers 9-10."),
            ("passives", "NPS answers 7-8."),
            ("detractors", "NPS answers 0-6."),
            ("nps", "% promoters minus % detractors (-100..100); null on a day without NPS."),
            ("csat_answers", "Events with a CSAT score."),
            ("csat_mean", "Mean CSAT answer (1-5); null on a day without CSAT."),
        ),
        nps_trend_sql("CAST(date_trunc('day', occurred_at) AS DATE)"),
    ),
    View(
        "v_silent_churn_share",
        "Daily churn split into silent and vocal, from the pipeline's fixed daily aggregates "
        "(dimension 'all'); late panes have already replaced earlier ones.",
        (
            ("day", "UTC day (window_start of the FIXED daily window)."),
            ("churned_customers", "Customers who cancelled or closed their account that day."),
            ("silent_churned", "Churned without a complaint or low score in the lookback."),
            ("vocal_churned", "Churned after complaining."),
            ("silent_share", "silent_churned / churned_customers (0..1); null without churn."),
            ("revenue_lost", "Annualised revenue of that day's churned customers."),
        ),
        """
SELECT
    CAST(window_start AS DATE) AS day,
    churned_customers,
    silent_churned,
    vocal_churned,
    CASE WHEN churned_customers > 0
        THEN silent_churned::DOUBLE / churned_customers END AS silent_share,
    revenue_lost
FROM feedback_aggregates
WHERE window_kind = 'FIXED' AND dimension = 'all'
ORDER BY 1
""",
    ),
    View(
        "v_open_alerts",
        f"Alerts still needing action. A customer alert is open until that customer is seen "
        f"again (signup, purchase, renewal or any feedback) after detected_at; other alerts "
        f"are open for {OPEN_DAYS_NON_CUSTOMER} days after detected_at, measured on v_as_of.",
        (
            ("alert_id", "Deterministic alert id (churn_alerts.alert_id)."),
            ("alert_type", "SILENT_CHURN, AT_RISK_SILENT, ISSUE_SPIKE or DATA_QUALITY."),
            ("severity", "LOW, MEDIUM, HIGH or CRITICAL."),
            ("owner", "Routing-policy owner who acts next."),
            ("customer_id", "Customer the alert is about; null for topic/data alerts."),
            ("topic", "Feedback topic of an ISSUE_SPIKE; null otherwise."),
            ("detected_at", "Event time the condition was detected (UTC)."),
            ("revenue_at_risk", "Annualised revenue at stake."),
            ("authority_limit", "What the owner may spend without asking."),
            ("above_authority", "True when revenue_at_risk exceeds the owner's authority."),
            ("age_days", "Days from detected_at to v_as_of."),
        ),
        f"""
WITH seen AS (
    SELECT customer_id, max(occurred_at) AS last_seen FROM (
        SELECT customer_id, occurred_at FROM customer_events
        WHERE type IN ('SIGNUP', 'PURCHASE', 'RENEWAL')
        UNION ALL
        SELECT customer_id, occurred_at FROM feedback_events
    ) GROUP BY 1
)
SELECT
    a.alert_id, a.alert_type, a.severity, a.owner, a.customer_id, a.topic, a.detected_at,
    a.revenue_at_risk, a.authority_limit,
    a.revenue_at_risk > a.authority_limit AS above_authority,
    date_diff('second', a.detected_at, o.as_of) / 86400.0 AS age_days
FROM churn_alerts a
CROSS JOIN v_as_of o
LEFT JOIN seen s ON s.customer_id = a.customer_id
WHERE CASE WHEN a.customer_id IS NOT NULL
    THEN s.last_seen IS NULL OR s.last_seen <= a.detected_at
    ELSE a.detected_at > o.as_of - INTERVAL {OPEN_DAYS_NON_CUSTOMER} DAY END
ORDER BY a.revenue_at_risk DESC, a.alert_id
""",
    ),
    View(
        "v_revenue_at_risk_by_owner",
        "Per routing owner: all alerts ever routed to them and the open ones with revenue at risk.",
        (
            ("owner", "Routing-policy owner."),
            ("alerts", "All alerts routed to this owner."),
            ("open_alerts", "Alerts of this owner in v_open_alerts."),
            ("open_revenue_at_risk", "Sum of revenue_at_risk over the open alerts (0 if none)."),
            ("open_above_authority", "Open alerts whose revenue exceeds the owner's authority."),
        ),
        """
SELECT
    a.owner,
    count(*) AS alerts,
    count(o.alert_id) AS open_alerts,
    coalesce(sum(o.revenue_at_risk), 0.0) AS open_revenue_at_risk,
    count(*) FILTER (WHERE o.above_authority) AS open_above_authority
FROM churn_alerts a
LEFT JOIN v_open_alerts o USING (alert_id)
GROUP BY 1
ORDER BY open_revenue_at_risk DESC, owner
""",
    ),
    View(
        "v_top_spiking_topics",
        "Feedback topics by ISSUE_SPIKE alerts raised (most spikes first).",
        (
            ("topic", "Feedback topic that spiked."),
            ("spikes", "ISSUE_SPIKE alerts raised for the topic."),
            ("affected_customers", "Sum of affected_customers over those alerts."),
            ("last_detected_at", "Most recent spike detection (UTC)."),
        ),
        """
SELECT
    coalesce(topic, 'unknown') AS topic,
    count(*) AS spikes,
    coalesce(sum(affected_customers), 0) AS affected_customers,
    max(detected_at) AS last_detected_at
FROM churn_alerts
WHERE alert_type = 'ISSUE_SPIKE'
GROUP BY 1
ORDER BY spikes DESC, affected_customers DESC, topic
""",
    ),
    View(
        "v_survey_cadence",
        f"Every known active customer with their last survey answer; customers should answer "
        f"at least once every {SURVEY_CADENCE_DAYS} days. Customers whose latest lifecycle "
        f"event is a cancellation or closure are left out.",
        (
            ("customer_id", "Customer seen in customer_events or feedback_events."),
            ("last_survey_at", "Latest feedback with an NPS or CSAT answer; null if never."),
            ("days_since_survey", "Days from last_survey_at to v_as_of; null if never."),
            ("overdue", f"True when not surveyed in the last {SURVEY_CADENCE_DAYS} days."),
        ),
        f"""
WITH customers AS (
    SELECT customer_id FROM customer_events
    UNION SELECT customer_id FROM feedback_events
),
lifecycle AS (
    SELECT customer_id, arg_max(type, occurred_at) AS last_type
    FROM customer_events GROUP BY 1
),
surveys AS (
    SELECT customer_id, max(occurred_at) AS last_survey_at
    FROM feedback_events
    WHERE nps_score IS NOT NULL OR csat_score IS NOT NULL
    GROUP BY 1
)
SELECT
    c.customer_id,
    s.last_survey_at,
    date_diff('second', s.last_survey_at, o.as_of) / 86400.0 AS days_since_survey,
    s.last_survey_at IS NULL
        OR s.last_survey_at <= o.as_of - INTERVAL {SURVEY_CADENCE_DAYS} DAY AS overdue
FROM customers c
CROSS JOIN v_as_of o
LEFT JOIN lifecycle l USING (customer_id)
LEFT JOIN surveys s USING (customer_id)
WHERE coalesce(l.last_type, '') NOT IN ('CANCELLATION', 'ACCOUNT_CLOSED')
ORDER BY overdue DESC, days_since_survey DESC NULLS FIRST, c.customer_id
""",
    ),
)


def view(name: str) -> View:
    for v in VIEWS:
        if v.name == name:
            return v
    raise KeyError(f"no view named {name!r}")


def create_views(warehouse: DuckDBWarehouse) -> list[str]:
    """Create every table (empty if new) and every view; idempotent. Returns view names."""
    warehouse.ensure_tables()
    for v in VIEWS:
        warehouse.query(v.create_statement())
        quoted = v.doc.replace("'", "''")
        warehouse.query(f"COMMENT ON VIEW {v.name} IS '{quoted}'")
    return [v.name for v in VIEWS]
