"""Pipeline flags. Option names are a public interface: change them only with a deprecation."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    SetupOptions,
    StandardOptions,
    WorkerOptions,
)

from churnwatch.aggregation import AggregateConfig
from churnwatch.detection import DetectorConfig
from churnwatch.model.packaged import load_model
from churnwatch.quality.config import QualityConfig
from churnwatch.quality.rules import QualityRules
from churnwatch.routing import RoutingPolicy
from churnwatch.spikes import SpikeConfig
from churnwatch.warehouse import WarehouseUrl
from transforms.bigquery_io import STORAGE_WRITE_API, WRITE_METHODS, BigQueryWriteConfig
from transforms.track_customers import TrackingSetup

SUBSCRIPTION_RE = re.compile(
    r"^projects/[a-z][-a-z0-9]{4,28}[a-z0-9]/subscriptions/[A-Za-z][-\w.~+%]{2,254}$"
)
TOPIC_RE = re.compile(r"^projects/[a-z][-a-z0-9]{4,28}[a-z0-9]/topics/[A-Za-z][-\w.~+%]{2,254}$")


class ChurnwatchOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--feedback_subscription",
            help="Feedback events: projects/PROJECT/subscriptions/NAME.",
        )
        parser.add_argument(
            "--customer_subscription",
            help="Customer lifecycle events: projects/PROJECT/subscriptions/NAME.",
        )
        parser.add_argument(
            "--warehouse",
            default="duckdb:///churnwatch.duckdb",
            help="Where rows go: duckdb:///path/file.duckdb or bigquery://project/dataset.",
        )
        parser.add_argument(
            "--bigquery_write_method",
            choices=WRITE_METHODS,
            default=STORAGE_WRITE_API,
            help="BigQuery warehouse only: STORAGE_WRITE_API (exactly-once appends; a Java "
            "transform fetched when the graph is built) or STREAMING_INSERTS (pure Python).",
        )
        parser.add_argument(
            "--bigquery_triggering_frequency_seconds",
            type=int,
            default=5,
            help="BigQuery Storage Write API: commit appended rows every this many seconds.",
        )
        parser.add_argument(
            "--day_seconds",
            type=float,
            default=86400.0,
            help="Length of one customer day in seconds of event time (86400 in production; "
            "a demo compresses customer lives, e.g. 1.0 = one day per second).",
        )
        parser.add_argument(
            "--idle_stop_seconds",
            type=float,
            default=None,
            help="Local runs only: drain and exit cleanly after this many seconds without input.",
        )
        parser.add_argument(
            "--pubsub_read",
            choices=("auto", "local", "native"),
            default="auto",
            help="Pub/Sub read binding: 'local' (fast pulls, for the DirectRunner and the "
            "emulator), 'native' (ReadFromPubSub, for Dataflow); 'auto' picks by runner.",
        )
        parser.add_argument(
            "--pull_max_messages",
            type=int,
            default=500,
            help="Local read: messages per pull request.",
        )
        parser.add_argument(
            "--pull_timeout_seconds",
            type=float,
            default=1.0,
            help="Local read: give up on an empty pull after this long.",
        )
        parser.add_argument(
            "--watermark_lag_seconds",
            type=float,
            default=2.0,
            help="Local read: the watermark trails the wall clock by this much "
            "(events later than that are late data).",
        )
        parser.add_argument(
            "--dedupe_ttl_seconds",
            type=float,
            default=3600.0,
            help="Event-time span within which a repeated event_id is a duplicate.",
        )
        parser.add_argument(
            "--dedupe_shards",
            type=int,
            default=64,
            help="Dedupe state is kept per shard of the event id, not per id.",
        )
        parser.add_argument(
            "--future_tolerance_seconds",
            type=float,
            default=300.0,
            help="Events stamped further ahead of the wall clock are dead-lettered.",
        )
        parser.add_argument(
            "--writer_schemas_dir",
            default=None,
            help="Folder of extra writer schema revisions (*.avsc) producers may use.",
        )
        parser.add_argument(
            "--alerts_topic",
            default=None,
            help="Publish churn alerts to this topic (projects/PROJECT/topics/NAME).",
        )
        parser.add_argument(
            "--model_params",
            default=None,
            help="Risk model JSON from `churnwatch fit --warehouse` (default: packaged).",
        )
        parser.add_argument(
            "--routing_policy",
            default=None,
            help="Routing policy YAML: owners and authority limits (default: packaged).",
        )
        defaults = DetectorConfig()
        parser.add_argument(
            "--alert_budget",
            type=float,
            default=defaults.alert_budget,
            help="AT_RISK_SILENT alerts per 1,000 active customers per month the owners can "
            "handle; the risk threshold is the lowest whose rate on the model's fitting "
            "history fits it.",
        )
        parser.add_argument(
            "--risk_threshold",
            type=float,
            default=None,
            help="Fixed risk threshold in (0, 1) instead of the one from --alert_budget.",
        )
        parser.add_argument(
            "--lookback_days",
            type=float,
            default=defaults.lookback_days,
            help="Negative feedback this recent makes a customer vocal, not silent.",
        )
        parser.add_argument(
            "--cooldown_days",
            type=float,
            default=defaults.cooldown_days,
            help="A new AT_RISK episode alerts at least this many days after the last one "
            "(one alert per episode; an episode ends with renewed activity).",
        )
        parser.add_argument(
            "--customer_shards",
            type=int,
            default=64,
            help="Customer state is kept per shard of the customer id.",
        )
        # Aggregates and issue spikes: lengths in customer days (x --day_seconds).
        parser.add_argument(
            "--aggregate_fixed_days",
            type=float,
            default=1.0,
            help="Fixed aggregate windows, in days (1 = a daily row).",
        )
        parser.add_argument(
            "--aggregate_sliding_days",
            type=float,
            default=7.0,
            help="Sliding aggregate windows, in days (7 = 'last 7 days').",
        )
        parser.add_argument(
            "--aggregate_sliding_period_days",
            type=float,
            default=1.0,
            help="A new sliding aggregate window starts every this many days.",
        )
        parser.add_argument(
            "--allowed_lateness_days",
            type=float,
            default=3.0,
            help="Events up to this many days behind the watermark still update their "
            "window (a late pane upserts the aggregate row); later ones miss it.",
        )
        parser.add_argument(
            "--min_allowed_lateness_seconds",
            type=float,
            default=60.0,
            help="Floor of the allowed lateness in wall-clock seconds: the pipeline's own "
            "lag is not compressed by --day_seconds (a demo day of 0.2 s would otherwise "
            "drop events that are merely queued).",
        )
        parser.add_argument(
            "--early_firing_seconds",
            type=int,
            default=10,
            help="Early aggregate panes every this many wall-clock seconds while a window "
            "is open (not scaled by --day_seconds).",
        )
        parser.add_argument(
            "--spike_window_days",
            type=float,
            default=2.0,
            help="Issue spikes: distinct customers per topic over this many days...",
        )
        parser.add_argument(
            "--spike_period_days",
            type=float,
            default=1.0,
            help="...in sliding windows starting every this many days.",
        )
        parser.add_argument(
            "--spike_baseline_windows",
            type=int,
            default=14,
            help="Trailing windows of the topic's own history that form its baseline.",
        )
        parser.add_argument(
            "--spike_baseline_floor",
            type=float,
            default=1.0,
            help="Minimum expected customers per window (quiet or new topics).",
        )
        parser.add_argument(
            "--spike_min_customers",
            type=int,
            default=5,
            help="'Many' needs at least this many distinct customers...",
        )
        parser.add_argument(
            "--spike_p_value",
            type=float,
            default=0.001,
            help="...and a Poisson tail probability at most this under the baseline.",
        )

        parser.add_argument(
            "--stream_quality",
            choices=("on", "off"),
            default="on",
            help="Run the data-quality expectation suites on every event-time window of the "
            "stream (Great Expectations; one validation per table and window): on or off.",
        )
        parser.add_argument(
            "--quality_rules",
            default=None,
            help="Quality rules YAML (null-rate limits, conditional rules; default: packaged "
            "churnwatch/policy/quality.yaml). The rest of each suite comes from the schemas.",
        )
        parser.add_argument(
            "--quality_window_days",
            type=float,
            default=1.0,
            help="Stream quality: validate valid rows in fixed event-time windows of this "
            "many days (one Great Expectations validation per table and window)...",
        )
        parser.add_argument(
            "--min_quality_window_seconds",
            type=float,
            default=10.0,
            help="...but never shorter than this many seconds of event time (a compressed "
            "demo day would otherwise make many tiny, costly batches).",
        )

    def validate_churnwatch(self) -> None:
        """Fail before the graph is built, saying what to fix."""
        problems = []
        if any(str(f).startswith("--p_alive_threshold") for f in self._flags or ()):
            problems.append(
                "--p_alive_threshold was removed: the risk model combines P(alive) with "
                "behaviour; set --alert_budget (AT_RISK alerts per 1,000 customers per month) "
                "or --risk_threshold"
            )
        if self.risk_threshold is not None and not 0 < self.risk_threshold < 1:
            problems.append(f"--risk_threshold={self.risk_threshold}: must be within (0, 1)")
        if not self.alert_budget > 0:
            problems.append(f"--alert_budget={self.alert_budget}: must be positive")
        for flag in ("feedback_subscription", "customer_subscription"):
            value = getattr(self, flag)
            if not value:
                problems.append(f"--{flag} is required")
            elif not SUBSCRIPTION_RE.match(value):
                problems.append(
                    f"--{flag}={value!r}: expected projects/PROJECT/subscriptions/NAME "
                    "(project id 6-30 chars)"
                )
        try:
            WarehouseUrl.parse(self.warehouse)
        except ValueError as exc:
            problems.append(str(exc))
        try:
            self.bigquery_write_config()
        except ValueError as exc:
            problems.append(str(exc))
        if self.day_seconds <= 0:
            problems.append("--day_seconds must be positive")
        if self.idle_stop_seconds is not None and self.idle_stop_seconds <= 0:
            problems.append("--idle_stop_seconds must be positive")
        if self.dedupe_ttl_seconds <= 0 or self.dedupe_shards <= 0:
            problems.append("--dedupe_ttl_seconds and --dedupe_shards must be positive")
        if not 1 <= self.pull_max_messages <= 1000:
            problems.append("--pull_max_messages must be within 1..1000 (Pub/Sub's limit)")
        if self.alerts_topic and not TOPIC_RE.match(self.alerts_topic):
            problems.append(f"--alerts_topic={self.alerts_topic!r}: expected projects/P/topics/T")
        if not problems:
            try:
                self.tracking_setup()
            except (ValueError, OSError) as exc:
                problems.append(str(exc))
            for build in (self.aggregate_config, self.spike_config, self.quality_config):
                try:
                    build()
                except ValueError as exc:
                    problems.append(f"aggregate / spike / quality options: {exc}")
        if problems:
            raise ValueError("invalid options:\n  " + "\n  ".join(problems))

    def tracking_setup(self) -> TrackingSetup:
        """Detector config, model parameters and routing policy, loaded and validated."""
        config = DetectorConfig(
            day_seconds=self.day_seconds,
            lookback_days=self.lookback_days,
            alert_budget=self.alert_budget,
            risk_threshold=self.risk_threshold,
            cooldown_days=self.cooldown_days,
        )
        model = load_model(Path(self.model_params) if self.model_params else None)
        return TrackingSetup(
            config, model, RoutingPolicy.load(self.routing_policy), self.customer_shards
        )

    def bigquery_write_config(self) -> BigQueryWriteConfig:
        return BigQueryWriteConfig(
            self.bigquery_write_method, self.bigquery_triggering_frequency_seconds
        )

    def aggregate_config(self) -> AggregateConfig:
        return AggregateConfig(
            day_seconds=self.day_seconds,
            fixed_days=self.aggregate_fixed_days,
            sliding_days=self.aggregate_sliding_days,
            sliding_period_days=self.aggregate_sliding_period_days,
            allowed_lateness_days=self.allowed_lateness_days,
            min_lateness_seconds=self.min_allowed_lateness_seconds,
            early_firing_seconds=self.early_firing_seconds,
        )

    def spike_config(self) -> SpikeConfig:
        return SpikeConfig(
            day_seconds=self.day_seconds,
            window_days=self.spike_window_days,
            period_days=self.spike_period_days,
            allowed_lateness_days=self.allowed_lateness_days,
            min_lateness_seconds=self.min_allowed_lateness_seconds,
            baseline_windows=self.spike_baseline_windows,
            min_baseline_windows=min(3, self.spike_baseline_windows),
            baseline_floor=self.spike_baseline_floor,
            many_min_customers=self.spike_min_customers,
            many_p_value=self.spike_p_value,
            critical_customers=max(20, self.spike_min_customers),
        )

    def quality_config(self) -> QualityConfig | None:
        """Stream quality settings, or None with --stream_quality=off."""
        if self.stream_quality == "off":
            return None
        if importlib.util.find_spec("great_expectations") is None:
            raise ValueError(
                "stream quality needs great-expectations (pip install great-expectations); "
                "or pass --stream_quality=off"
            )
        return QualityConfig(
            day_seconds=self.day_seconds,
            window_days=self.quality_window_days,
            min_window_seconds=self.min_quality_window_seconds,
            allowed_lateness_days=self.allowed_lateness_days,
            min_lateness_seconds=self.min_allowed_lateness_seconds,
            rules=QualityRules.load(self.quality_rules),
        )

    def read_binding(self) -> str:
        if self.pubsub_read != "auto":
            return self.pubsub_read
        runner = (self.view_as(StandardOptions).runner or "DirectRunner").lower()
        return "local" if "direct" in runner else "native"  # BundleBasedDirectRunner too


#: Worker flags a Dataflow deployment must set (see docs/deploy.md); checked before submit.
DATAFLOW_REQUIRED = {
    GoogleCloudOptions: ("project", "region", "temp_location", "service_account_email"),
}


def is_dataflow(options: PipelineOptions) -> bool:
    return "dataflow" in (options.view_as(StandardOptions).runner or "").lower()


def validate_dataflow(options: PipelineOptions) -> None:
    """Fail before submission when a Dataflow run lacks what production needs.

    Streaming Engine is switched on here (it is the only mode we test and size for), and a
    job must run as its own service account, not the broad default compute one.
    """
    cloud = options.view_as(GoogleCloudOptions)
    cloud.enable_streaming_engine = True
    problems = [
        f"--{name} is required on Dataflow"
        for view, names in DATAFLOW_REQUIRED.items()
        for name in names
        if not getattr(options.view_as(view), name)
    ]
    setup = options.view_as(SetupOptions)
    if not (setup.setup_file or options.view_as(WorkerOptions).sdk_container_image):
        problems.append(
            "--setup_file ./setup.py (or --sdk_container_image) is required: workers must "
            "install the churnwatch package"
        )
    churn = options.view_as(ChurnwatchOptions)
    if not churn.warehouse.startswith("bigquery://"):
        problems.append(f"--warehouse {churn.warehouse!r}: Dataflow writes to bigquery://P/D")
    if churn.read_binding() != "native":
        problems.append("--pubsub_read local is for the DirectRunner; use native or auto")
    if churn.idle_stop_seconds is not None:
        problems.append("--idle_stop_seconds is for local runs; drain a Dataflow job instead")
    if problems:
        raise ValueError("invalid Dataflow options:\n  " + "\n  ".join(problems))
