"""The production graph, built for Dataflow with production options, without submitting it.

``--dry_run`` makes the real ``DataflowRunner`` do everything up to the API call: option
validation, the sdist of ``setup.py`` the workers install, the portable pipeline proto
and the v1b3 job. We check that job: streaming with Streaming Engine, native Pub/Sub
reads, one BigQuery write per table with refused rows routed to ``dead_letters``.

The Storage Write API path is a cross-language transform whose Java expansion service is
fetched from Maven Central while the graph is built (a Dataflow launcher can; this machine
cannot), so the full graph here uses streaming inserts and the Storage Write API
configuration is checked on the transform itself.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.io.gcp.bigquery import BigQueryDisposition
from apache_beam.options.pipeline_options import GoogleCloudOptions, WorkerOptions
from apache_beam.portability.api import beam_runner_api_pb2

from churnwatch import schemas
from churnwatch.warehouse.bigquery import table_schema
from churnwatch.warm_start import WarmStartPlan
from pipelines.options import ChurnwatchOptions
from pipelines.streaming import SINKS, build_pipeline, make_options
from transforms.bigquery_io import (
    STORAGE_WRITE_API,
    BigQueryWriteConfig,
    bigquery_write,
    failed_row_to_dead_letter,
)

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "churnwatch-prod"
SERVICE_ACCOUNT = f"churnwatch-dataflow@{PROJECT}.iam.gserviceaccount.com"
DATAFLOW_ARGV = [
    "--runner=DataflowRunner",
    f"--project={PROJECT}",
    "--region=europe-west1",
    f"--temp_location=gs://{PROJECT}-dataflow/tmp",
    f"--service_account_email={SERVICE_ACCOUNT}",
    f"--setup_file={ROOT / 'setup.py'}",
    "--machine_type=n2-standard-2",
    "--max_num_workers=10",
    "--autoscaling_algorithm=THROUGHPUT_BASED",
    f"--feedback_subscription=projects/{PROJECT}/subscriptions/feedback-churnwatch",
    f"--customer_subscription=projects/{PROJECT}/subscriptions/customer-churnwatch",
    f"--warehouse=bigquery://{PROJECT}/churnwatch",
    f"--alerts_topic=projects/{PROJECT}/topics/churn-alerts",
]


@pytest.fixture(scope="module")
def dry_run():
    """Build and 'submit' once with --dry_run: returns (pipeline, job)."""
    options = make_options([*DATAFLOW_ARGV, "--bigquery_write_method=STREAMING_INSERTS"])
    options.view_as(beam.options.pipeline_options.TestOptions).dry_run = True
    pipeline = beam.Pipeline(options=options)
    churn = options.view_as(ChurnwatchOptions)
    # a job replacing an earlier one: the warehouse holds events (the plan is read at launch)
    warm = WarmStartPlan.for_newest(
        churn.warehouse,
        1_764_000_000_000,
        churn.aggregate_config(),
        ttl_ms=3_600_000,
        spikes=churn.spike_config(),
    )
    build_pipeline(pipeline, churn, "graph-test", warm)
    result = pipeline.run()
    return pipeline, result.job


def transform_names(job) -> set[str]:
    return {t.unique_name for t in job.proto_pipeline.components.transforms.values()}


def test_the_job_is_streaming_on_streaming_engine_as_its_own_service_account(dry_run):
    _pipeline, job = dry_run
    assert job.proto.type.name == "JOB_TYPE_STREAMING"
    cloud = job.options.view_as(GoogleCloudOptions)
    assert cloud.enable_streaming_engine is True
    assert cloud.service_account_email == SERVICE_ACCOUNT
    worker = job.options.view_as(WorkerOptions)
    assert (worker.machine_type, worker.max_num_workers) == ("n2-standard-2", 10)
    assert worker.autoscaling_algorithm == "THROUGHPUT_BASED"


def test_reads_are_the_native_pubsub_source_not_the_local_pull(dry_run):
    names = transform_names(dry_run[1])
    for read in ("ReadFeedback", "ReadCustomer"):
        assert f"{read}/ReadFromPubSub" in names
        assert not any(n.startswith(f"{read}/PullLocally") for n in names)


def test_a_new_job_reads_its_state_back_from_the_warehouse_on_a_worker(dry_run):
    """Warm start on Dataflow: one bounded read (Impulse + ParDo against BigQuery's
    current_* views) whose outputs reach dedupe, the detector and the aggregates."""
    _pipeline, job = dry_run
    names = transform_names(job)
    assert "Churnwatch/WarmStart/ReadWarehouse" in names
    for consumer in (
        "Churnwatch/DropDuplicateFeedback/WithStoredIds",
        "Churnwatch/DropDuplicateCustomer/WithStoredIds",
        "Churnwatch/TrackCustomers/WithStoredHistory",
        "Churnwatch/WithStoredFeedback",
        "Churnwatch/WithStoredRevenue",
        "Churnwatch/ComputeAggregates/OnlyWindowsFromFixed",
        "Churnwatch/DetectIssueSpikes/OnlyWindowsFrom",
    ):
        assert consumer in names, consumer


def test_every_output_table_has_a_bigquery_write_and_a_dead_letter_route(dry_run):
    names = transform_names(dry_run[1])
    for output, table in SINKS.items():
        assert f"Write_{output}/WriteBigQuery/WriteToBigQuery" in names, output
        route = f"Write_{output}/WriteBigQuery/WriteSinkDeadLetters/WriteToBigQuery"
        # Refused dead letters have nowhere further to go: they are counted and logged.
        assert (route in names) == (table != "dead_letters"), output
    assert "PublishAlerts" in {n.split("/")[0] for n in names}


def test_the_staged_package_carries_the_schemas_policy_and_model(dry_run):
    """Workers install workflow.tar.gz (the setup.py sdist): it must hold the data files."""
    staged = {}
    for env in dry_run[1].proto_pipeline.components.environments.values():
        for dep in env.dependencies:
            role = beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(dep.role_payload)
            path = beam_runner_api_pb2.ArtifactFilePayload.FromString(dep.type_payload).path
            staged[role.staged_name] = path
    with tarfile.open(staged["workflow.tar.gz"]) as sdist:
        members = {Path(*Path(m).parts[1:]).as_posix() for m in sdist.getnames()}
    avsc = {f"schemas/{p.name}" for p in (ROOT / "schemas").glob("*.avsc")}
    assert avsc <= members
    assert {"churnwatch/policy/routing.yaml", "churnwatch/model/default_risk.json"} <= members


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--service_account_email": None}, "--service_account_email is required"),
        ({"--setup_file": None}, "--setup_file ./setup.py"),
        ({"--warehouse": "duckdb:///x.duckdb"}, "Dataflow writes to bigquery://P/D"),
        ({"--pubsub_read": "local"}, "--pubsub_read local is for the DirectRunner"),
        ({"--idle_stop_seconds": "5"}, "--idle_stop_seconds is for local runs"),
    ],
)
def test_dataflow_options_fail_fast_naming_the_flag(change, message):
    argv = [a for a in DATAFLOW_ARGV if a.split("=")[0] not in change]
    argv += [f"{flag}={value}" for flag, value in change.items() if value is not None]
    with pytest.raises(ValueError, match=message):
        make_options(argv)


def test_storage_write_api_is_exactly_once_into_precreated_partitioned_tables():
    write = bigquery_write(PROJECT, "churnwatch", "feedback_events", BigQueryWriteConfig())
    spec = schemas.table("feedback_events")
    assert write.method == STORAGE_WRITE_API
    assert write.use_at_least_once is False  # exactly-once streams
    assert write.triggering_frequency == 5
    assert write.with_auto_sharding is True
    assert write.create_disposition == BigQueryDisposition.CREATE_NEVER
    assert write.schema == table_schema(spec)
    assert write.additional_bq_parameters == {
        "timePartitioning": {"type": "DAY", "field": "occurred_at"},
        "clustering": {"fields": ["customer_id"]},
    }
    assert (write.table_reference.projectId, write.table_reference.datasetId) == (
        PROJECT,
        "churnwatch",
    )


@pytest.mark.parametrize(
    "failure",
    [
        # Streaming inserts: (destination, row, errors)
        (
            "churnwatch-prod:churnwatch.feedback_events",
            {"event_id": "e1", "message_id": "m1"},
            [{"reason": "invalid", "message": "no such field: x"}],
        ),
        # Storage Write API: {"failed_row": row, "error_message": text}
        {"failed_row": {"event_id": "e1", "message_id": "m1"}, "error_message": "no such field"},
    ],
)
def test_refused_rows_become_sink_dead_letters_with_row_and_error(failure):
    letter = failed_row_to_dead_letter(failure, "feedback_events")
    assert letter["stage"] == "SINK"
    assert letter["source"] == "feedback_events"
    assert letter["message_id"] == "m1"
    assert b'"event_id": "e1"' in letter["payload"]
    assert "no such field" in letter["error"]
    assert letter["dead_letter_id"] == "feedback_events:SINK:m1"


def test_alerts_leave_pubsubs_own_schema_attributes_to_pubsub():
    """Keys starting with goog are Pub/Sub's: on Dataflow the topic schema sets them."""
    from tests.helpers import filler_row
    from transforms.alerts_io import alert_message

    row = filler_row(
        "churn_alerts", alert_id="a1", alert_type="SILENT_CHURN", owner="o", detected_at=1
    )
    production = alert_message(row, stamp_schema_attributes=False)
    assert not any(key.startswith("goog") for key in production.attributes)
    assert production.attributes["alert_id"] == "a1"
    emulator = alert_message(row, stamp_schema_attributes=True)
    assert emulator.attributes["googclient_schemaencoding"] == "BINARY"
