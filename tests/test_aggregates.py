"""Windowed aggregates: pure rules, then ComputeAggregates on TestStream into a real DuckDB."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import MAX_TIMESTAMP

from churnwatch.aggregation import (
    AggregateConfig,
    Tally,
    audience,
    dimension_keys,
    nps,
    nps_bucket,
)
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from pipelines.flow import FlowConfig
from transforms.aggregates import FEEDBACK, ComputeAggregates, contributions
from transforms.warehouse_io import WriteToWarehouse

DAY_S = 10.0  # one customer day = 10 s of event time in these tests
DAY_MS = int(DAY_S * 1000)


# --- pure rules ----------------------------------------------------------------------
def test_nps_is_percent_promoters_minus_percent_detractors():
    assert nps(2, 1, 1) == 25.0  # (2 - 1) / 4 answers
    assert nps(0, 0, 3) == -100.0
    assert nps(0, 0, 0) is None  # no answers: no score, not 0
    assert [nps_bucket(s) for s in (0, 6, 7, 8, 9, 10)] == [
        "detractor",
        "detractor",
        "passive",
        "passive",
        "promoter",
        "promoter",
    ]
    with pytest.raises(ValueError):
        nps_bucket(11)


def test_audience_is_internal_by_segment_or_serving_team():
    assert audience("internal", None) == "internal"
    assert audience("smb", "internal_it") == "internal"
    assert audience("enterprise", "support_emea") == "external"
    assert audience(None, None) == "external"


def test_every_row_counts_once_per_dimension_and_missing_values_are_unknown():
    row = {
        "segment": "smb",
        "channel": "CHAT",
        "topic": None,
        "team": "internal_it",
        "cause": "MISUSE",
        "kind": "COMPLAINT",
    }
    assert dimension_keys(row, ("segment", "topic", "team", "cause", "audience")) == [
        ("all", "all"),
        ("segment", "smb"),
        ("topic", "unknown"),
        ("team", "internal_it"),
        ("cause", "MISUSE"),
        ("audience", "internal"),
    ]
    # A feedback row feeds all seven dimensions with only what the tally reads.
    items = contributions(FEEDBACK, {**row, "nps_score": 3, "csat_score": 2, "text": "x"})
    assert len(items) == 7
    assert items[0] == (
        ("all", "all"),
        ("f", {"kind": "COMPLAINT", "nps_score": 3, "csat_score": 2}),
    )


def test_tally_measures_feedback_churn_and_outcomes():
    t = Tally()
    t.add_feedback({"kind": "COMPLAINT", "nps_score": 2, "csat_score": 1})
    t.add_feedback({"kind": "SURVEY_RESPONSE", "nps_score": 10, "csat_score": 5})
    t.add_feedback({"kind": "QUESTION", "nps_score": None, "csat_score": None})
    t.add_customer({"customer_id": "A", "type": "CANCELLATION"})
    t.add_customer({"customer_id": "B", "type": "PURCHASE"})
    t.add_churn_revenue({"customer_id": "A", "annual_revenue": 1200.0})
    other = Tally().add_outcome({"customer_id": "A", "silent": True, "revenue_lost": 1000.0})
    other.add_outcome({"customer_id": "C", "silent": False, "revenue_lost": 600.0})
    m = t.merge(other).measures()
    assert (m["events"], m["complaints"], m["survey_responses"]) == (5, 1, 2)
    assert (m["promoters"], m["passives"], m["detractors"], m["nps"]) == (1, 0, 1, 0.0)
    assert m["csat_mean"] == 3.0  # (1 + 5) / 2
    # A cancelled (event) and was classified silent; C only known from its outcome (vocal).
    assert (m["churned_customers"], m["silent_churned"], m["vocal_churned"]) == (2, 1, 1)
    assert m["revenue_lost"] == 1800.0  # A: max(1200, 1000) + C: 600


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fixed_days": 0},
        {"sliding_days": 1, "sliding_period_days": 2},
        {"allowed_lateness_days": -1},
        {"early_firing_seconds": 0},
        {"early_firing_seconds": 0.5},
    ],
)
def test_bad_aggregate_config_fails_fast(kwargs):
    with pytest.raises(ValueError):
        AggregateConfig(**kwargs)


def test_flow_config_gives_every_window_config_its_day_length():
    flow = FlowConfig.for_day(0.2)
    assert flow.aggregates.day_seconds == 0.2 and flow.spikes.day_seconds == 0.2
    assert flow.aggregates.seconds(7) == pytest.approx(1.4)  # "last 7 days" = 1.4 s here


# --- streaming: early, on-time and late panes, upserted into DuckDB ------------------
TAGS = ("feedback", "customer", "outcomes")
CFG = AggregateConfig(
    day_seconds=DAY_S,
    fixed_days=1,
    sliding_days=3,
    sliding_period_days=1,
    allowed_lateness_days=2,
    min_lateness_seconds=0,  # lateness exactly 2 days (20 s) in this event-time test
    early_firing_seconds=1,
)


def feedback(i: int, day: float, kind: str, nps_score, csat, segment="smb") -> dict:
    return {
        "event_id": f"fe-{i}",
        "customer_id": f"F{i}",
        "occurred_at": int(day * DAY_MS),
        "channel": "CHAT",
        "kind": kind,
        "nps_score": nps_score,
        "csat_score": csat,
        "topic": "login",
        "cause": "INFLATED_EXPECTATIONS",
        "text": None,
        "segment": segment,
        "team": "support_emea",
    }


def customer(i: int, day: float, type_: str, who: str) -> dict:
    return {
        "event_id": f"ce-{i}",
        "customer_id": who,
        "occurred_at": int(day * DAY_MS),
        "type": type_,
        "amount": None,
        "currency": None,
        "monthly_revenue": None,
        "reason": None,
        "segment": "smb",
    }


def at(row: dict) -> TimestampedValue:
    return TimestampedValue(row, row["occurred_at"] / 1000)


def watermark(stream: TestStream, seconds) -> TestStream:
    for tag in TAGS:
        stream = stream.advance_watermark_to(seconds, tag=tag)
    return stream


def late_data_stream() -> TestStream:
    """Timeline in days (window [0, 1) is the one under test; lateness 2 days)::

    0.1 promoter, 0.2 detractor complaint (internal)   -> EARLY pane (processing time)
    0.5 purchase, 0.6 cancellation of X + outcome X silent
    watermark 1.0                                      -> ON_TIME pane
    watermark 1.5, then 0.3 passive arrives (late)     -> LATE pane, same row updated
    watermark 6.0, then 0.4 arrives                     -> too late for every window
                                                          holding day 0 (last ends at 3,
                                                          3 + 2 < 6): dropped
    """
    s = watermark(TestStream(), 0)
    s = s.add_elements(
        [
            at(feedback(1, 0.1, "SURVEY_RESPONSE", 10, 5)),
            at(feedback(2, 0.2, "COMPLAINT", 2, 1, segment="internal")),
        ],
        tag="feedback",
    )
    s = s.advance_processing_time(2)  # > early_firing_seconds: an early pane fires
    s = s.add_elements(
        [at(customer(1, 0.5, "PURCHASE", "Y")), at(customer(2, 0.6, "CANCELLATION", "X"))],
        tag="customer",
    )
    s = s.add_elements(
        [
            at(
                {
                    "customer_id": "X",
                    "occurred_at": int(0.6 * DAY_MS),
                    "silent": True,
                    "revenue_lost": 1200.0,
                    "segment": "smb",
                }
            )
        ],
        tag="outcomes",
    )
    s = watermark(s, 1.0 * DAY_S)
    s = watermark(s, 1.5 * DAY_S)
    s = s.add_elements([at(feedback(3, 0.3, "SURVEY_RESPONSE", 8, 3))], tag="feedback")
    s = watermark(s, 6.0 * DAY_S)
    s = s.add_elements([at(feedback(4, 0.4, "COMPLAINT", 0, 1))], tag="feedback")
    return watermark(s, MAX_TIMESTAMP)


def streaming_options() -> PipelineOptions:
    options = PipelineOptions(runner="BundleBasedDirectRunner")
    options.view_as(StandardOptions).streaming = True
    return options


def test_late_event_after_the_watermark_updates_the_same_warehouse_row(tmp_path):
    db = tmp_path / "wh.duckdb"
    with beam.Pipeline(options=streaming_options()) as p:
        events = p | "Events" >> late_data_stream()
        rows = {tag: events[tag] for tag in TAGS} | ComputeAggregates(CFG)
        rows | WriteToWarehouse(f"duckdb://{db}", "feedback_aggregates")

        day0_all = (
            rows
            | "Day0All"
            >> beam.Filter(
                lambda r: (
                    (r["window_kind"], r["window_start"], r["dimension"]) == ("FIXED", 0, "all")
                )
            )
            | "Panes" >> beam.Map(lambda r: (r["pane_index"], r["pane_timing"], r["events"]))
        )
        # Accumulating panes: early (2 feedback), on time (+2 customer events), late (+1).
        assert_that(day0_all, equal_to([(0, "EARLY", 2), (1, "ON_TIME", 4), (2, "LATE", 5)]))
    DuckDBWarehouse.close_all()

    wh = DuckDBWarehouse(db)
    try:
        keys = wh.query(
            "SELECT count(*), count(DISTINCT (window_kind, window_start, window_end,"
            " dimension, dimension_value)) FROM feedback_aggregates"
        )[0]
        assert keys[0] == keys[1]  # one row per window key, never a second one
        row = wh.query(
            "SELECT events, complaints, survey_responses, promoters, passives, detractors, nps,"
            " csat_mean, churned_customers, silent_churned, vocal_churned, revenue_lost,"
            " pane_index, pane_timing FROM feedback_aggregates WHERE window_kind = 'FIXED'"
            " AND window_start = epoch_ms(0) AND dimension = 'all'"
        )
        # 3 feedback (the 0.4 one came after the lateness horizon) + 2 customer events;
        # NPS answers 10, 2, 8 -> (1 - 1) / 3 = 0; CSAT (5 + 1 + 3) / 3 = 3; X churned silently.
        assert row == [(5, 1, 3, 1, 1, 1, 0.0, 3.0, 1, 1, 0, 1200.0, 2, "LATE")]
        internal = wh.query(
            "SELECT events, complaints FROM feedback_aggregates WHERE window_kind = 'FIXED'"
            " AND window_start = epoch_ms(0) AND dimension = 'audience'"
            " AND dimension_value = 'internal'"
        )
        assert internal == [(1, 1)]  # the detractor complaint from the internal segment
        cause = wh.query(
            "SELECT events FROM feedback_aggregates WHERE window_kind = 'FIXED'"
            " AND window_start = epoch_ms(0) AND dimension = 'cause'"
            " AND dimension_value = 'INFLATED_EXPECTATIONS'"
        )
        assert cause == [(3,)]  # cause is a dimension: the three feedback events
        sliding = wh.query(
            "SELECT epoch_ms(window_start), events, pane_timing FROM feedback_aggregates"
            " WHERE window_kind = 'SLIDING' AND dimension = 'all' ORDER BY window_start"
        )
        # 3-day windows every day holding day 0: [-2,1), [-1,2), [0,3); each saw the late
        # event within its own lateness (ends 1, 2, 3 days + 2 > 1.5) and none the 0.4 one.
        assert [(start // DAY_MS, n) for start, n, _ in sliding] == [(-2, 5), (-1, 5), (0, 5)]
    finally:
        wh.close()


def test_bounded_input_gets_one_on_time_pane_per_window():
    """Backfill runs the same composite in batch: no processing-time clock, no early panes."""
    rows = [
        feedback(1, 0.1, "COMPLAINT", 3, 2),
        feedback(2, 0.7, "PRAISE", 10, 5),
        feedback(3, 1.2, "QUESTION", None, None),
    ]
    with beam.Pipeline(runner="FnApiRunner") as p:
        f = p | "Feedback" >> beam.Create([at(r) for r in rows])
        c = p | "Customer" >> beam.Create([at(customer(1, 1.5, "ACCOUNT_CLOSED", "Z"))])
        out = {"feedback": f, "customer": c} | ComputeAggregates(CFG)
        daily = (
            out
            | beam.Filter(lambda r: r["window_kind"] == "FIXED" and r["dimension"] == "all")
            | beam.Map(
                lambda r: (
                    r["window_start"] // DAY_MS,
                    r["events"],
                    r["nps"],
                    r["churned_customers"],
                    r["pane_timing"],
                )
            )
        )
        # Day 0: a detractor (3) and a promoter (10) -> NPS 0; day 1: a question and Z closing.
        assert_that(daily, equal_to([(0, 2, 0.0, 0, "ON_TIME"), (1, 2, None, 1, "ON_TIME")]))


def test_bounded_windows_from_period_tallies_equal_windows_from_every_contribution(tmp_path):
    """The backfill shortcut (tally each day once, merge days into windows) gives exactly the
    rows of assigning every contribution to each of its windows."""
    import json

    from churnwatch.simulate import SimConfig, simulate

    sim = simulate(SimConfig(customers=60, days=40, seed=9, day_seconds=DAY_S, spike=False))
    stamped = {
        source: [TimestampedValue(r, r["occurred_at"] / 1000) for r in sim.events[source]]
        for source in ("feedback", "customer")
    }
    config = AggregateConfig(day_seconds=DAY_S, early_firing_seconds=None)

    def key(row):
        return json.dumps({k: v for k, v in row.items() if k != "updated_at"}, sort_keys=True)

    def run(precombine: bool, check=None, out=None) -> None:
        with beam.Pipeline(runner="FnApiRunner") as p:
            inputs = {s: p | s >> beam.Create(rows) for s, rows in stamped.items()}
            rows = inputs | ComputeAggregates(config, precombine_periods=precombine)
            keys = rows | beam.Map(key)
            if out:
                keys | beam.io.WriteToText(str(out))
            if check is not None:
                assert_that(keys, equal_to(check))

    run(precombine=False, out=tmp_path / "general")
    general = [line for f in tmp_path.glob("general*") for line in f.read_text().splitlines()]
    kinds = {json.loads(k)["window_kind"] for k in general}
    assert kinds == {"FIXED", "SLIDING"} and len(general) > 500
    run(precombine=True, check=general)


def test_streaming_partial_tallies_give_the_panes_of_windowing_every_contribution(tmp_path):
    """The streaming shortcut (one partial tally per key, window and bundle, tallied per day)
    gives exactly the panes, timings and measures of windowing every contribution: same
    TestStream (three days of events per batch, a fifth of each held back and sent after the
    watermark passed it: late for some windows, too late for others), pane by pane."""
    import json

    from churnwatch.simulate import SimConfig, simulate

    sim = simulate(SimConfig(customers=80, days=24, seed=4, day_seconds=DAY_S, spike=False))
    rows = sorted(  # day 0 at time 0, as the windows of this stream are written
        [
            (source, {**r, "occurred_at": r["occurred_at"] - sim.start_ms})
            for source in ("feedback", "customer")
            for r in sim.events[source]
        ],
        key=lambda item: item[1]["occurred_at"],
    )

    def events() -> TestStream:
        stream = watermark(TestStream(), 0)
        late: list[tuple[str, dict]] = []
        for day in range(0, 24, 3):  # batches of three days, then the watermark passes them
            start, end = day * DAY_MS, (day + 3) * DAY_MS
            batch = [(s, r) for s, r in rows if start <= r["occurred_at"] < end]
            on_time, held_back = batch[: len(batch) * 4 // 5], batch[len(batch) * 4 // 5 :]
            for tag in ("feedback", "customer"):
                stream = stream.add_elements([at(r) for s, r in on_time if s == tag], tag=tag)
            stream = stream.advance_processing_time(2)  # early panes of the open windows
            stream = watermark(stream, (day + 3.5) * DAY_S)
            for tag in ("feedback", "customer"):  # late: the watermark is past them
                stream = stream.add_elements([at(r) for s, r in late if s == tag], tag=tag)
            late = held_back
        return watermark(stream, MAX_TIMESTAMP)

    def key(row):
        return json.dumps({k: v for k, v in row.items() if k != "updated_at"}, sort_keys=True)

    def run(precombine: bool) -> list[str]:
        STREAMED_PANES.clear()
        with beam.Pipeline(options=streaming_options()) as p:
            streamed = p | "Events" >> events()
            inputs = {"feedback": streamed["feedback"], "customer": streamed["customer"]}
            out = inputs | ComputeAggregates(CFG, precombine_periods=precombine)
            _ = out | beam.Map(key) | beam.Map(_collect_pane)
        return sorted(STREAMED_PANES)

    general = run(precombine=False)
    timings = {json.loads(k)["pane_timing"] for k in general}
    assert timings == {"EARLY", "ON_TIME", "LATE"} and len(general) > 500
    assert run(precombine=True) == general


#: Panes collected by the in-process streaming runner (an unbounded PCollection has no file
#: sink without windowing); read back by the test that fills it.
STREAMED_PANES: list[str] = []


def _collect_pane(pane: str) -> None:
    """Module-level, so the runner's pickled copy of the DoFn appends to this very list."""
    STREAMED_PANES.append(pane)


@pytest.mark.parametrize("precombine", [True, False])
def test_windows_starting_before_the_warm_start_cut_off_are_not_emitted(precombine):
    """After a warm start the run holds stored rows from the cut-off on only: a window that
    starts earlier would be emitted from part of its rows, so it is left out, on both paths."""
    rows = [feedback(i, day, "PRAISE", 10, 5) for i, day in enumerate((0.5, 1.5, 2.5, 3.5))]
    with beam.Pipeline(runner="FnApiRunner") as p:
        f = p | "Feedback" >> beam.Create([at(r) for r in rows])
        c = p | "Customer" >> beam.Create([at(customer(9, 3.2, "RENEWAL", "Z"))])
        out = {"feedback": f, "customer": c} | ComputeAggregates(
            CFG, precombine_periods=precombine, windows_from_ms=2 * DAY_MS
        )
        windows = (
            out
            | beam.Filter(lambda r: r["dimension"] == "all")
            | beam.Map(lambda r: (r["window_kind"], r["window_start"] // DAY_MS, r["events"]))
        )
        # FIXED days 2 and 3; SLIDING (3 days) starting on days 2 and 3; none earlier.
        # events = feedback + customer events (Z's renewal on day 3.2)
        assert_that(
            windows,
            equal_to([("FIXED", 2, 1), ("FIXED", 3, 2), ("SLIDING", 2, 3), ("SLIDING", 3, 2)]),
        )
