"""TrackCustomers on the streaming DirectRunner (TestStream): timers, reordering, replays."""

from __future__ import annotations

import random
from itertools import pairwise

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue

from churnwatch.clock import now_ms
from churnwatch.detection import AT_RISK_SILENT, SILENT_CHURN, Detector, DetectorConfig
from churnwatch.evaluate import replay
from churnwatch.model.packaged import load_model
from churnwatch.routing import RoutingPolicy
from churnwatch.simulate import SimConfig, simulate
from tests.helpers import streaming_options
from transforms.track_customers import TrackCustomers, TrackingSetup

DAY_SECONDS = 1.0  # one customer day = one second of event time: short, past timestamps
PARAMS = load_model()
POLICY = RoutingPolicy.load()


def setup(**config) -> TrackingSetup:
    return TrackingSetup(DetectorConfig(day_seconds=DAY_SECONDS, **config), PARAMS, POLICY, 8)


def scenario(seed: int = 3):
    sim = simulate(
        SimConfig(
            customers=40,
            days=150,
            seed=seed,
            day_seconds=DAY_SECONDS,
            start_ms=1_000_000_000,
            spike=False,
        )
    )
    return sim, sim.events["feedback"], sim.events["customer"]


def stream_of(
    rows_in_order: list[tuple[str, dict]], step_ms: int = 5_000, tail_ms: int = 1_000_000
) -> TestStream:
    """Elements in the given order; the watermark follows event time in 5 s steps and then
    keeps going for ``tail_ms`` (time passes after the last event: quiet customers come due,
    and their open alerts escalate, up to ``max_quiet_days`` = 400 s after their last event).
    Each shard re-arms its one timer after firing, so the watermark must move in steps: the
    DirectRunner does not chain re-armed timers once the watermark has jumped to +inf."""
    stream = TestStream()
    watermark = 0
    for source, row in rows_in_order:
        stream = stream.add_elements(
            [TimestampedValue((source, row), row["occurred_at"] / 1000)], tag=None
        )
        if row["occurred_at"] - step_ms > watermark:
            watermark = row["occurred_at"] - step_ms
            stream = stream.advance_watermark_to(watermark / 1000)
    end = watermark + tail_ms
    while watermark < end:  # after the last event only timers move: coarser steps do
        watermark += 4 * step_ms
        stream = stream.advance_watermark_to(watermark / 1000)
    return stream.advance_watermark_to_infinity()


def run_stream(stream: TestStream, tracking: TrackingSetup, check) -> None:
    with TestPipeline(options=streaming_options()) as p:
        tagged = p | stream
        feedback = tagged | "Feedback" >> beam.FlatMap(lambda e: [e[1]] if e[0] == "f" else [])
        customer = tagged | "Customer" >> beam.FlatMap(lambda e: [e[1]] if e[0] == "c" else [])
        out = (feedback, customer) | TrackCustomers(tracking)
        check(out)


def expected_alerts(tracking: TrackingSetup, feedback, customer, end_ms) -> list[dict]:
    detector = Detector(tracking.config, tracking.model, tracking.policy)
    return replay(detector, feedback + customer, end_ms)


def test_the_stream_raises_exactly_the_alerts_the_replay_predicts():
    _sim, feedback, customer = scenario()
    tracking = setup()
    rows = sorted(
        [("f", r) for r in feedback] + [("c", r) for r in customer],
        key=lambda e: e[1]["occurred_at"],
    )
    expected = expected_alerts(tracking, feedback, customer, end_ms=10**13)
    kinds = {a["alert_type"] for a in expected}
    assert kinds == {SILENT_CHURN, AT_RISK_SILENT}, "the scenario must raise both kinds"

    def check(out):
        assert_that(
            out["alerts"] | beam.Map(lambda a: (a["alert_id"], a["detected_at"], a["owner"])),
            equal_to([(a["alert_id"], a["detected_at"], a["owner"]) for a in expected]),
        )

    run_stream(stream_of(rows), tracking, check)


def test_reordered_events_raise_exactly_the_replays_alerts():
    """Events arrive up to 3 s (3 days) out of order, as two subscriptions read at
    different speeds deliver them: rows wait for the watermark and are applied in event-time
    order, so every alert (AT_RISK updates included) is the replay's, with the same id,
    revision and event time. (Redelivered copies never get here: DropDuplicates runs first
    in the flow, see test_dedupe.)"""
    _sim, feedback, customer = scenario(seed=4)
    tracking = setup()
    rng = random.Random(1)
    rows = [("f", r) for r in feedback] + [("c", r) for r in customer]
    rows.sort(key=lambda e: e[1]["occurred_at"] + rng.uniform(0, 3000))
    assert any(a[1]["occurred_at"] > b[1]["occurred_at"] for a, b in pairwise(rows)), (
        "the stream must be out of order"
    )
    expected = expected_alerts(tracking, feedback, customer, 10**13)
    assert {a["alert_type"] for a in expected} == {SILENT_CHURN, AT_RISK_SILENT}

    def check(out):
        assert_that(
            out["alerts"] | beam.Map(lambda a: (a["alert_id"], a["revision"], a["detected_at"])),
            equal_to([(a["alert_id"], a["revision"], a["detected_at"]) for a in expected]),
        )

    run_stream(stream_of(rows, step_ms=8_000), tracking, check)


def test_drain_does_not_raise_at_risk_alerts_for_the_future():
    """Live time: deadlines lie days ahead of the wall clock; the final +inf watermark of a
    drain must not turn them into alerts."""
    day = 86_400_000
    start = now_ms() - 30 * day  # purchases 30, 20 and 10 days ago, and today
    rows = [
        (
            "c",
            {
                "event_id": f"p{i}",
                "customer_id": "C1",
                "occurred_at": start + i * 10 * day,
                "type": "PURCHASE",
                "amount": 10.0,
                "monthly_revenue": None,
                "segment": "smb",
            },
        )
        for i in range(4)
    ]
    # a low fixed threshold: this customer surely comes due, the question is when it fires
    live = TrackingSetup(
        DetectorConfig(day_seconds=86400.0, risk_threshold=0.02), PARAMS, POLICY, 4
    )

    detector = Detector(live.config, PARAMS, POLICY)
    expected_due = replay(detector, [r for _, r in rows], until_ms=10**15)
    assert expected_due, "given unlimited time this customer would come due"

    def check(out):
        assert_that(out["alerts"], equal_to([]))

    run_stream(stream_of(rows, tail_ms=0), live, check)


def run_batch(tracking: TrackingSetup, feedback, customer, expected: list[tuple]) -> int:
    """Bounded input on the batch runner (``Create`` reshuffles it): asserts the alerts,
    returns how many shard timers fired."""
    from apache_beam.metrics import MetricsFilter
    from apache_beam.options.pipeline_options import PipelineOptions

    def stamped(rows):
        return [TimestampedValue(r, r["occurred_at"] / 1000) for r in rows]

    p = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    fb = p | "Feedback" >> beam.Create(stamped(feedback))
    cu = p | "Customer" >> beam.Create(stamped(customer))
    alerts = ((fb, cu) | TrackCustomers(tracking))["alerts"]
    assert_that(
        alerts | beam.Map(lambda a: (a["alert_id"], a["detected_at"], a["owner"])),
        equal_to(expected),
    )
    result = p.run()
    result.wait_until_finish()
    query = result.metrics().query(MetricsFilter().with_name("shard_timer_firings"))
    return sum(c.committed for c in query["counters"])


def test_bounded_input_replays_each_shard_in_event_order_in_one_timer_round():
    """Backfill: the batch runner hands events over in any order and fires timers only at
    +inf. Each shard replays its events sorted when input ends: exactly the replay's alerts
    (ids, times, owners), with one timer firing per shard."""
    _sim, feedback, customer = scenario(seed=5)
    tracking = TrackingSetup(setup().config, PARAMS, POLICY, 8, bounded=True)
    expected = [
        (a["alert_id"], a["detected_at"], a["owner"])
        for a in expected_alerts(tracking, feedback, customer, end_ms=10**13)
    ]
    assert {"AT_RISK_SILENT", "SILENT_CHURN"} <= {
        a["alert_type"] for a in expected_alerts(tracking, feedback, customer, 10**13)
    }
    firings = run_batch(tracking, feedback, customer, expected)
    assert 1 <= firings <= 8  # at most one per shard, not one per deadline


def test_a_warm_started_stream_continues_where_the_stored_history_ends():
    """Warm start: the first 80% of a world comes from the warehouse (one StoredHistory per
    shard, with the alerts a previous run stored), the rest live. The stream raises
    exactly the replay's alerts over the whole world minus the revisions already stored:
    no customer is forgotten and no stored alert is raised twice."""
    from transforms.sharding import shard_of
    from transforms.warm_start import StoredHistory

    _sim, feedback, customer = scenario(seed=4)
    tracking = setup()
    rows = sorted(
        [("f", r) for r in feedback] + [("c", r) for r in customer],
        key=lambda e: e[1]["occurred_at"],
    )
    cut = rows[len(rows) * 8 // 10][1]["occurred_at"]  # most alerts of this world come late
    stored_rows = [r for _, r in rows if r["occurred_at"] < cut]
    live = [(s, r) for s, r in rows if r["occurred_at"] >= cut]
    before = replay(Detector(tracking.config, PARAMS, POLICY), stored_rows, until_ms=cut)
    stored: dict[str, int] = {}
    for a in before:
        stored[a["alert_id"]] = max(a["revision"], stored.get(a["alert_id"], -1))
    histories = {shard: StoredHistory() for shard in range(tracking.num_shards)}
    for row in stored_rows:
        histories[shard_of(row["customer_id"], tracking.num_shards)].rows.append(row)
    for a in before:
        histories[shard_of(a["customer_id"], tracking.num_shards)].alerts[a["alert_id"]] = stored[
            a["alert_id"]
        ]
    whole = expected_alerts(tracking, feedback, customer, 10**13)
    expected = [
        (a["alert_id"], a["revision"], a["detected_at"])
        for a in whole
        if a["revision"] > stored.get(a["alert_id"], -1)
    ]
    assert before and len(expected) < len(whole), "some alerts must already be stored"
    assert any(
        a["revision"] > stored.get(a["alert_id"], -1) for a in whole if a["alert_id"] in stored
    ), "an episode that began before the restart must go on after it"

    with TestPipeline(options=streaming_options()) as p:
        tagged = p | stream_of(live)
        fb = tagged | "Feedback" >> beam.FlatMap(lambda e: [e[1]] if e[0] == "f" else [])
        cu = tagged | "Customer" >> beam.FlatMap(lambda e: [e[1]] if e[0] == "c" else [])
        history = p | "Stored" >> beam.Create(sorted(histories.items(), key=lambda kv: kv[0]))
        out = (fb, cu) | TrackCustomers(tracking, stored=history)
        assert_that(
            out["alerts"] | beam.Map(lambda a: (a["alert_id"], a["revision"], a["detected_at"])),
            equal_to(expected),
        )
