"""Streaming entry point: Pub/Sub in, warehouse out.

    python -m pipelines.streaming \\
        --feedback_subscription projects/P/subscriptions/feedback-churnwatch \\
        --customer_subscription projects/P/subscriptions/customer-churnwatch \\
        --warehouse duckdb:///churnwatch.duckdb --idle_stop_seconds 10

Locally (DirectRunner + emulator via ``PUBSUB_EMULATOR_HOST``) the reads use the fast
local binding and the run drains itself after ``--idle_stop_seconds`` without input.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from churnwatch import warm_start
from churnwatch.warehouse import prepare_warehouse
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from churnwatch.warm_start import WarmStartPlan
from pipelines.flow import ChurnwatchFlow, FlowConfig
from pipelines.options import ChurnwatchOptions, is_dataflow, validate_dataflow
from transforms.alerts_io import PublishAlerts
from transforms.pubsub_io import ReadMessages
from transforms.pubsub_local import (
    AckOnCommit,
    finish_run,
    hold_after_restart,
    request_stop,
    wait_until_drained,
)
from transforms.warehouse_io import WriteToWarehouse

#: PCollection name -> warehouse table.
SINKS = {
    "feedback_events": "feedback_events",
    "customer_events": "customer_events",
    "dead_letters": "dead_letters",
    "alerts": "churn_alerts",
    "aggregates": "feedback_aggregates",
    "spike_alerts": "churn_alerts",
    "quality_results": "quality_results",
    "quality_alerts": "churn_alerts",
}


#: Outputs that end a message: once written, its Pub/Sub message may be acked.
MESSAGE_ENDS = ("feedback_events", "customer_events", "dead_letters")


def write_outputs(outputs: dict, options: ChurnwatchOptions, on_commit=None) -> None:
    """Every flow output that has a table goes to ``--warehouse`` (stream and backfill).

    ``on_commit`` is handed the message ids of rows and dead letters once written.
    """
    for name, table in SINKS.items():
        if name in outputs:
            outputs[name] | f"Write_{name}" >> WriteToWarehouse(
                options.warehouse,
                table,
                bigquery=options.bigquery_write_config(),
                on_commit=on_commit if name in MESSAGE_ENDS else None,
            )


def warm_start_plan(options: ChurnwatchOptions) -> WarmStartPlan | None:
    """With ``--warm_start=on``: the cut-offs from the newest event the warehouse holds."""
    if options.warm_start != "on":
        return None
    found = warm_start.plan(
        options.warehouse,
        options.aggregate_config(),
        options.dedupe_ttl_seconds,
        options.spike_config(),
    )
    if found.empty:
        logging.info("warm start: the warehouse holds no events yet; starting empty")
    else:
        logging.info(
            "warm start: restoring state from the warehouse (newest event %s; aggregate "
            "and spike windows from %s are rebuilt)",
            _utc(found.newest_ms),
            _utc(found.windows_from_ms),
        )
    return found


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


def build_pipeline(
    p: beam.Pipeline,
    options: ChurnwatchOptions,
    run_id: str,
    warm: WarmStartPlan | None = None,
) -> dict:
    """Wire sources → flow → sinks; returns the flow's outputs (for tests)."""
    binding = options.read_binding()

    def read(subscription: str) -> ReadMessages:
        return ReadMessages(
            subscription,
            binding=binding,
            run_id=run_id,
            idle_stop_seconds=options.idle_stop_seconds,
            max_messages=options.pull_max_messages,
            pull_timeout_s=options.pull_timeout_seconds,
            watermark_lag_s=options.watermark_lag_seconds,
        )

    messages = (
        p | "ReadFeedback" >> read(options.feedback_subscription),
        p | "ReadCustomer" >> read(options.customer_subscription),
    )
    # Locally, a message is acked once its row or dead letter is committed (or its
    # duplicate dropped); Dataflow's own read acks after its checkpoint.
    ack = AckOnCommit(run_id) if binding == "local" else None
    config = replace(FlowConfig.from_options(options), on_duplicate=ack, warm_start=warm)
    outputs = messages | "Churnwatch" >> ChurnwatchFlow(config)
    write_outputs(outputs, options, on_commit=ack)
    if options.alerts_topic:
        # Real Pub/Sub stamps the schema attributes itself; the emulator has no topic schemas.
        emulator = binding == "local"
        outputs["alerts"] | "PublishAlerts" >> PublishAlerts(options.alerts_topic, emulator)
        if "quality_alerts" in outputs:  # to the data engineer on call, via the notifier
            outputs["quality_alerts"] | "PublishQualityAlerts" >> PublishAlerts(
                options.alerts_topic, emulator
            )
    return outputs


#: The streaming DirectRunner that evaluates the local read. The default DirectRunner
#: would first try Prism (a binary download) and then the batch-only FnApiRunner.
LOCAL_RUNNER = "BundleBasedDirectRunner"


def make_options(argv: Sequence[str] | None) -> PipelineOptions:
    options = PipelineOptions(argv)
    standard = options.view_as(StandardOptions)
    standard.streaming = True
    churn = options.view_as(ChurnwatchOptions)
    churn.validate_churnwatch()
    if is_dataflow(options):
        validate_dataflow(options)
    if churn.read_binding() == "local" and (standard.runner or "DirectRunner") == "DirectRunner":
        standard.runner = LOCAL_RUNNER
    return options


def run(argv: Sequence[str] | None = None, run_id: str | None = None):
    """Build and run; blocks until a local run drains. Returns the PipelineResult."""
    options = make_options(argv)
    run_id = run_id or uuid.uuid4().hex
    churn_options = options.view_as(ChurnwatchOptions)
    prepare_warehouse(churn_options.warehouse)
    warm = warm_start_plan(churn_options)
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, churn_options, run_id, warm)
    local = churn_options.read_binding() == "local"
    if local and churn_options.stream_quality == "on":
        from churnwatch.quality.gx_runner import prefetch

        prefetch()  # GX import overlaps the runner's start, not the first window
    if local and warm is not None and not warm.empty:
        hold_after_restart(run_id)  # a killed predecessor's leased messages come back
    result = pipeline.run()
    if local:
        previous = signal.getsignal(signal.SIGINT)

        def drain(_signum, _frame):
            logging.warning("Ctrl-C: draining (final panes and timers), Ctrl-C again to abort")
            request_stop(run_id)
            signal.signal(signal.SIGINT, previous)

        with contextlib.suppress(ValueError):  # not the main thread (tests): no handler
            signal.signal(signal.SIGINT, drain)
        try:
            wait_until_drained(result, run_id)
            finish_run(run_id)  # ack what the last bundles committed
        finally:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGINT, previous)
            DuckDBWarehouse.close_all()
    return result


if __name__ == "__main__":
    from pipelines.options.help import exit_with_help_if_asked

    exit_with_help_if_asked(
        sys.argv[1:],
        "python -m pipelines.streaming",
        "The streaming pipeline: Pub/Sub in; rows, dead letters, alerts and aggregates out.",
        ChurnwatchOptions,
    )
    logging.getLogger().setLevel(logging.INFO)
    run(sys.argv[1:])
