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
