"""BigQueryWarehouse through the real google-cloud-bigquery client and its HTTP requests.

The client talks to a loopback HTTP server that records each request and answers as the
BigQuery REST API does for an insert (it echoes the resource). What is checked is exactly
what BigQuery would receive: the dataset, each table with partitioning and clustering,
and each ``current_*`` view with its SQL.

``test_live_bigquery_round_trip`` runs against a real project when
``GOOGLE_APPLICATION_CREDENTIALS`` is set; otherwise it is reported as skipped (not run).
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from churnwatch import schemas
from churnwatch.warehouse.bigquery import BigQueryWarehouse, table_schema

PROJECT = "churnwatch-prod"
DATASET = "churnwatch"


class _Recorder(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        self.requests.append(("POST", self.path.split("?")[0], body))
        reply = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


@pytest.fixture
def recorded():
    _Recorder.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = bigquery.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=f"http://127.0.0.1:{server.server_port}"),
    )
    yield client, _Recorder.requests
    server.shutdown()


def test_ensure_tables_sends_dataset_tables_and_views(recorded):
    client, requests = recorded
    done = BigQueryWarehouse(PROJECT, DATASET, location="EU", client=client).ensure_tables()

    paths = [path for _method, path, _body in requests]
    assert paths[0] == f"/bigquery/v2/projects/{PROJECT}/datasets"
    assert set(paths[1:]) == {f"/bigquery/v2/projects/{PROJECT}/datasets/{DATASET}/tables"}
    dataset = requests[0][2]
    assert dataset["datasetReference"] == {"projectId": PROJECT, "datasetId": DATASET}
    assert dataset["location"] == "EU"

    bodies = {body["tableReference"]["tableId"]: body for _m, _p, body in requests[1:]}
    assert set(bodies) == set(done)
    for name, spec in schemas.tables().items():
        table = bodies[name]
        assert table["schema"] == table_schema(spec)
        assert table["timePartitioning"] == {"type": "DAY", "field": spec.partition_field}
        assert table["clustering"] == {"fields": list(spec.cluster_fields)}
        view = bodies[f"current_{name}"]
        assert f"`{PROJECT}.{DATASET}.{name}`" in view["view"]["query"]
        assert view["view"]["useLegacySql"] is False


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

        def filler(c):  # any valid value for a required column
            if c.nullable:
                return None
            return c.symbols[0] if c.symbols else {"string": "x"}.get(c.avro_type, 0)

        base = {
            "window_kind": "FIXED",
            "window_start": 1_764_000_000_000,
            "window_end": 1_764_086_400_000,
            "dimension": "segment",
            "dimension_value": "smb",
            "updated_at": 1_764_086_400_000,
        }
        columns = schemas.table("feedback_aggregates").columns
        rows = [
            {**{c.name: filler(c) for c in columns}, **base, "pane_index": pane, "events": pane}
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
