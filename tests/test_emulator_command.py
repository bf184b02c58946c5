"""`churnwatch emulator` stopped the way a process manager stops it (SIGTERM)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from churnwatch.emulator import free_port

pytestmark = pytest.mark.emulator
ROOT = Path(__file__).resolve().parents[1]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def kill_leftovers(port: int) -> list[int]:
    """End processes started for this port only (gcloud's --host-port=127.0.0.1:PORT, the
    Java emulator's --port=PORT)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        mine = f"127.0.0.1:{port}" in cmdline or (
            "pubsub-emulator" in cmdline and f"--port={port}" in cmdline
        )
        if mine and int(entry.name) != os.getpid():
            pids.append(int(entry.name))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stop_signal_stops_the_java_emulator_too(signum):
    # Before: SIGTERM (or SIGHUP) ended the Python process at once and the Java emulator
    # kept the port.
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "churnwatch.cli", "emulator", "--port", str(port)],
        cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C to stop" in line:
                break
        assert listening(port), "".join(lines)
        proc.send_signal(signum)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while listening(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not listening(port), f"the emulator still listens after {signum.name}"
        assert proc.returncode == 128 + signum
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        leftovers = kill_leftovers(port)
    assert leftovers == []  # no Java (or gcloud) process survived
