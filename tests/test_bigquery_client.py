"""BigQueryWarehouse through the real google-cloud-bigquery client and its HTTP requests.

The client talks to the loopback BigQuery endpoint (``tests/bigquery_loopback.py``), which
records each request and answers gets and inserts as the REST API does. What is checked
is exactly what BigQuery would receive: the dataset, each table with partitioning and clustering,
and each ``current_*`` view with its SQL.

``test_live_bigquery_round_trip`` runs against a real project when
``GOOGLE_APPLICATION_CREDENTIALS`` is set; otherwise it is reported as skipped (not run).
"""

from __future__ import annotations

import os
import uuid

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from churnwatch import schemas
from churnwatch.warehouse.bigquery import BigQueryWarehouse, table_schema
from tests.bigquery_loopback import LoopbackBigQuery
from tests.helpers import filler_row

PROJECT = "churnwatch-prod"
DATASET = "churnwatch"


@pytest.fixture
def loopback():
    with LoopbackBigQuery(refuse=lambda table, row: None) as server:
        client = bigquery.Client(
            project=PROJECT,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=server.url),
        )
        yield client, server


def test_ensure_tables_sends_dataset_tables_and_views(loopback):
    client, server = loopback
    created = BigQueryWarehouse(PROJECT, DATASET, location="EU", client=client).ensure_tables()

    inserts = [(path, body) for method, path, body in server.requests if method == "POST"]
    assert inserts[0][0] == f"/bigquery/v2/projects/{PROJECT}/datasets"
    assert {path for path, _ in inserts[1:]} == {
        f"/bigquery/v2/projects/{PROJECT}/datasets/{DATASET}/tables"
    }
    dataset = inserts[0][1]
    assert dataset["datasetReference"] == {"projectId": PROJECT, "datasetId": DATASET}
    assert dataset["location"] == "EU"

    bodies = {body["tableReference"]["tableId"]: body for _path, body in inserts[1:]}
    assert [DATASET, *bodies] == created
    for name, spec in schemas.tables().items():
        table = bodies[name]
        assert table["schema"] == table_schema(spec)
        assert table["timePartitioning"] == {"type": "DAY", "field": spec.partition_field}
        assert table["clustering"] == {"fields": list(spec.cluster_fields)}
        view = bodies[f"current_{name}"]
        assert f"`{PROJECT}.{DATASET}.{name}`" in view["view"]["query"]
        assert view["view"]["useLegacySql"] is False


def test_ensure_tables_only_reads_when_everything_exists(loopback):
    """A second start (or one after `terraform apply`) creates nothing: GETs only."""
    client, server = loopback
    warehouse = BigQueryWarehouse(PROJECT, DATASET, client=client)
    warehouse.ensure_tables()
    server.requests.clear()
    assert warehouse.ensure_tables() == []
    assert {method for method, _path, _body in server.requests} == {"GET"}
    assert len(server.requests) == 1 + 2 * len(schemas.tables())  # dataset + table and view


def test_live_bigquery_round_trip():
    """Opt-in: a real dataset, tables from the schemas, a pipeline write, a view read."""
    if not os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        pytest.skip("NOT RUN: set GOOGLE_APPLICATION_CREDENTIALS (and CHURNWATCH_BQ_PROJECT)")
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from transforms.bigquery_io import STREAMING_INSERTS, BigQueryWriteConfig
    from transforms.warehouse_io import WriteToWarehouse

    project = os.environ.get("CHURNWATCH_BQ_PROJECT") or bigquery.Client().project
    dataset = f"churnwatch_test_{uuid.uuid4().hex[:8]}"
    client = bigquery.Client(project=project)
    BigQueryWarehouse(project, dataset, client=client).ensure_tables(["feedback_aggregates"])
    try:
        base = {
            "window_kind": "FIXED",
            "window_start": 1_764_000_000_000,
            "window_end": 1_764_086_400_000,
            "dimension": "segment",
            "dimension_value": "smb",
            "updated_at": 1_764_086_400_000,
        }
        rows = [
            filler_row("feedback_aggregates", **base, pane_index=pane, events=pane)
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
        latest = list(
            client.query(
                f"SELECT pane_index FROM `{project}.{dataset}.current_feedback_aggregates`"
            ).result()
        )
        assert [r.pane_index for r in latest] == [2]  # one row per window: the latest pane
    finally:
        client.delete_dataset(dataset, delete_contents=True, not_found_ok=True)
