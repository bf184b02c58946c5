"""Stream quality: one GX validation per event-time window; a bad window raises exactly one
DATA_QUALITY alert routed to the data engineer on call, a good one none."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue

from churnwatch import schemas
from churnwatch.quality import results
from churnwatch.quality.config import QualityConfig
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from pipelines.flow import ChurnwatchFlow, FlowConfig
from tests.helpers import customer, feedback, message, streaming_options
from transforms.quality import ValidateWindows
from transforms.warehouse_io import WriteToWarehouse

WINDOW_S = 60.0
WINDOW_MS = int(WINDOW_S * 1000)
BASE_MS = 1_700_000_040_000  # a window boundary (multiple of 60 s), in the past
CONFIG = QualityConfig(
    day_seconds=WINDOW_S,
    window_days=1,
    min_window_seconds=0,
    allowed_lateness_days=0,
    min_lateness_seconds=0,
)


def row(i: int, window: int, **overrides) -> dict:
    r = feedback(
        f"fe-{window}-{i}",
        f"C{i:06d}",
        occurred_at=BASE_MS + window * WINDOW_MS + i * 100,
        message_id=None,
        publish_time=None,
        schema_revision="abc",
    )
    r.update(overrides)
    return r


def at(r: dict) -> TimestampedValue:
    return TimestampedValue(r, r["occurred_at"] / 1000)


def test_bad_window_raises_one_alert_to_the_data_engineer_and_good_window_none(tmp_path):
    good = [row(i, 0) for i in range(20)]
    bad = [row(i, 1) for i in range(20)]
    bad[3]["nps_score"] = 11  # a producer bug the per-record validation would have caught
    bad[4]["csat_score"] = 0
    stream = (
        TestStream()
        .advance_watermark_to(BASE_MS / 1000)
        .add_elements([at(r) for r in good[:10]])
        .add_elements([at(r) for r in good[10:] + bad])
        .advance_watermark_to((BASE_MS + WINDOW_MS) / 1000)  # window 0 fires (on time)
        .advance_watermark_to((BASE_MS + 2 * WINDOW_MS) / 1000)  # window 1 fires
        .add_elements([at(row(99, 0, nps_score=11))])  # too late for window 0: ignored
        .advance_watermark_to_infinity()
    )
    db = tmp_path / "wh.duckdb"
    with beam.Pipeline(options=streaming_options()) as p:
        out = p | stream | ValidateWindows("feedback_events", CONFIG)
        alerts = out["alerts"] | "AlertKey" >> beam.Map(
            lambda a: (
                a["alert_id"],
                a["alert_type"],
                a["owner"],
                a["topic"],
                a["detected_at"],
                tuple(a["reason_codes"]),
            )
        )
        start1 = BASE_MS + WINDOW_MS
        assert_that(
            alerts,
            equal_to(
                [
                    (
                        results.quality_alert_id("feedback_events", start1, start1 + WINDOW_MS),
                        "DATA_QUALITY",
                        "data_engineer_on_call",
                        "feedback_events",
                        start1 + WINDOW_MS,
                        ("failed:nps_score.between", "failed:csat_score.between", "rows=20"),
                    )
                ]
            ),
            label="OneAlert",
        )
        out["results"] | "WriteResults" >> WriteToWarehouse(f"duckdb://{db}", "quality_results")
        out["alerts"] | "WriteAlerts" >> WriteToWarehouse(f"duckdb://{db}", "churn_alerts")
    DuckDBWarehouse.close_all()
    wh = DuckDBWarehouse(db)
    try:
        per_window = wh.query(
            "SELECT epoch_ms(window_start) - ?, count(*), count(*) FILTER (NOT success),"
            " list(expectation_id ORDER BY expectation_id) FILTER (NOT success),"
            " min(source), min(element_count)"
            " FROM quality_results GROUP BY 1 ORDER BY 1",
            [BASE_MS],
        )
        n = len(ValidateWindows("feedback_events", CONFIG).suite.expectations)
        assert per_window == [
            (0, n, 0, None, "STREAM", 20),
            (WINDOW_MS, n, 2, ["csat_score.between", "nps_score.between"], "STREAM", 20),
        ]
        assert wh.query("SELECT alert_type, owner FROM churn_alerts") == [
            ("DATA_QUALITY", "data_engineer_on_call")
        ]
    finally:
        wh.close()


def test_a_late_bad_row_revalidates_its_window_in_a_late_pane():
    config = QualityConfig(
        day_seconds=WINDOW_S, window_days=1, min_window_seconds=0, allowed_lateness_days=1
    )
    good = [row(i, 0) for i in range(20)]
    stream = (
        TestStream()
        .advance_watermark_to(BASE_MS / 1000)
        .add_elements([at(r) for r in good])
        .advance_watermark_to((BASE_MS + WINDOW_MS) / 1000)  # on time: window 0 is good
        .add_elements([at(row(99, 0, nps_score=11))])  # late, within the allowed lateness
        .advance_watermark_to_infinity()
    )
    n = len(ValidateWindows("feedback_events", config).suite.expectations)

    def panes(rows):
        """Per pane: results, failed expectation ids, rows validated."""
        got = {}
        for r in rows:
            pane = r["run_id"].rsplit(":", 1)[1]
            count, failed, size = got.get(pane, (0, [], 0))
            failed = sorted(failed + ([] if r["success"] else [r["expectation_id"]]))
            got[pane] = (count + 1, failed, max(size, r["element_count"] or 0))
        expected = {"p0": (n, [], 20), "p1": (n, ["nps_score.between"], 21)}
        if got != expected:
            raise BeamAssertException(f"{got} != {expected}")

    with beam.Pipeline(options=streaming_options()) as p:
        out = p | stream | ValidateWindows("feedback_events", config)
        assert_that(out["results"], panes, label="Panes")
        owners = out["alerts"] | beam.Map(lambda a: (a["owner"], a["detected_at"]))
        assert_that(
            owners, equal_to([("data_engineer_on_call", BASE_MS + WINDOW_MS)]), label="Alert"
        )


def test_the_flow_notices_a_producer_that_stops_filling_a_field():
    """End to end through decode and dedupe: the rows are valid one by one, so only the
    window's null-rate expectation can tell that the producer stopped sending ``segment``."""
    day_ms = 60_000
    start = 1_700_000_040_000

    def fb(i: int, day: int, segment: str | None) -> dict:
        return feedback(
            f"fe-{day}-{i}", f"C{i:06d}", occurred_at=start + day * day_ms + i, segment=segment
        )

    healthy = [fb(i, 0, "smb") for i in range(30)]
    broken = [fb(i, 1, "smb" if i < 10 else None) for i in range(30)]
    customers = [customer(f"ce-{i}", f"C{i:06d}", occurred_at=start + i * 1000) for i in range(10)]
    config = FlowConfig.for_day(60.0, quality=QualityConfig(min_window_seconds=0))
    with beam.Pipeline(runner="FnApiRunner") as p:
        fmsgs = p | "Feedback" >> beam.Create(
            [message(r, message_id=f"f{n}") for n, r in enumerate(healthy + broken)]
        )
        cmsgs = p | "Customer" >> beam.Create(
            [
                message(r, schemas.CUSTOMER_EVENT, message_id=f"c{n}")
                for n, r in enumerate(customers)
            ]
        )
        out = (fmsgs, cmsgs) | ChurnwatchFlow(config)
        alerts = out["quality_alerts"] | beam.Map(
            lambda a: (a["topic"], a["detected_at"], a["owner"], tuple(a["reason_codes"]))
        )
        assert_that(
            alerts,
            equal_to(
                [
                    (
                        "feedback_events",
                        start + 2 * day_ms,
                        "data_engineer_on_call",
                        ("failed:segment.null_rate", "rows=30"),
                    )
                ]
            ),
            label="OnlyTheBrokenWindow",
        )
        windows = out["quality_results"] | beam.Map(lambda r: (r["suite"], r["window_start"]))
        counted = windows | beam.combiners.Count.PerElement() | beam.Keys()
        assert_that(
            counted,
            equal_to(
                [
                    ("feedback_events", start),
                    ("feedback_events", start + day_ms),
                    ("customer_events", start),
                ]
            ),
            label="EveryWindowChecked",
        )


def test_quality_is_off_without_a_quality_config():
    with beam.Pipeline(runner="FnApiRunner") as p:
        f = p | "F" >> beam.Create([message(feedback())])
        c = p | "C" >> beam.Create([message(customer(), schemas.CUSTOMER_EVENT)])
        out = (f, c) | ChurnwatchFlow(FlowConfig())
        assert "quality_results" not in out and "quality_alerts" not in out


def test_quality_windows_follow_the_day_length_with_a_floor():
    assert QualityConfig(day_seconds=86400.0, min_window_seconds=10.0).window_seconds == 86400.0
    demo = QualityConfig(day_seconds=0.5, min_window_seconds=10.0)
    assert demo.window_seconds == 10.0  # a 0.5 s demo day is floored to 10 s batches
    assert FlowConfig.for_day(0.5, quality=QualityConfig()).quality.day_seconds == 0.5


def test_quality_options_build_the_config_or_turn_it_off(tmp_path):
    from pipelines.options import ChurnwatchOptions

    subs = [
        "--feedback_subscription=projects/churnwatch-local/subscriptions/feedback-events-x",
        "--customer_subscription=projects/churnwatch-local/subscriptions/customer-events-x",
    ]
    opts = ChurnwatchOptions([*subs, "--day_seconds=0.5", "--quality_window_days=2"])
    opts.validate_churnwatch()
    config = FlowConfig.from_options(opts).quality
    assert (config.window_seconds, config.lateness_seconds) == (10.0, 60.0)  # floors
    assert (
        FlowConfig.from_options(ChurnwatchOptions([*subs, "--stream_quality=off"])).quality is None
    )
    bad = tmp_path / "rules.yaml"
    bad.write_text("null_rate: {feedback_events: {colour: 0.1}}\n")
    with pytest.raises(ValueError, match="table 'feedback_events' has no column 'colour'"):
        ChurnwatchOptions([*subs, f"--quality_rules={bad}"]).validate_churnwatch()


def test_a_flow_whose_parts_disagree_on_the_day_is_refused():
    """Windows at 0.5 s a day with detection at 86,400 s used to pass silently."""
    from churnwatch.detection import DetectorConfig
    from churnwatch.model.packaged import load_model
    from churnwatch.routing import RoutingPolicy
    from transforms.track_customers import TrackingSetup

    tracking = TrackingSetup(DetectorConfig(), load_model(), RoutingPolicy.load())
    with pytest.raises(ValueError, match="tracking"):
        FlowConfig.for_day(0.5, tracking=tracking)
    assert FlowConfig.for_day(86400.0, tracking=tracking).tracking is tracking
