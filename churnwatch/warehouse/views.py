"""BI views over the DuckDB warehouse: stable, documented columns for dashboards and people.

Each view is declared once here with its description, its columns (name + doc, in select
order) and its SQL. ``create_views`` installs them (``CREATE OR REPLACE VIEW``), the
``churnwatch docs`` command renders them into ``docs/warehouse.md`` and a test checks that
the columns DuckDB reports for each view are exactly the documented ones, so docs cannot drift.

"Now" in these views is the warehouse's own clock, ``v_as_of.as_of``: the latest event or
alert time stored. That keeps views deterministic for replays and simulated data, and means
"last 12 months" is measured from the newest data, not from the wall clock of the reader.

A "day" is a customer day, ``v_customer_day.day_seconds``: 86400 s in production, less in
a compressed simulation (the demo runs 150 customer days in 75 s). The pipeline records
its day in the data it writes: each FIXED aggregate window is one customer day long. Views
that bucket by day use that length, aligned to the epoch like Beam's fixed windows, so a
demo run gives 150 daily rows, not one calendar date.
"""

from __future__ import annotations

from dataclasses import dataclass

from churnwatch.schemas import tables
from churnwatch.warehouse.alert_events import create_current_alerts
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse, ddl

#: Topic and data alerts (no customer) leave the open list after this many customer days
#: even if nobody resolves them; customer alerts stay open until resolved in the lifecycle.
OPEN_DAYS_NON_CUSTOMER = 7
#: One customer day's bucket (epoch-aligned, as Beam's FixedWindows) of a timestamp column.
DAY_MS = "CAST(round(d.day_seconds * 1000) AS BIGINT)"


def day_bucket(column: str) -> str:
    """SQL for the customer-day bucket of ``column``; needs ``v_customer_day d`` joined."""
    return f"time_bucket(to_milliseconds({DAY_MS}), {column}, TIMESTAMP '1970-01-01')"


def days_between(start: str, end: str) -> str:
    """SQL for customer days from ``start`` to ``end``; needs ``v_customer_day d`` joined."""
    return f"date_diff('millisecond', {start}, {end}) / ({DAY_MS})::DOUBLE"


def days_before(moment: str, days: float) -> str:
    """SQL for ``moment`` minus ``days`` customer days; needs ``v_customer_day d`` joined."""
    return f"{moment} - to_milliseconds(CAST(round({days} * d.day_seconds * 1000) AS BIGINT))"


#: Customers should answer a survey at least once a year.
SURVEY_CADENCE_DAYS = 365


def nps_trend_sql(bucket: str) -> str:
    """NPS/CSAT per time bucket (``bucket``: SQL over feedback_events, d = v_customer_day)."""
    return f"""
SELECT
    {bucket} AS day,
    CAST(round({days_between("d.first_day", bucket)}) AS INTEGER) AS day_number,
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
FROM feedback_events CROSS JOIN v_customer_day d
GROUP BY 1, 2
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
        "v_customer_day",
        "How long a customer day is in this warehouse (one row): the length of the "
        "pipeline's FIXED aggregate windows, which are one customer day each; 86400 s when "
        "no aggregate is stored yet.",
        (
            ("day_seconds", "Seconds of event time per customer day (86400 in production)."),
            ("recorded_in", "Where day_seconds comes from: feedback_aggregates or default."),
            (
                "first_day",
                "Start of the customer day of the earliest stored event (day 0); "
                "null when nothing is stored.",
            ),
        ),
        """
WITH fixed AS (
    SELECT min(date_diff('millisecond', window_start, window_end)) / 1000.0 AS day_seconds
    FROM feedback_aggregates WHERE window_kind = 'FIXED'
),
d AS (
    SELECT
        coalesce(day_seconds, 86400.0) AS day_seconds,
        CASE WHEN day_seconds IS NULL THEN 'default' ELSE 'feedback_aggregates' END
            AS recorded_in
    FROM fixed
)
SELECT
    d.day_seconds,
    d.recorded_in,
    time_bucket(
        to_milliseconds(CAST(round(d.day_seconds * 1000) AS BIGINT)),
        (SELECT min(t) FROM (
            SELECT min(occurred_at) AS t FROM feedback_events
            UNION ALL SELECT min(occurred_at) FROM customer_events
            UNION ALL SELECT min(window_start) FROM feedback_aggregates
        )),
        TIMESTAMP '1970-01-01'
    ) AS first_day
FROM d
""",
    ),
    View(
        "v_nps_trend",
        "NPS and CSAT per customer day (v_customer_day) from the stored feedback events; "
        "one row per day with answers.",
        (
            ("day", "Start of the customer day of the feedback (occurred_at), UTC."),
            ("day_number", "Customer days since v_customer_day.first_day (0 = first day)."),
            ("survey_responses", "Feedback events carrying an NPS or CSAT answer."),
            ("nps_answers", "Events with an NPS score."),
            ("promoters", "NPS answers 9-10."),
            ("passives", "NPS answers 7-8."),
            ("detractors", "NPS answers 0-6."),
            ("nps", "% promoters minus % detractors (-100..100); null on a day without NPS."),
            ("csat_answers", "Events with a CSAT score."),
            ("csat_mean", "Mean CSAT answer (1-5); null on a day without CSAT."),
        ),
        nps_trend_sql(day_bucket("occurred_at")),
    ),
    View(
        "v_silent_churn_share",
        "Churn per customer day split into silent and vocal, from the stored facts: each "
        "customer's first CANCELLATION or ACCOUNT_CLOSED event, silent when the detector "
        "raised a SILENT_CHURN alert for them (no complaint or low score in its lookback). "
        "Exactly once by construction (events and alerts are keyed); one row per day with churn.",
        (
            ("day", "Start of the customer day of the churn (occurred_at), UTC."),
            ("day_number", "Customer days since v_customer_day.first_day (0 = first day)."),
            ("churned_customers", "Customers who cancelled or closed their account that day."),
            ("silent_churned", "Of those, churned without a complaint (SILENT_CHURN alert)."),
            ("vocal_churned", "Of those, churned after complaining (no SILENT_CHURN alert)."),
            ("silent_share", "silent_churned / churned_customers (0..1)."),
            ("silent_revenue_lost", "Annualised revenue of that day's silent churners."),
        ),
        f"""
WITH churn AS (
    SELECT customer_id, min(occurred_at) AS churned_at
    FROM customer_events
    WHERE type IN ('CANCELLATION', 'ACCOUNT_CLOSED')
    GROUP BY 1
),
silent AS (
    SELECT customer_id, max(revenue_at_risk) AS revenue
    FROM churn_alerts
    WHERE alert_type = 'SILENT_CHURN'
    GROUP BY 1
)
SELECT
    {day_bucket("c.churned_at")} AS day,
    CAST(round({days_between("d.first_day", day_bucket("c.churned_at"))}) AS INTEGER)
        AS day_number,
    count(*) AS churned_customers,
    count(s.customer_id) AS silent_churned,
    count(*) - count(s.customer_id) AS vocal_churned,
    count(s.customer_id)::DOUBLE / count(*) AS silent_share,
    coalesce(sum(s.revenue), 0.0) AS silent_revenue_lost
FROM churn c
CROSS JOIN v_customer_day d
LEFT JOIN silent s USING (customer_id)
GROUP BY 1, 2
ORDER BY 1
""",
    ),
    View(
        "v_open_alerts",
        f"Alerts still needing action: OPEN or ACKNOWLEDGED in the lifecycle (current_alerts; "
        f"people resolve them with `churnwatch alerts`, later customer events with "
        f"`churnwatch alerts reconcile`). Topic and data alerts also drop out "
        f"{OPEN_DAYS_NON_CUSTOMER} customer days after detected_at, measured on v_as_of.",
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
            ("age_days", "Customer days from detected_at to v_as_of."),
            ("state", "OPEN (nobody acted yet) or ACKNOWLEDGED."),
            ("acknowledged_by", "Who took the alert; null while OPEN."),
        ),
        f"""
SELECT
    a.alert_id, a.alert_type, a.severity, a.owner, a.customer_id, a.topic, a.detected_at,
    a.revenue_at_risk, a.authority_limit,
    a.revenue_at_risk > a.authority_limit AS above_authority,
    {days_between("a.detected_at", "o.as_of")} AS age_days,
    a.state,
    a.acknowledged_by
FROM current_alerts a
CROSS JOIN v_as_of o
CROSS JOIN v_customer_day d
WHERE a.state IN ('OPEN', 'ACKNOWLEDGED')
    AND (a.customer_id IS NOT NULL
        OR a.detected_at > {days_before("o.as_of", OPEN_DAYS_NON_CUSTOMER)})
ORDER BY a.revenue_at_risk DESC, a.alert_id
""",
    ),
    View(
        "v_revenue_at_risk_by_owner",
        "Per routing owner: all alerts ever routed to them and what is open. Revenue at risk "
        "counts each customer once (their largest open alert): a customer with three open "
        "alerts is one customer's revenue, not three.",
        (
            ("owner", "Routing-policy owner."),
            ("alerts", "All alerts routed to this owner (one per alert_id)."),
            ("open_alerts", "Alerts of this owner in v_open_alerts."),
            (
                "open_revenue_at_risk",
                "Revenue at risk of the open customers (and topic/data "
                "alerts), each counted once; 0 if none.",
            ),
            (
                "open_above_authority",
                "Open customers (or topic/data alerts) whose revenue "
                "exceeds the owner's authority.",
            ),
        ),
        """
WITH raised AS (
    SELECT owner, count(*) AS alerts FROM current_alerts GROUP BY 1
),
subjects AS (
    SELECT
        owner,
        coalesce(customer_id, alert_id) AS subject,
        count(*) AS open_alerts,
        max(revenue_at_risk) AS revenue,
        bool_or(above_authority) AS above
    FROM v_open_alerts
    GROUP BY 1, 2
),
open_by_owner AS (
    SELECT
        owner,
        sum(open_alerts) AS open_alerts,
        sum(revenue) AS revenue,
        count(*) FILTER (WHERE above) AS above
    FROM subjects
    GROUP BY 1
)
SELECT
    r.owner,
    r.alerts,
    coalesce(o.open_alerts, 0) AS open_alerts,
    coalesce(o.revenue, 0.0) AS open_revenue_at_risk,
    coalesce(o.above, 0) AS open_above_authority
FROM raised r
LEFT JOIN open_by_owner o USING (owner)
ORDER BY open_revenue_at_risk DESC, r.owner
""",
    ),
    View(
        "v_alert_funnel",
        "The alert funnel per owner and alert type: raised, acknowledged, and how they ended "
        "(current_alerts). An alert counts as acknowledged if a person ever took it.",
        (
            ("owner", "Routing-policy owner."),
            ("alert_type", "SILENT_CHURN, AT_RISK_SILENT, ISSUE_SPIKE or DATA_QUALITY."),
            ("raised", "Alerts raised (one per alert_id)."),
            ("acknowledged", "Alerts a person acknowledged (whatever happened next)."),
            ("saved", "Resolved SAVED by a person."),
            ("lost", "Resolved LOST (by a person or from a later cancellation)."),
            ("not_a_risk", "Resolved NOT_A_RISK by a person."),
            ("recovered", "Resolved RECOVERED: the customer became active again."),
            ("still_open", "OPEN or ACKNOWLEDGED now."),
        ),
        """
SELECT
    owner,
    alert_type,
    count(*) AS raised,
    count(acknowledged_at) AS acknowledged,
    count(*) FILTER (WHERE state = 'SAVED') AS saved,
    count(*) FILTER (WHERE state = 'LOST') AS lost,
    count(*) FILTER (WHERE state = 'NOT_A_RISK') AS not_a_risk,
    count(*) FILTER (WHERE state = 'RECOVERED') AS recovered,
    count(*) FILTER (WHERE state IN ('OPEN', 'ACKNOWLEDGED')) AS still_open
FROM current_alerts
GROUP BY 1, 2
ORDER BY 1, 2
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
            ("days_since_survey", "Customer days from last_survey_at to v_as_of; null if never."),
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
    {days_between("s.last_survey_at", "o.as_of")} AS days_since_survey,
    s.last_survey_at IS NULL
        OR s.last_survey_at <= {days_before("o.as_of", SURVEY_CADENCE_DAYS)} AS overdue
FROM customers c
CROSS JOIN v_as_of o
CROSS JOIN v_customer_day d
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


def create_views(warehouse: DuckDBWarehouse, temporary: bool = False) -> list[str]:
    """Create every table (empty if new) and every view; idempotent. Returns view names.

    ``temporary``: for a warehouse opened read-only (the report): the views live in the
    connection only, and a table the file does not have yet (an older warehouse) is
    stood in for by an empty temporary one, so the report still renders.
    """
    if temporary:
        existing = {r[0] for r in warehouse.query("SELECT table_name FROM duckdb_tables()")}
        for name, spec in tables().items():
            if name not in existing:
                warehouse.query(ddl(spec).replace("CREATE TABLE", "CREATE TEMP TABLE", 1))
    else:
        warehouse.ensure_tables()
    create_current_alerts(warehouse, temporary)
    kind = "TEMP VIEW" if temporary else "VIEW"
    for v in VIEWS:
        warehouse.query(v.create_statement().replace("VIEW", kind, 1))
        if not temporary:
            quoted = v.doc.replace("'", "''")
            warehouse.query(f"COMMENT ON VIEW {v.name} IS '{quoted}'")
    return [v.name for v in VIEWS]
