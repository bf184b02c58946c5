"""Shared fixtures: a real Pub/Sub emulator per session, fresh topics per test."""

from __future__ import annotations

import logging
import os
import uuid

import pytest

from churnwatch.emulator import (
    EMULATOR_ENV,
    ensure_topics,
    start_emulator,
    subscription_path,
    topic_path,
)

PROJECT = "churnwatch-test"

logging.getLogger("apache_beam").setLevel(logging.WARNING)

#: Test files per marker, so ``make test-unit`` (``-m "unit or transform"``) runs the fast
#: ones in under a minute and ``make test`` runs everything. Marked here by file, not in
#: each file, so a new test file needs one line. A file not listed is ``integration``; a
#: ``file.py::test_name`` entry overrides its file (for a slow test among fast ones).
MARKED_FILES = {
    "unit": {
        # pure functions and small library objects: no pipeline, no server, no subprocess
        "test_bigquery_schema.py",
        "test_cli.py",
        "test_detection.py",
        "test_direct_runner_costs.py",
        "test_evaluate.py",
        "test_import_direction.py",
        "test_markers.py",
        "test_model_bgnbd.py",
        "test_notify_channels.py",
        "test_options.py",
        "test_pubsub_local.py",
        "test_schemas.py",
        "test_state_cache.py",
        "test_validation.py",
        "test_wire.py",
    },
    "transform": {
        # one composite PTransform on TestPipeline / TestStream, no external service
        "test_aggregates.py",
        "test_decode_transform.py",
        "test_dedupe.py",
        "test_hostile_inputs.py",
        "test_spikes.py",
        "test_track_customers.py",
    },
    "integration": {
        # unbounded TestStream runs of the whole tracker, ~80 s each on the shared machine
        "test_track_customers.py::test_reordered_events_raise_exactly_the_replays_alerts",
        "test_track_customers.py::test_the_stream_raises_exactly_the_alerts_the_replay_predicts",
    },
    "infra": {
        # Terraform, the Flex Template and the Dataflow graph (needs make tools)
        "test_dataflow_graph.py",
        "test_flex_template.py",
        "test_infra_terraform.py",
    },
}
DEFAULT_MARKER = "integration"


def pytest_collection_modifyitems(config, items):
    """One marker per test from its file name or name (see :data:`MARKED_FILES`)."""
    marker_of = {name: marker for marker, names in MARKED_FILES.items() for name in names}
    for item in items:
        test = f"{item.path.name}::{item.originalname}"
        marker = marker_of.get(test) or marker_of.get(item.path.name, DEFAULT_MARKER)
        item.add_marker(marker)


@pytest.fixture(scope="session")
def pubsub_emulator():
    """The real emulator on a free loopback port, with PUBSUB_EMULATOR_HOST set."""
    emulator = start_emulator()
    previous = os.environ.get(EMULATOR_ENV)
    os.environ[EMULATOR_ENV] = emulator.host_port
    yield emulator
    emulator.stop()
    if previous is None:
        os.environ.pop(EMULATOR_ENV, None)
    else:
        os.environ[EMULATOR_ENV] = previous


@pytest.fixture
def topics(pubsub_emulator):
    """Fresh feedback/customer topics with one subscription each."""
    return fresh_topics()


def fresh_topics() -> dict[str, dict[str, str]]:
    """Feedback, customer and alerts topics with one subscription each, on the emulator."""
    suffix = uuid.uuid4().hex[:8]
    names = {source: f"{source}-{suffix}" for source in ("feedback", "customer", "alerts")}
    ensure_topics(PROJECT, {name: [f"{name}-sub"] for name in names.values()})
    return {
        source: {
            "topic": topic_path(PROJECT, name),
            "subscription": subscription_path(PROJECT, f"{name}-sub"),
        }
        for source, name in names.items()
    }
