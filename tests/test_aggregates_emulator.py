"""End to end on the real emulator: a simulated month fills feedback_aggregates and raises
exactly one ISSUE_SPIKE alert for the injected checkout_bug burst."""

from __future__ import annotations

import threading

import pytest

from churnwatch.clock import now_ms
from churnwatch.publish import publish_messages
from churnwatch.simulate import SPIKE_TOPIC, SimConfig, simulate
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from pipelines import streaming

pytestmark = pytest.mark.emulator

DAY_SECONDS = 0.05  # 60 customer days in 3 s of event time


def test_simulated_run_fills_aggregates_and_raises_the_spike(topics, tmp_path):
    # Published in real time (paced) from 3 s ahead, like `make demo`: revenue events come
    # before the reports that need them. A busy pipeline reads events seconds after the
    # local watermark (wall clock - 2 s) passed their 0.05 s windows; the default
    # lateness floor (--min_allowed_lateness_seconds=60 of wall clock, vs 3 days = 0.15 s
    # here) keeps them: they update their window's row in a late pane.
    sim = simulate(
        SimConfig(
            customers=120,
            days=60,
            seed=5,
            day_seconds=DAY_SECONDS,
            start_ms=now_ms() + 3000,
            spike=True,
        )
    )
    publisher = threading.Thread(
        target=publish_messages,
        args=(sim.messages, {s: topics[s]["topic"] for s in ("feedback", "customer")}),
        kwargs={"paced": True, "progress": False},
        daemon=True,
    )
    publisher.start()
    db = tmp_path / "wh.duckdb"
    streaming.run(
        [
            f"--feedback_subscription={topics['feedback']['subscription']}",
            f"--customer_subscription={topics['customer']['subscription']}",
            f"--warehouse=duckdb://{db}",
            f"--day_seconds={DAY_SECONDS}",
            "--idle_stop_seconds=6",
        ]
    )
    publisher.join(timeout=60)
    reporters = {r["customer_id"] for r in sim.events["feedback"] if r["topic"] == SPIKE_TOPIC}
    wh = DuckDBWarehouse(db)
    try:
        events = wh.count("feedback_events") + wh.count("customer_events")
        assert events == len(sim.messages)  # no noise injected: every message is a row
        fixed_all = wh.query(
            "SELECT sum(events), sum(churned_customers), sum(silent_churned),"
            " sum(vocal_churned), count(*) FILTER (WHERE pane_timing = 'UNKNOWN')"
            " FROM feedback_aggregates WHERE window_kind = 'FIXED' AND dimension = 'all'"
        )[0]
        # Daily rows partition event time: together they hold every event exactly once.
        assert fixed_all[0] == events
        churned = wh.query(
            "SELECT count(DISTINCT customer_id) FROM customer_events"
            " WHERE type IN ('CANCELLATION', 'ACCOUNT_CLOSED')"
        )[0][0]
        assert churned > 0 and fixed_all[1] == churned
        # Every churn got a silent / vocal verdict from the detector's outcomes.
        assert fixed_all[2] + fixed_all[3] == churned
        assert fixed_all[4] == 0
        per_dim = dict(
            wh.query(
                "SELECT dimension, sum(events) FROM feedback_aggregates"
                " WHERE window_kind = 'FIXED' GROUP BY 1"
            )
        )
        # Every dimension partitions the same events ('unknown' included); customer events
        # count only under all / segment / audience.
        feedback_n = wh.count("feedback_events")
        assert per_dim["all"] == per_dim["segment"] == per_dim["audience"] == events
        assert per_dim["channel"] == per_dim["topic"] == per_dim["cause"] == feedback_n

        spikes = wh.query(
            "SELECT topic, owner, affected_customers, revenue_at_risk, len(example_event_ids)"
            " FROM churn_alerts WHERE alert_type = 'ISSUE_SPIKE'"
        )
        assert len(spikes) == 1, spikes  # one burst, one alert; no other topic spiked
        topic, owner, affected, revenue, examples = spikes[0]
        assert (topic, owner, examples) == (SPIKE_TOPIC, "product_quality_lead", 5)
        # The burst is spread over 2 days; the first 2-day window that holds >= 5 of its
        # reporters (--spike_min_customers) raises the alert with that window's count.
        assert 5 <= affected <= len(reporters)
        assert revenue > 0
    finally:
        wh.close()
