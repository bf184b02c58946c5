"""ChurnwatchOptions' flags, one function per concern, in the order ``--help`` lists them.

Option names are a public interface: change them only with a deprecation. The template
metadata (``pipelines/template_metadata.py``) is generated from these flags.
"""

from __future__ import annotations

from churnwatch.detection import DetectorConfig
from transforms.bigquery_io import STORAGE_WRITE_API, WRITE_METHODS


def pipeline_io_flags(parser) -> None:
    """Where events come from and rows go, and the time scale."""
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
        "--warm_start",
        choices=("on", "off"),
        default="on",
        help="Streaming: when the job starts, restore dedupe ids, every customer's detector "
        "state and the open aggregate windows from --warehouse, so a restart or a new job "
        "neither forgets customers nor raises an alert twice; 'off' starts empty.",
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
        help="Local read: most messages per bundle, pulled in pages while pulls come back "
        "full (the emulator returns at most 100 per pull).",
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


def dedupe_and_decode_flags(parser) -> None:
    """Duplicates and the Avro writer schemas producers may use."""
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
        help="Folder of extra writer schema revisions (*.avsc) producers may use, and the "
        "Pub/Sub revision ids they were committed as (churnwatch.pubsub_revisions).",
    )


def detection_flags(parser) -> None:
    """Alerts: where they go, the model, the routing policy, the detector."""
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


def aggregates_flags(parser) -> None:
    """Aggregate windows, in customer days (x --day_seconds), and lateness."""
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


def spikes_flags(parser) -> None:
    """Issue spikes per topic."""
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


def quality_flags(parser) -> None:
    """Stream data quality (Great Expectations per window)."""
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
        "many days (one Great Expectations validation per table and window).",
    )
    parser.add_argument(
        "--min_quality_window_seconds",
        type=float,
        default=10.0,
        help="Stream quality windows are never shorter than this many seconds of event "
        "time (a compressed demo day would otherwise make many tiny, costly batches).",
    )


FLAG_GROUPS = (
    pipeline_io_flags,
    dedupe_and_decode_flags,
    detection_flags,
    aggregates_flags,
    spikes_flags,
    quality_flags,
)


def add_flags(parser) -> None:
    for group in FLAG_GROUPS:
        group(parser)
