"""churnwatch emulator: run the Pub/Sub emulator in the foreground with our topics."""

from __future__ import annotations

import os
import signal
import time

from churnwatch import topology
from churnwatch.emulator import EMULATOR_ENV, ensure_topics, running_emulator

HELP = "start the Pub/Sub emulator on a free port, create the topics, run until Ctrl-C"


def add_arguments(parser) -> None:
    parser.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    parser.add_argument("--project", default=topology.DEFAULT_PROJECT, help="emulator project id")


def _exit_on_signal(signum, frame) -> None:
    # A process manager or `kill` sends SIGTERM; Python's default ends the process without
    # running `finally` blocks, which would leave the Java emulator listening on its port.
    raise SystemExit(128 + signum)


def run(args) -> int:
    # SIGHUP too: closing the terminal the emulator runs in must not orphan the Java process.
    previous = {sig: signal.signal(sig, _exit_on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        with running_emulator(args.port) as emulator:
            ensure_topics(args.project, topology.layout())
            print(f"Pub/Sub emulator on {emulator.host_port}, project {args.project}")
            print(f"  export {EMULATOR_ENV}={os.environ[EMULATOR_ENV]}")
            for source in topology.TOPICS:
                print(f"  {source:9s} {topology.topic(args.project, source)}")
                print(f"  {'':9s} {topology.subscription(args.project, source)}")
            print("Ctrl-C to stop.", flush=True)
            try:
                while emulator.process.poll() is None:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
