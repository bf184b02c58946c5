"""DetectIssueSpikes: many distinct customers reporting one topic -> an ISSUE_SPIKE alert.

Input: problem reports (feedback rows with a ``topic``, see :func:`is_problem_report`),
ideally with ``annual_revenue`` attached (transforms/customer_revenue.py); element
timestamps are ``occurred_at``.

Steps::

    reports ─ key by topic ─ sliding windows (window_days every period_days, late panes)
            ─ distinct customers per topic & window (CombineFn)
            ─ global window ─ ClassifyTopicWindows (state per topic: history of counts)
                 ├─> levels: every (topic, window) as ONE / FEW / MANY
                 └─> alerts: ChurnAlert rows for MANY, routed by the policy

The baseline is the topic's own trailing, non-overlapping windows (churnwatch/spikes.py).
Sliding windows overlap, so one burst fills several windows: an episode is a run of
MANY windows that overlap or touch each other, and it raises one alert (whichever of its
windows is classified first; under a drain or a replay that order is arbitrary). A late pane of
the alerted window is not re-sent either; its id is deterministic from (topic, window),
so a re-fired timer or a replay gives the same id and the sink keeps one row.

State is per topic (topics are few: a product's issue keys, not customers).
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.transforms import trigger, window
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec
from apache_beam.utils.timestamp import Duration

from churnwatch import spikes
from churnwatch.alerts import alert_row
from churnwatch.clock import now_ms
from churnwatch.routing import RoutingPolicy
from churnwatch.warm_start import SpikeWarmStart
from transforms.warm_start import KeepWindowsFrom

LEVELS, ALERTS = "levels", "alerts"


def is_problem_report(row: dict[str, Any]) -> bool:
    """A complaint about a named topic: the unit of problem analysis."""
    return row.get("kind") == "COMPLAINT" and bool(row.get("topic"))


def _topic_key(row: dict[str, Any]) -> tuple[str, tuple[str, str, float]]:
    revenue = float(row.get("annual_revenue") or 0.0)
    return row["topic"], (row["customer_id"], row["event_id"], revenue)


class DistinctReportersFn(beam.CombineFn):
    """``(customer_id, event_id, annual_revenue)`` → distinct customers, their revenue, examples.

    Accumulator: ``{customer_id: (annual_revenue, smallest event_id)}``; one entry per
    reporting customer, so a customer who reports ten times counts once.
    """

    def __init__(self, example_ids: int) -> None:
        self.example_ids = example_ids

    def create_accumulator(self) -> dict[str, tuple[float, str]]:
        return {}

    def add_input(self, acc, item):
        customer, event_id, revenue = item
        old = acc.get(customer)
        acc[customer] = (
            max(revenue, old[0]) if old else revenue,
            min(event_id, old[1]) if old else event_id,
        )
        return acc

    def merge_accumulators(self, accs):
        accs = iter(accs)
        merged = next(accs, None) or {}
        for acc in accs:
            for customer, (revenue, event_id) in acc.items():
                self.add_input(merged, (customer, event_id, revenue))
        return merged

    def extract_output(self, acc) -> dict[str, Any]:
        return {
            "affected_customers": len(acc),
            "revenue": round(sum(r for r, _ in acc.values()), 2),
            "example_event_ids": sorted(e for _, e in acc.values())[: self.example_ids],
        }


class _WithWindowFn(beam.DoFn):
    def process(self, element, win=beam.DoFn.WindowParam):
        topic, summary = element
        yield (
            topic,
            {
                **summary,
                "window_start": win.start.micros // 1000,
                "window_end": win.end.micros // 1000,
            },
        )


class _ClassifyTopicWindowsFn(beam.DoFn):
    """Per topic: each window's verdict against the topic's own trailing windows.

    After a warm start (``warm``), a topic known before the cut-off counts empty baseline
    windows as 0 from the cut-off on, as the uninterrupted run did; the stored alerts'
    windows open the episode list, so an episode already alerted is not alerted again;
    windows starting before ``warm.decide_from_ms`` are classified but raise nothing.
    """

    # {"history": {window_end_ms: distinct customers}, "first_end": ms,
    #  "episode": [(start, end) of recent MANY windows]}
    TOPIC = ReadModifyWriteStateSpec("topic", PickleCoder())

    def __init__(
        self, config: spikes.SpikeConfig, policy: RoutingPolicy, warm: SpikeWarmStart | None
    ) -> None:
        self.config = config
        self.policy = policy
        self.warm = warm

    def _initial(self, topic: str, end: int) -> dict[str, Any]:
        if self.warm is None:
            return {"history": {}, "first_end": end, "episode": []}
        return {
            "history": {},
            "first_end": min(end, self.warm.first_end.get(topic, end)),
            "episode": list(self.warm.episodes.get(topic, [])),
        }

    def process(self, element, state=beam.DoFn.StateParam(TOPIC)):
        topic, s = element
        cfg = self.config
        period, start, end = cfg.ms(cfg.period_days), s["window_start"], s["window_end"]
        st = state.read() or self._initial(topic, end)
        st["first_end"] = min(st["first_end"], end)
        history = st["history"]
        baseline = spikes.baseline_counts(
            history, start, period, cfg.baseline_windows, st["first_end"]
        )
        history[end] = max(history.get(end, 0), s["affected_customers"])
        verdict = spikes.classify(s["affected_customers"], baseline, cfg)
        yield beam.pvalue.TaggedOutput(
            LEVELS,
            {
                "topic": topic,
                "window_start": start,
                "window_end": end,
                "level": verdict.level,
                "affected_customers": verdict.count,
                "baseline_mean": verdict.baseline_mean,
                "expected": verdict.expected,
                "p_value": verdict.p_value,
            },
        )
        if verdict.level == spikes.MANY:
            ongoing = any(start <= e and end >= b for b, e in st["episode"])
            st["episode"].append((start, end))
            decided_before = self.warm is not None and start < self.warm.decide_from_ms
            if not ongoing and not decided_before:
                yield beam.pvalue.TaggedOutput(ALERTS, self._alert(topic, s, verdict))
        # Keep only what a future baseline or episode check can still look at.
        horizon = start - cfg.baseline_windows * period - cfg.ms(cfg.window_days)
        st["history"] = {e: n for e, n in history.items() if e >= horizon}
        st["episode"] = sorted({(b, e) for b, e in st["episode"] if e >= horizon})
        state.write(st)

    def _alert(self, topic: str, s: dict[str, Any], verdict: spikes.Classification) -> dict:
        severity = spikes.severity(verdict.count, self.config)
        route = self.policy.route("ISSUE_SPIKE", severity, s["revenue"])
        baseline = "none" if verdict.baseline_mean is None else f"{verdict.baseline_mean:.2f}"
        return alert_row(
            alert_id=spikes.spike_alert_id(topic, s["window_start"], s["window_end"]),
            alert_type="ISSUE_SPIKE",
            severity=severity,
            topic=topic,
            detected_at=s["window_end"],
            processed_at=now_ms(),
            revenue_at_risk=s["revenue"],
            reason_codes=[
                "many_customers_report_same_topic",
                f"distinct_customers={verdict.count}",
                f"baseline_mean={baseline}",
                f"poisson_p={verdict.p_value:.2g}",
            ],
            affected_customers=verdict.count,
            example_event_ids=s["example_event_ids"],
            owner=route.owner,
            authority_limit=route.authority_limit,
            model_version=spikes.MODEL_VERSION,
        )


class DetectIssueSpikes(beam.PTransform):
    """Problem reports → ``{"alerts": ChurnAlert rows, "levels": per topic-window verdicts}``.

    With a warm start, the reports carry the stored ones since ``windows_from_ms``;
    windows starting earlier are left out (:class:`KeepWindowsFrom`) and ``warm`` says
    how the classifier picks up (see :class:`_ClassifyTopicWindowsFn`).
    """

    def __init__(
        self,
        config: spikes.SpikeConfig,
        policy: RoutingPolicy,
        windows_from_ms: int | None = None,
        warm: SpikeWarmStart | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.policy = policy
        self.windows_from_ms = windows_from_ms
        self.warm = warm

    def expand(self, reports):
        c = self.config
        seconds = c.day_seconds
        windowed = (
            reports
            | "OnlyProblemReports" >> beam.Filter(is_problem_report)
            | "KeyByTopic"
            >> beam.Map(
                lambda r: (
                    r["topic"],
                    (r["customer_id"], r["event_id"], float(r.get("annual_revenue") or 0.0)),
                )
            )
            | "SpikeWindows"
            >> beam.WindowInto(
                window.SlidingWindows(c.window_days * seconds, c.period_days * seconds),
                trigger=trigger.AfterWatermark(late=trigger.AfterCount(1)),
                accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
                allowed_lateness=Duration(seconds=c.lateness_seconds),
            )
        )
        if self.windows_from_ms is not None:
            windowed = windowed | "OnlyWindowsFrom" >> beam.ParDo(
                KeepWindowsFrom(self.windows_from_ms)
            )
        out = (
            windowed
            | "DistinctReporters" >> beam.CombinePerKey(DistinctReportersFn(c.example_ids))
            | "AttachWindow" >> beam.ParDo(_WithWindowFn())
            | "TopicHistory" >> beam.WindowInto(window.GlobalWindows())
            | "ClassifyTopicWindows"
            >> beam.ParDo(_ClassifyTopicWindowsFn(c, self.policy, self.warm)).with_outputs(
                LEVELS, ALERTS
            )
        )
        return {ALERTS: out[ALERTS], LEVELS: out[LEVELS]}
