"""Opt-in check against real BigQuery: ``make test-bigquery`` (not part of ``make test``).

A temporary dataset, tables and views from the schemas, three panes of one aggregate
window written by the pipeline's sink, and ``current_feedback_aggregates`` read back: it
must hold one row, the latest pane. The dataset is deleted afterwards.

Needs ``GOOGLE_APPLICATION_CREDENTIALS`` (and optionally ``CHURNWATCH_BQ_PROJECT``).
Without them it prints ``NOT RUN`` and exits 2, so a missing check is never a pass.
"""

from __future__ import annotations

import os
import sys
import uuid

NOT_RUN = 2


def round_trip(project: str) -> list[int]:
    """Pane indexes BI sees for one window after panes 0, 1 and 2 were written."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from google.cloud import bigquery

    from churnwatch.warehouse.bigquery import BigQueryWarehouse
    from tests.helpers import filler_row
    from transforms.bigquery_io import STREAMING_INSERTS, BigQueryWriteConfig
    from transforms.warehouse_io import WriteToWarehouse

    dataset = f"churnwatch_test_{uuid.uuid4().hex[:8]}"
    client = bigquery.Client(project=project)
    BigQueryWarehouse(project, dataset, client=client).ensure_tables(["feedback_aggregates"])
    try:
        window = {
            "window_kind": "FIXED",
            "window_start": 1_764_000_000_000,
            "window_end": 1_764_086_400_000,
            "dimension": "segment",
            "dimension_value": "smb",
        }
        rows = [
            filler_row(
                "feedback_aggregates",
                **window,
                pane_index=pane,
                events=pane,
                updated_at=1_764_086_400_000 + pane,
            )
            for pane in (0, 1, 2)
        ]
        with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
            _ = (
                p
                | beam.Create(rows)
                | WriteToWarehouse(
                    f"bigquery://{project}/{dataset}",
                    "feedback_aggregates",
                    bigquery=BigQueryWriteConfig(method=STREAMING_INSERTS),
                )
            )
        query = f"SELECT pane_index FROM `{project}.{dataset}.current_feedback_aggregates`"
        return [row.pane_index for row in client.query(query).result()]
    finally:
        client.delete_dataset(dataset, delete_contents=True, not_found_ok=True)


def main() -> int:
    if not os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        print("live BigQuery check: NOT RUN (set GOOGLE_APPLICATION_CREDENTIALS)")
        return NOT_RUN
    from google.cloud import bigquery

    project = os.environ.get("CHURNWATCH_BQ_PROJECT") or bigquery.Client().project
    seen = round_trip(project)
    if seen != [2]:  # one row per window: the latest pane
        print(f"live BigQuery check: FAILED, current_feedback_aggregates shows panes {seen}")
        return 1
    print(f"live BigQuery check: passed in project {project}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
