"""churnwatch bootstrap: create topics and subscriptions on the emulator (idempotent)."""

from __future__ import annotations

import os

from churnwatch import topology
from churnwatch.emulator import EMULATOR_ENV, ensure_topics

HELP = (
    "create the Churnwatch topics and subscriptions on the emulator named by PUBSUB_EMULATOR_HOST"
)


def add_arguments(parser) -> None:
    parser.add_argument("--project", default=topology.DEFAULT_PROJECT, help="emulator project id")


def run(args) -> int:
    if not os.environ.get(EMULATOR_ENV):
        raise RuntimeError(
            f"{EMULATOR_ENV} is not set: start one with `churnwatch emulator` and export it"
        )
    ensure_topics(args.project, topology.layout())
    for source in topology.TOPICS:
        topic, subscription = (
            topology.topic(args.project, source),
            topology.subscription(args.project, source),
        )
        print(f"{topic} -> {subscription}")
    return 0
