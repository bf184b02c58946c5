"""Issue spikes: pure rules, then the composite on TestStream (event time, day by day)."""

from __future__ import annotations

import math

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import MAX_TIMESTAMP

from churnwatch import spikes
from churnwatch.routing import RoutingPolicy
from churnwatch.spikes import FEW, MANY, ONE, SpikeConfig, classify, poisson_tail
from transforms.customer_revenue import AttachAnnualRevenue, monthly_revenue_at
from transforms.spikes import DetectIssueSpikes, is_problem_report

DAY_S = 10.0  # one customer day = 10 s of event time in these tests
DAY_MS = int(DAY_S * 1000)
CFG = SpikeConfig(
    day_seconds=DAY_S, window_days=2, period_days=1, allowed_lateness_days=1, min_lateness_seconds=0
)


def streaming_options() -> PipelineOptions:
    options = PipelineOptions(runner="BundleBasedDirectRunner")
    options.view_as(StandardOptions).streaming = True
    return options


# --- pure rules ----------------------------------------------------------------------
def test_poisson_tail_matches_closed_forms():
    assert poisson_tail(0, 3.0) == 1.0
    assert poisson_tail(1, 1.0) == pytest.approx(1 - math.exp(-1))  # P(X>=1) = 1 - P(0)
    # P(X>=6 | 1) = 1 - e^-1 (1 + 1 + 1/2 + 1/6 + 1/24 + 1/120) = 0.000594
    assert poisson_tail(6, 1.0) == pytest.approx(0.000594, abs=1e-6)
    # Far tail: P(X>=30 | 1) ~ e^-1 / 30! (1 + 1/31 + ...) = 1.4e-33, not rounded to 0.
    assert poisson_tail(30, 1.0) == pytest.approx(
        math.exp(-1) / math.factorial(30) * 1.0333, rel=1e-3
    )
    assert poisson_tail(3, 5.0) == pytest.approx(1 - math.exp(-5) * (1 + 5 + 12.5))  # below mean


def test_classify_one_few_many_relative_to_the_topic_baseline():
    quiet = [1, 0, 1, 0, 2, 1]  # mean 5/6 -> lam = floor 1.0
    assert classify(1, quiet, CFG).level == ONE
    assert classify(3, quiet, CFG).level == FEW  # P(X>=3|1) = 0.08: plausible
    assert classify(6, quiet, CFG).level == MANY  # P(X>=6|1) = 0.0006 <= 0.001, 6 >= 5
    busy = [8, 10, 9, 11, 10, 12]  # a topic that always has ~10 reporters
    verdict = classify(12, busy, CFG)
    assert verdict.level == FEW and verdict.baseline_mean == pytest.approx(10.0)
    assert classify(30, busy, CFG).level == MANY


def test_short_history_uses_the_floor_and_min_customers_guards_tiny_counts():
    # Two known windows < min_baseline_windows (3): the mean is not trusted.
    verdict = classify(4, [0, 0], CFG)
    assert verdict.baseline_mean is None and verdict.expected == 1.0
    assert verdict.level == FEW  # P(X>=4|1)=0.019 > 0.001
    strict = SpikeConfig(baseline_floor=0.01, many_min_customers=5)
    assert classify(4, [], strict).level == FEW  # p tiny, but 4 < 5 customers


def test_baseline_counts_fill_zeros_after_first_seen_and_skip_unknown_before():
    history = {100: 3, 80: 1}  # window ends (ms); period 10
    # current window starts at 100: trailing ends 100, 90, 80, 70; first seen at end 80
    assert spikes.baseline_counts(history, 100, 10, 4, first_end_ms=80) == [3, 0, 1]


def test_alert_id_is_deterministic_per_topic_and_window():
    a = spikes.spike_alert_id("checkout_bug", 0, 20000)
    assert a == spikes.spike_alert_id("checkout_bug", 0, 20000)
    assert a != spikes.spike_alert_id("checkout_bug", 10000, 30000)
    assert a != spikes.spike_alert_id("login", 0, 20000)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window_days": 0},
        {"period_days": 3, "window_days": 2},
        {"many_p_value": 1.5},
        {"many_min_customers": 1},
        {"baseline_floor": 0},
        {"min_baseline_windows": 20},
    ],
)
def test_bad_spike_config_fails_fast(kwargs):
    with pytest.raises(ValueError):
        SpikeConfig(**kwargs)


# --- composite -----------------------------------------------------------------------
def report(i: int, customer: str, topic: str, day: float) -> dict:
    return {
        "event_id": f"fe-{topic}-{i:03d}",
        "customer_id": customer,
        "occurred_at": int(day * DAY_MS),
        "channel": "SUPPORT_TICKET",
        "kind": "COMPLAINT",
        "nps_score": None,
        "csat_score": 2,
        "topic": topic,
        "cause": "PRODUCT_DEFECT",
        "text": None,
        "segment": "smb",
        "team": "support_emea",
    }


def signup(customer: str, monthly: float) -> dict:
    return {
        "event_id": f"ce-{customer}",
        "customer_id": customer,
        "occurred_at": 0,
        "type": "SIGNUP",
        "amount": None,
        "currency": None,
        "monthly_revenue": monthly,
        "reason": None,
        "segment": "smb",
    }


def stamped(rows):
    return [TimestampedValue(r, r["occurred_at"] / 1000) for r in rows]


def advance_both(stream: TestStream, seconds) -> TestStream:
    for tag in ("feedback", "customer"):
        stream = stream.advance_watermark_to(seconds, tag=tag)
    return stream


def spike_scenario() -> TestStream:
    """Days 0-9: 'login' reported by one customer a day (its baseline). Day 10.5: twelve
    customers report 'checkout_bug' (new topic), three report 'login' (a few), one reports
    'billing' (one). Every customer signed up first paying 100/month -> 1200/year."""
    customers = [f"K{i:02d}" for i in range(12)] + [f"L{i}" for i in range(4)] + ["B1"]
    stream = advance_both(TestStream(), 0).add_elements(
        stamped([signup(c, 100.0) for c in customers]), tag="customer"
    )
    days = [[report(day, f"L{day % 4}", "login", day + 0.5)] for day in range(10)]
    burst = [report(i, f"K{i:02d}", "checkout_bug", 10.5) for i in range(12)]
    burst += [report(100 + i, f"L{i}", "login", 10.5) for i in range(3)]
    burst += [report(200, "B1", "billing", 10.6)]
    burst += [report(300, "K00", "checkout_bug", 10.7)]  # twice: counts once
    days.append(burst)
    for day, rows in enumerate(days):
        # The watermark passes each day's end after its reports: windows close in order.
        stream = advance_both(stream.add_elements(stamped(rows), tag="feedback"), (day + 1) * DAY_S)
    return advance_both(stream, MAX_TIMESTAMP)


def test_many_customers_on_one_topic_raise_exactly_one_routed_alert():
    with beam.Pipeline(options=streaming_options()) as p:
        events = p | "Events" >> spike_scenario()
        enriched = {"feedback": events["feedback"], "customer": events["customer"]} | (
            AttachAnnualRevenue(is_problem_report, num_shards=4)
        )
        out = enriched["reports"] | DetectIssueSpikes(CFG, RoutingPolicy.load(None))

        alerts = out["alerts"] | "AlertFacts" >> beam.Map(
            lambda a: (
                a["topic"],
                a["alert_type"],
                a["owner"],
                a["affected_customers"],
                a["revenue_at_risk"],
                a["severity"],
                len(a["example_event_ids"]),
                a["detected_at"],
            )
        )
        # One alert for the whole burst, although it fills two sliding windows
        # ([9,11) and [10,12) days): the second is the same episode. 12 distinct customers
        # (K00 reported twice), 12 x 1200 revenue, 5 example ids, HIGH (< 20 customers),
        # detected at the end of the first window that saw it (day 11).
        assert_that(
            alerts,
            equal_to(
                [
                    (
                        "checkout_bug",
                        "ISSUE_SPIKE",
                        "product_quality_lead",
                        12,
                        14400.0,
                        "HIGH",
                        5,
                        11 * DAY_MS,
                    ),
                ]
            ),
            label="OneSpikeAlert",
        )

        levels = (
            out["levels"]
            | "BurstLevels" >> beam.Filter(lambda v: v["window_start"] == 9 * DAY_MS)
            | beam.Map(lambda v: (v["topic"], v["level"], v["affected_customers"]))
        )
        # Window [9,11): login has day 9's reporter L1 plus L0, L1, L2 at 10.5 -> 3
        # distinct (L1 twice): FEW against its ~1-2 per window baseline; billing ONE.
        assert_that(
            levels,
            equal_to(
                [
                    ("checkout_bug", MANY, 12),
                    ("login", FEW, 3),
                    ("billing", ONE, 1),
                ]
            ),
            label="LevelsOfTheBurstWindow",
        )


# --- revenue lookup ------------------------------------------------------------------
def test_monthly_revenue_at_picks_the_change_in_effect():
    changes = [(0, 100.0), (5, 50.0), (8, 0.0)]
    assert monthly_revenue_at(changes, -1) == 0.0  # before signup: unknown
    assert monthly_revenue_at(changes, 3) == 100.0
    assert monthly_revenue_at(changes, 5) == 50.0  # a change applies from its own time
    assert monthly_revenue_at(changes, 9) == 0.0  # after churning the customer pays nothing
    assert monthly_revenue_at(changes, 8, last_paying=True) == 50.0  # what churn takes away


def test_revenue_is_looked_up_as_of_each_rows_event_time():
    def cust(i, day, type_, monthly):
        return {
            **signup("A", monthly),
            "event_id": f"ce-{i}",
            "type": type_,
            "occurred_at": int(day * DAY_MS),
        }

    stream = advance_both(TestStream(), 0)
    # The downgrade (day 5) is read before the signup (day 0); the report (day 3) after
    # both, the cancellation (day 8, monthly_revenue 0) last.
    stream = stream.add_elements(
        stamped([cust(2, 5, "DOWNGRADE", 50.0), cust(1, 0, "SIGNUP", 100.0)]), tag="customer"
    )
    stream = advance_both(stream, 1 * DAY_S)
    stream = stream.add_elements(stamped([report(1, "A", "login", 3)]), tag="feedback")
    stream = advance_both(stream, 4 * DAY_S)
    stream = stream.add_elements(stamped([cust(3, 8, "CANCELLATION", 0.0)]), tag="customer")
    stream = advance_both(stream, MAX_TIMESTAMP)
    with beam.Pipeline(options=streaming_options()) as p:
        events = p | "Events" >> stream
        out = {"feedback": events["feedback"], "customer": events["customer"]} | (
            AttachAnnualRevenue(is_problem_report, num_shards=2)
        )
        # Day 3: 100/month was in effect (the downgrade comes later) -> 1200/year.
        assert_that(
            out["reports"] | "R" >> beam.Map(lambda r: r["annual_revenue"]),
            equal_to([1200.0]),
            label="ReportRevenue",
        )
        # The cancellation itself says 0; the customer was paying 50 -> 600/year lost.
        assert_that(
            out["churn"] | "C" >> beam.Map(lambda r: r["annual_revenue"]),
            equal_to([600.0]),
            label="ChurnRevenue",
        )


def steady_and_burst() -> list[dict]:
    """'login' is reported by 6 new customers every day (12 per 2-day window: its normal),
    and by 40 more on day 35 (a real spike)."""
    rows = [
        report(day * 100 + j, f"S{day:02d}-{j}", "login", day + 0.1 * j)
        for day in range(40)
        for j in range(6)
    ]
    return rows + [report(9000 + j, f"X{j:02d}", "login", 35.5) for j in range(40)]


#: Alerts seen by :func:`_collect` (the in-process runner calls it by reference).
_COLLECTED: list[tuple] = []


def _collect(fact: tuple) -> None:
    _COLLECTED.append(fact)


def spike_alerts(rows: list[dict], warm=None, windows_from_ms=None) -> list[tuple]:
    """``(alert id, detected day)`` of DetectIssueSpikes on a stream whose watermark passes
    each day after its rows."""
    by_day: dict[int, list[dict]] = {}
    for r in rows:
        by_day.setdefault(r["occurred_at"] // DAY_MS, []).append(r)
    stream = TestStream().advance_watermark_to(0)
    for day in sorted(by_day):
        stream = stream.add_elements(stamped(by_day[day])).advance_watermark_to((day + 1) * DAY_S)
    stream = stream.advance_watermark_to_infinity()
    _COLLECTED.clear()
    with beam.Pipeline(options=streaming_options()) as p:
        out = p | stream | DetectIssueSpikes(CFG, RoutingPolicy.load(None), windows_from_ms, warm)
        _ = out["alerts"] | beam.Map(
            lambda a: _collect((a["alert_id"], a["detected_at"] // DAY_MS))
        )
    return sorted(_COLLECTED)


def test_a_warm_start_rebuilds_the_topic_baseline_so_a_restart_raises_no_false_spike():
    """A restart on day 25. Cold, 'login' has no history: 12 reporters against the floor
    (1) look like a spike. Warm, the stored reports since the cut-off rebuild the
    baseline: exactly the uninterrupted run's alerts after the restart (the real spike on
    day 35)."""
    from churnwatch.warm_start import SpikeWarmStart, spike_cut_offs

    rows = steady_and_burst()
    restart = 25 * DAY_MS
    stored = [r for r in rows if r["occurred_at"] < restart]
    live = [r for r in rows if r["occurred_at"] >= restart]
    windows_from, decide_from = spike_cut_offs(max(r["occurred_at"] for r in stored), CFG)
    assert 0 < windows_from < decide_from < restart
    warm = SpikeWarmStart(decide_from, first_end={"login": windows_from + CFG.ms(CFG.window_days)})

    continuous = spike_alerts(rows)
    # a brand-new topic with 6 reporters on day 0 is news; the burst ends window [34, 36)
    assert [day for _, day in continuous] == [1, 36]
    after_restart = [a for a in continuous if a[1] * DAY_MS > restart]  # day 1: stored
    recent = [r for r in stored if r["occurred_at"] >= windows_from]
    assert spike_alerts(recent + live, warm, windows_from) == after_restart
    cold = spike_alerts(live)
    assert set(cold) > set(after_restart), "without its history the topic looks like a spike"
    print(f"\nspike alerts, continuous {continuous}; cold restart on day 25 {cold}")


def test_a_spike_alerted_before_the_restart_is_not_alerted_again():
    """A restart during the burst: its alert (window [34, 36) days) is stored. The stored
    window opens the topic's episode list, so neither that window nor the overlapping
    [35, 37) raises another alert; without it, the same burst would page twice."""
    from churnwatch.warm_start import SpikeWarmStart, spike_cut_offs

    rows = steady_and_burst()
    restart = int(36.3 * DAY_MS)
    stored = [r for r in rows if r["occurred_at"] < restart]
    live = [r for r in rows if r["occurred_at"] >= restart]
    windows_from, decide_from = spike_cut_offs(max(r["occurred_at"] for r in stored), CFG)
    recent = [r for r in stored if r["occurred_at"] >= windows_from]
    known = {"login": windows_from + CFG.ms(CFG.window_days)}
    stored_alert = {"login": [(34 * DAY_MS, 36 * DAY_MS)]}

    warm = SpikeWarmStart(decide_from, first_end=known, episodes=stored_alert)
    assert spike_alerts(recent + live, warm, windows_from) == []
    forgetful = SpikeWarmStart(decide_from, first_end=known)
    assert [day for _, day in spike_alerts(recent + live, forgetful, windows_from)] == [36]
