"""End to end on the real emulator: publish, run the streaming pipeline, count rows."""

from __future__ import annotations

import time

import pytest

from churnwatch.publish import publish_messages
from churnwatch.simulate import DUPLICATE, MALFORMED, SimConfig, simulate
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from pipelines import streaming

pytestmark = pytest.mark.emulator


def run_pipeline(topics, warehouse_path, *extra: str):
    return streaming.run(
        [
            f"--feedback_subscription={topics['feedback']['subscription']}",
            f"--customer_subscription={topics['customer']['subscription']}",
            f"--warehouse=duckdb://{warehouse_path}",
            "--idle_stop_seconds=4",
            *extra,
        ]
    )


def test_every_message_ends_as_one_row_or_one_dead_letter(topics, tmp_path):
    sim = simulate(
        SimConfig(
            customers=60,
            days=60,
            seed=11,
            malformed_rate=0.08,
            duplicate_rate=0.06,
            late_rate=0.02,
            out_of_order_rate=0.05,
            json_rate=0.2,
        )
    )
    sent = {
        label: [m for m in sim.messages if m.label == label]
        for label in ("valid", MALFORMED, DUPLICATE)
    }
    assert sent[MALFORMED] and sent[DUPLICATE], "the scenario must exercise both paths"
    publish_messages(
        sim.messages,
        {s: topics[s]["topic"] for s in ("feedback", "customer")},
        progress=False,
    )
    db = tmp_path / "wh.duckdb"
    run_pipeline(topics, db)

    wh = DuckDBWarehouse(db)
    try:
        n, k, d = len(sim.messages), len(sent[MALFORMED]), len(sent[DUPLICATE])
        rows = wh.count("feedback_events") + wh.count("customer_events")
        assert rows == n - k - d
        assert wh.count("dead_letters") == k
        stored = {bytes(p) for (p,) in wh.query("SELECT payload FROM dead_letters")}
        assert stored == {m.data for m in sent[MALFORMED]}  # raw bytes, untouched
        valid_ids = {m.event_id for m in sent["valid"]}
        got_ids = {
            r[0]
            for r in wh.query(
                "SELECT event_id FROM feedback_events "
                "UNION ALL SELECT event_id FROM customer_events"
            )
        }
        assert got_ids == valid_ids
    finally:
        wh.close()


def test_quiet_subscription_does_not_stall_the_busy_one(topics, tmp_path):
    """Only customer events arrive; feedback stays empty. The stock read took 146 s for 50."""
    sim = simulate(SimConfig(customers=40, days=30, seed=3, spike=False))
    customer_only = [m for m in sim.messages if m.source == "customer"][:300]
    publish_messages(customer_only, {"customer": topics["customer"]["topic"]}, progress=False)
    db = tmp_path / "wh.duckdb"
    started = time.monotonic()
    run_pipeline(topics, db)
    elapsed = time.monotonic() - started
    wh = DuckDBWarehouse(db)
    try:
        assert wh.count("customer_events") == len(customer_only)
        assert wh.count("feedback_events") == 0
    finally:
        wh.close()
    # Not a timing assertion on speed: it proves the idle stop drained (a stalled read
    # would hold each pull ~29 s and take minutes for 300 messages at 10 per pull).
    assert elapsed < 120, f"run took {elapsed:.0f}s: the quiet subscription stalled the read"


def test_newer_writer_revision_is_read_by_the_running_pipeline(topics, tmp_path):
    """A producer upgraded to revision 2 (added optional `language`) keeps flowing."""
    from google.cloud import pubsub_v1

    from churnwatch.wire import attributes_for, encode_binary
    from tests.helpers import WRITER_SCHEMAS, feedback, v2_feedback_schema

    v2 = v2_feedback_schema()
    publisher = pubsub_v1.PublisherClient()
    records = [{**feedback(f"fe-v2-{i}"), "language": "de"} for i in range(5)]
    for record in records:
        publisher.publish(
            topics["feedback"]["topic"], encode_binary(v2, record), **attributes_for(v2, record)
        ).result()
    db = tmp_path / "wh.duckdb"
    run_pipeline(topics, db, f"--writer_schemas_dir={WRITER_SCHEMAS}")
    wh = DuckDBWarehouse(db)
    try:
        assert wh.count("dead_letters") == 0
        revisions = wh.query("SELECT DISTINCT schema_revision FROM feedback_events")
        assert wh.count("feedback_events") == 5
        from churnwatch.schemas import schema_revision

        assert revisions == [(schema_revision(v2),)]  # the revision is recorded per row
    finally:
        wh.close()


def test_alerts_reach_the_table_and_the_alerts_topic_once(topics, tmp_path):
    """Silent churners raise exactly one SILENT_CHURN each, in DuckDB and on the topic."""
    from google.cloud import pubsub_v1

    from churnwatch import schemas
    from churnwatch.wire import WriterSchemas

    sim = simulate(
        SimConfig(customers=60, days=120, seed=21, day_seconds=0.5, duplicate_rate=0.1, spike=False)
    )
    silent = {t.customer_id for t in sim.truth if t.churned and t.silent}
    assert len(silent) >= 5, "the scenario needs silent churners"
    publish_messages(
        sim.messages, {s: topics[s]["topic"] for s in ("feedback", "customer")}, progress=False
    )
    db = tmp_path / "wh.duckdb"
    run_pipeline(topics, db, "--day_seconds=0.5", f"--alerts_topic={topics['alerts']['topic']}")

    wh = DuckDBWarehouse(db)
    try:
        rows = wh.query(
            "SELECT customer_id, count(*) FROM churn_alerts "
            "WHERE alert_type = 'SILENT_CHURN' GROUP BY 1"
        )
        table_ids = {r[0] for r in wh.query("SELECT alert_id FROM churn_alerts")}
        owners = {r[0] for r in wh.query("SELECT DISTINCT owner FROM churn_alerts")}
    finally:
        wh.close()
    assert {cid for cid, _ in rows} == silent  # exact, despite 10% redelivered messages
    assert all(n == 1 for _, n in rows)
    assert owners and owners <= {"frontline_agent", "account_manager", "account_director"}

    subscriber = pubsub_v1.SubscriberClient()
    reader = WriterSchemas(schemas.load(schemas.CHURN_ALERT))
    published: list[str] = []
    while True:
        response = subscriber.pull(
            subscription=topics["alerts"]["subscription"], max_messages=500, timeout=10
        )
        if not response.received_messages:
            break
        for received in response.received_messages:
            alert, _ = reader.decode(received.message.data, received.message.attributes)
            assert received.message.attributes["alert_id"] == alert["alert_id"]
            published.append(alert["alert_id"])
        subscriber.acknowledge(
            subscription=topics["alerts"]["subscription"],
            ack_ids=[r.ack_id for r in response.received_messages],
        )
    assert set(published) == table_ids  # every stored alert was announced, same ids
