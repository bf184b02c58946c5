"""The Google Cloud Pub/Sub emulator, started on a free loopback port, and topic setup.

The Google clients find the emulator through ``PUBSUB_EMULATOR_HOST``; so do we.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from churnwatch.topology import subscription_path, topic_path  # the names live there

EMULATOR_ENV = "PUBSUB_EMULATOR_HOST"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Emulator:
    host_port: str
    process: subprocess.Popen | None
    data_dir: str | None = None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # gcloud starts java in its own process group; end the whole group.
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        if self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def start_emulator(port: int | None = None, timeout_s: float = 60.0) -> Emulator:
    """Start ``gcloud beta emulators pubsub start`` and wait until it accepts connections."""
    if shutil.which("gcloud") is None:
        raise RuntimeError(
            "gcloud is not on PATH: install the Google Cloud SDK with the Pub/Sub emulator "
            "component (gcloud components install pubsub-emulator)"
        )
    port = port or free_port()
    host_port = f"127.0.0.1:{port}"
    data_dir = tempfile.mkdtemp(prefix="churnwatch-pubsub-")
    log = open(os.path.join(data_dir, "emulator.log"), "wb")  # noqa: SIM115 - lives with the process
    process = subprocess.Popen(
        [
            "gcloud",
            "beta",
            "emulators",
            "pubsub",
            "start",
            f"--host-port={host_port}",
            f"--data-dir={data_dir}",
            "--quiet",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    emulator = Emulator(host_port, process, data_dir)
    try:
        _wait_until_listening(emulator, port, timeout_s, log)
    except BaseException:  # SIGTERM / Ctrl-C while starting: the child must not outlive us
        emulator.stop()
        raise
    return emulator


def _wait_until_listening(emulator: Emulator, port: int, timeout_s: float, log) -> None:
    process, data_dir, host_port = emulator.process, emulator.data_dir, emulator.host_port
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.flush()
            with open(os.path.join(data_dir, "emulator.log"), errors="replace") as fo:
                text = fo.read()
            raise RuntimeError(f"the Pub/Sub emulator exited early:\n{text[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the Pub/Sub emulator did not listen on {host_port} within {timeout_s}s")


@contextmanager
def running_emulator(port: int | None = None) -> Iterator[Emulator]:
    """Start an emulator, point ``PUBSUB_EMULATOR_HOST`` at it, stop it afterwards."""
    emulator = start_emulator(port)
    previous = os.environ.get(EMULATOR_ENV)
    os.environ[EMULATOR_ENV] = emulator.host_port
    try:
        yield emulator
    finally:
        if previous is None:
            os.environ.pop(EMULATOR_ENV, None)
        else:
            os.environ[EMULATOR_ENV] = previous
        emulator.stop()


def ensure_topics(project: str, topics_to_subscriptions: dict[str, Iterable[str]]) -> None:
    """Create topics and their subscriptions if missing (idempotent)."""
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1

    if len(project) < 6:
        raise ValueError(f"project id {project!r}: the emulator needs at least 6 characters")
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    try:
        for topic, subscriptions in topics_to_subscriptions.items():
            if len(topic) < 3:
                raise ValueError(f"topic {topic!r}: names need at least 3 characters")
            with suppress(AlreadyExists):
                publisher.create_topic(name=topic_path(project, topic))
            for sub in subscriptions:
                with suppress(AlreadyExists):
                    subscriber.create_subscription(
                        name=subscription_path(project, sub),
                        topic=topic_path(project, topic),
                        ack_deadline_seconds=60,
                    )
    finally:
        subscriber.close()
