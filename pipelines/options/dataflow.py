"""What a Dataflow submission needs beyond the pipeline's own flags; checked before submit."""

from __future__ import annotations

from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    SetupOptions,
    StandardOptions,
    WorkerOptions,
)

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
    from pipelines.options import ChurnwatchOptions  # the package imports this module

    churn = options.view_as(ChurnwatchOptions)
    if not churn.warehouse.startswith("bigquery://"):
        problems.append(f"--warehouse {churn.warehouse!r}: Dataflow writes to bigquery://P/D")
    if churn.read_binding() != "native":
        problems.append("--pubsub_read local is for the DirectRunner; use native or auto")
    if churn.idle_stop_seconds is not None:
        problems.append("--idle_stop_seconds is for local runs; drain a Dataflow job instead")
    if problems:
        raise ValueError("invalid Dataflow options:\n  " + "\n  ".join(problems))
