"""Backfill entry point: the same flow on bounded input (Avro message logs), in batch.

    python -m pipelines.backfill --input 'history/*.avro' \\
        --warehouse duckdb:///churnwatch.duckdb

Used to load history, replay dead letters after a fix, and seed the warehouse the churn
model is fit on. Writes are idempotent, so a backfill over rows already present adds none.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from churnwatch.warehouse import prepare_warehouse
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from pipelines.flow import ChurnwatchFlow, FlowConfig
from pipelines.options import ChurnwatchOptions
from pipelines.streaming import write_outputs
from transforms.file_io import ReadMessageLog


class BackfillOptions(PipelineOptions):
    """Only what a bounded run adds; warehouse, day length and dedupe come from
    :class:`~pipelines.options.ChurnwatchOptions`, shared with the streaming pipeline."""

    @classmethod
    def _add_argparse_args(cls, parser):
        # Not `required=True`: every PipelineOptions subclass joins one parser, so a
        # required flag here would break every other pipeline's option parsing.
        parser.add_argument("--input", default=None, help="Avro message-log file pattern.")


def build_pipeline(p: beam.Pipeline, input_pattern: str, options: ChurnwatchOptions) -> dict:
    messages = p | "ReadMessageLog" >> ReadMessageLog(input_pattern)
    config = FlowConfig.from_options(options)
    # Bounded input has no processing-time clock: windows fire on the watermark only.
    config = dataclasses.replace(
        config,
        aggregates=dataclasses.replace(config.aggregates, early_firing_seconds=None),
        # ...and deadline timers fire once, at +inf, after all input: fire every one then.
        tracking=config.tracking and dataclasses.replace(config.tracking, bounded=True),
        # Stream quality is for noticing a broken producer within a window; a bounded load
        # is checked afterwards by `churnwatch quality` (one checkpoint per table instead of
        # one validation per day of history: ~0.1 s each, 25 s for two months loaded twice).
        quality=None,
    )
    outputs = messages | "Churnwatch" >> ChurnwatchFlow(config)
    write_outputs(outputs, options)  # the same tables as the stream
    return outputs


def run(argv: Sequence[str] | None = None):
    options = PipelineOptions(argv)
    standard = options.view_as(StandardOptions)
    if not standard.runner or standard.runner == "DirectRunner":
        standard.runner = "FnApiRunner"  # batch; the default would first try to download Prism
    churn = options.view_as(ChurnwatchOptions)
    if not options.view_as(BackfillOptions).input:
        raise ValueError("--input is required: an Avro message-log file pattern")
    prepare_warehouse(churn.warehouse)
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, options.view_as(BackfillOptions).input, churn)
    result = pipeline.run()
    result.wait_until_finish()
    DuckDBWarehouse.close_all()
    return result


if __name__ == "__main__":
    from pipelines.options.help import exit_with_help_if_asked

    exit_with_help_if_asked(
        sys.argv[1:],
        "python -m pipelines.backfill",
        "The same flow in batch over Avro message logs (history, replays of dead letters).",
        BackfillOptions,
        ChurnwatchOptions,
    )
    logging.getLogger().setLevel(logging.INFO)
    run(sys.argv[1:])
