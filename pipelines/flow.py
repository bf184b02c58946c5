"""The Churnwatch flow as one composite: messages in, every output PCollection out.

Sources and sinks stay outside (``pipelines/streaming.py``, ``pipelines/backfill.py``),
so the same flow runs on Pub/Sub, files, ``Create`` and ``TestStream``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import apache_beam as beam

from churnwatch import schemas
from churnwatch.aggregation import AggregateConfig
from churnwatch.quality.config import STREAM_TABLES, QualityConfig
from churnwatch.routing import RoutingPolicy
from churnwatch.spikes import SpikeConfig
from churnwatch.warm_start import WarmStartPlan
from transforms.aggregates import ComputeAggregates
from transforms.customer_revenue import AttachAnnualRevenue
from transforms.decode import DecodeAndValidate
from transforms.dedupe import DropDuplicates
from transforms.quality import ValidateWindows
from transforms.spikes import DetectIssueSpikes, is_problem_report
from transforms.track_customers import TrackCustomers, TrackingSetup
from transforms.warm_start import DEDUPE, RECENT, REVENUE_SEED, TRACKING, ReadStoredState


@dataclass(frozen=True)
class FlowConfig:
    dedupe_ttl_seconds: float = 3600.0
    dedupe_shards: int = 64
    future_tolerance_seconds: float = 300.0
    writer_schemas_dir: str | None = None
    day_seconds: float = 86400.0
    tracking: TrackingSetup | None = None  # None: no churn detection (decode/dedupe only)
    aggregates: AggregateConfig = field(default_factory=AggregateConfig)
    spikes: SpikeConfig = field(default_factory=SpikeConfig)
    spike_policy: RoutingPolicy | None = None  # None: the tracking policy, else the packaged one
    quality: QualityConfig | None = None  # None: no expectation suites on the stream
    # Called with the message ids of dropped duplicates (a local run acks them); picklable.
    on_duplicate: Callable | None = None
    # None: start empty; else restore state from the warehouse (churnwatch/warm_start.py)
    warm_start: WarmStartPlan | None = None

    def __post_init__(self) -> None:
        if self.dedupe_ttl_seconds <= 0 or self.dedupe_shards <= 0 or self.day_seconds <= 0:
            raise ValueError("dedupe_ttl_seconds, dedupe_shards and day_seconds must be positive")
        # One length of a day for the whole flow: a part built for another day length is a
        # mistake (windows at 0.5 s a day, detection at 86400), refused rather than patched.
        parts = {"aggregates": self.aggregates, "spikes": self.spikes, "quality": self.quality}
        if self.tracking is not None:
            parts["tracking"] = self.tracking.config
        wrong = {
            name: part.day_seconds
            for name, part in parts.items()
            if part is not None and part.day_seconds != self.day_seconds
        }
        if wrong:
            raise ValueError(
                f"the flow's day is {self.day_seconds:g} s but {wrong} disagree: build every "
                "part with the same day_seconds (FlowConfig.for_day or from_options)"
            )

    @classmethod
    def for_day(cls, day_seconds: float, quality: QualityConfig | None = None, **kw) -> FlowConfig:
        """Default parts, all on one length of a customer day (tests, benchmarks)."""
        return cls(
            day_seconds=day_seconds,
            aggregates=AggregateConfig(day_seconds=day_seconds),
            spikes=SpikeConfig(day_seconds=day_seconds),
            quality=None if quality is None else replace(quality, day_seconds=day_seconds),
            **kw,
        )

    @classmethod
    def from_options(cls, options) -> FlowConfig:
        return cls(
            dedupe_ttl_seconds=options.dedupe_ttl_seconds,
            dedupe_shards=options.dedupe_shards,
            future_tolerance_seconds=options.future_tolerance_seconds,
            writer_schemas_dir=options.writer_schemas_dir,
            day_seconds=options.day_seconds,
            tracking=options.tracking_setup(),
            aggregates=options.aggregate_config(),
            spikes=options.spike_config(),
            quality=options.quality_config(),
        )


class ChurnwatchFlow(beam.PTransform):
    """``(feedback messages, customer messages)`` → dict of output PCollections.

    Outputs: ``feedback_events`` and ``customer_events`` (valid, first occurrence only),
    ``dead_letters`` (every rejected message, raw bytes kept) and, with a tracking setup,
    ``alerts`` (ChurnAlert rows) and ``churn_outcomes`` (every churn, silent or vocal);
    always ``aggregates`` (FeedbackAggregate rows, one per window key and pane) and
    ``spike_alerts`` (ISSUE_SPIKE ChurnAlert rows); with a quality config
    ``quality_results`` (QualityResult rows, one per expectation, window and pane of each
    event table) and ``quality_alerts`` (DATA_QUALITY ChurnAlert rows, one per failing
    table and window).

    With a warm start the stored rows rebuild state and are never output again: dedupe
    and the detector get their shards' stored ids and history, the aggregates and issue
    spikes (and the revenue lookup behind them) the rows of the windows still open and of
    the spike baselines; stream quality sees live rows only.
    """

    def __init__(self, config: FlowConfig) -> None:
        super().__init__()
        self.config = config

    def expand(self, messages: tuple):
        c = self.config
        feedback_messages, customer_messages = messages
        feedback, feedback_dead = feedback_messages | "DecodeFeedback" >> DecodeAndValidate(
            "feedback",
            schemas.load(schemas.FEEDBACK_EVENT),
            c.writer_schemas_dir,
            c.future_tolerance_seconds,
        )
        customer, customer_dead = customer_messages | "DecodeCustomer" >> DecodeAndValidate(
            "customer",
            schemas.load(schemas.CUSTOMER_EVENT),
            c.writer_schemas_dir,
            c.future_tolerance_seconds,
        )
        stored = {}
        if c.warm_start is not None:
            tracking_shards = c.tracking.num_shards if c.tracking is not None else 1
            stored = feedback_messages.pipeline | "WarmStart" >> ReadStoredState(
                c.warm_start, c.dedupe_shards, tracking_shards
            )
        feedback = feedback | "DropDuplicateFeedback" >> DropDuplicates(
            c.dedupe_ttl_seconds,
            c.dedupe_shards,
            on_drop=c.on_duplicate,
            stored=stored.get(DEDUPE["feedback"]),
        )
        customer = customer | "DropDuplicateCustomer" >> DropDuplicates(
            c.dedupe_ttl_seconds,
            c.dedupe_shards,
            on_drop=c.on_duplicate,
            stored=stored.get(DEDUPE["customer"]),
        )
        dead_letters = (feedback_dead, customer_dead) | "AllDeadLetters" >> beam.Flatten()
        outputs = {
            "feedback_events": feedback,
            "customer_events": customer,
            "dead_letters": dead_letters,
        }
        if c.tracking is not None:
            tracked = (feedback, customer) | "TrackCustomers" >> TrackCustomers(
                c.tracking, stored=stored.get(TRACKING)
            )
            outputs["alerts"] = tracked["alerts"]
            outputs["churn_outcomes"] = tracked["outcomes"]
        windows_from_ms = spike_warm = None
        window_feedback, window_customer, revenue_customer = feedback, customer, customer
        if stored:  # the rows of the windows still open, and what revenue was before them
            window_feedback = (feedback, stored[RECENT["feedback"]]) | "WithStoredFeedback" >> (
                beam.Flatten()
            )
            window_customer = (customer, stored[RECENT["customer"]]) | "WithStoredCustomer" >> (
                beam.Flatten()
            )
            revenue_customer = (
                window_customer,
                stored[REVENUE_SEED],
            ) | "WithStoredRevenue" >> beam.Flatten()
            windows_from_ms, spike_warm = c.warm_start.windows_from_ms, c.warm_start.spikes
        revenue = {
            "feedback": window_feedback,  # problem reports, for the spike windows
            "customer": revenue_customer,
        } | "AttachAnnualRevenue" >> AttachAnnualRevenue(is_problem_report, c.dedupe_shards)
        aggregate_inputs = {
            "feedback": window_feedback,
            "customer": window_customer,
            "churn_revenue": revenue["churn"],
        }
        if "churn_outcomes" in outputs:  # silent / vocal churn counts need the detector
            aggregate_inputs["outcomes"] = outputs["churn_outcomes"]
        outputs["aggregates"] = aggregate_inputs | "ComputeAggregates" >> ComputeAggregates(
            c.aggregates, windows_from_ms=windows_from_ms
        )
        policy = c.spike_policy or (c.tracking.policy if c.tracking else RoutingPolicy.load())
        spikes = revenue["reports"] | "DetectIssueSpikes" >> DetectIssueSpikes(
            c.spikes, policy, windows_from_ms, spike_warm
        )
        outputs["spike_alerts"] = spikes["alerts"]
        if c.quality is not None:
            rows = {"feedback_events": feedback, "customer_events": customer}
            checked = {
                table: rows[table] | f"Quality_{table}" >> ValidateWindows(table, c.quality, policy)
                for table in STREAM_TABLES
            }
            outputs["quality_results"] = [
                checked[t]["results"] for t in STREAM_TABLES
            ] | "AllQualityResults" >> beam.Flatten()
            outputs["quality_alerts"] = [
                checked[t]["alerts"] for t in STREAM_TABLES
            ] | "AllQualityAlerts" >> beam.Flatten()
        return outputs
