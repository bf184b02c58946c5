"""BigQueryWarehouse through the real google-cloud-bigquery client and its HTTP requests.

The client talks to the loopback BigQuery endpoint (``tests/bigquery_loopback.py``), which
records each request and answers gets and inserts as the REST API does. What is checked
is exactly what BigQuery would receive: the dataset, each table with partitioning and
clustering, and each ``current_*`` view with its SQL. The same path against a real project
is ``make test-bigquery`` (``tests/live_bigquery.py``), which needs credentials.
"""

from __future__ import annotations

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from churnwatch import schemas
from churnwatch.warehouse.bigquery import BigQueryWarehouse, current_view_name, table_schema
from tests.bigquery_loopback import LoopbackBigQuery

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
        view = bodies[current_view_name(name)]
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
