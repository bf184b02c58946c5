"""Backfill entry point: the same flow on bounded input (Avro message logs), in batch.

    python -m pipelines.backfill --input 'history/*.avro' \\
        --warehouse duckdb:///churnwatch.duckdb

Used to load history, replay dead letters after a fix, and seed the warehouse the churn
model is fit on. Writes are idempotent, so a backfill over rows already present adds none.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from churnwatch.warehouse import prepare_warehouse
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from pipelines.flow import ChurnwatchFlow, FlowConfig
from transforms.file_io import ReadMessageLog
from transforms.warehouse_io import WriteToWarehouse

SINKS = {
    "feedback_events": "feedback_events",
    "customer_events": "customer_events",
    "dead_letters": "dead_letters",
}


class BackfillOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--input", required=True, help="Avro message-log file pattern.")
        parser.add_argument(
            "--warehouse",
            default="duckdb:///churnwatch.duckdb",
            help="duckdb:///path/file.duckdb or bigquery://project/dataset.",
        )
        parser.add_argument("--day_seconds", type=float, default=86400.0)
        parser.add_argument("--dedupe_ttl_seconds", type=float, default=7 * 86400.0)
        parser.add_argument("--dedupe_shards", type=int, default=64)
        parser.add_argument(
            "--future_tolerance_seconds",
            type=float,
            default=300.0,
            help="Events stamped further ahead of the wall clock are dead-lettered.",
        )
        parser.add_argument("--writer_schemas_dir", default=None)


def build_pipeline(p: beam.Pipeline, options: BackfillOptions) -> dict:
    messages = p | "ReadMessageLog" >> ReadMessageLog(options.input)
    outputs = messages | "Churnwatch" >> ChurnwatchFlow(FlowConfig.from_options(options))
    for name, table in SINKS.items():
        outputs[name] | f"Write_{table}" >> WriteToWarehouse(options.warehouse, table)
    return outputs


def run(argv: Sequence[str] | None = None):
    options = PipelineOptions(argv)
    standard = options.view_as(StandardOptions)
    if not standard.runner or standard.runner == "DirectRunner":
        standard.runner = "FnApiRunner"  # batch; the default would first try to download Prism
    backfill = options.view_as(BackfillOptions)
    prepare_warehouse(backfill.warehouse)
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, backfill)
    result = pipeline.run()
    result.wait_until_finish()
    DuckDBWarehouse.close_all()
    return result


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    run(sys.argv[1:])
