"""churnwatch simulate: a reproducible customer base, to files or to Pub/Sub."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from churnwatch import topology
from churnwatch.clock import now_ms
from churnwatch.emulator import EMULATOR_ENV
from churnwatch.publish import publish_messages
from churnwatch.simulate import SimConfig, simulate, write_message_log, write_truth

#: Day 0 of a paced run starts this far ahead, so the first events are not already late.
PACED_LEAD_MS = 2_000

HELP = "simulate customers and their feedback; write Avro files or publish to Pub/Sub"


def add_arguments(parser) -> None:
    defaults = SimConfig()
    parser.add_argument("--customers", type=int, default=defaults.customers)
    parser.add_argument("--days", type=float, default=defaults.days, help="simulated days")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--day-seconds",
        type=float,
        default=defaults.day_seconds,
        help="event-time seconds per simulated day (86400 = real time)",
    )
    for name in ("malformed_rate", "duplicate_rate", "late_rate", "out_of_order_rate", "json_rate"):
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=float,
            default=getattr(defaults, name),
            help="share of messages, 0..1",
        )
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for messages.avro and ground_truth.jsonl"
    )
    parser.add_argument(
        "--publish",
        action="store_true",
        help="publish to the topics on the emulator in PUBSUB_EMULATOR_HOST",
    )
    parser.add_argument(
        "--paced",
        action="store_true",
        help="with --publish: publish each message at its event time; day 0 is now",
    )
    parser.add_argument("--project", default=topology.DEFAULT_PROJECT)


def run(args) -> int:
    cfg = SimConfig(
        customers=args.customers,
        days=args.days,
        seed=args.seed,
        day_seconds=args.day_seconds,
        malformed_rate=args.malformed_rate,
        duplicate_rate=args.duplicate_rate,
        late_rate=args.late_rate,
        out_of_order_rate=args.out_of_order_rate,
        json_rate=args.json_rate,
        # Paced publishing waits for each event time: day 0 must be now, not `days` ago,
        # or every event is already past and the whole world goes out at once.
        start_ms=now_ms() + PACED_LEAD_MS if args.publish and args.paced else None,
    )
    if not args.out and not args.publish:
        raise ValueError("say where the simulation goes: --out DIR and/or --publish")
    sim = simulate(cfg)
    if args.out:
        written = write_message_log(sim.messages, args.out / "messages.avro")
        write_truth(sim.truth, args.out / "ground_truth.jsonl")
        (args.out / "simulation.json").write_text(
            json.dumps(
                {
                    "config": dataclasses.asdict(cfg),
                    "start_ms": sim.start_ms,
                    "counts": sim.counts(),
                },
                indent=2,
            )
        )
        print(f"wrote {written} messages and {len(sim.truth)} customers to {args.out}")
    if args.publish:
        if not os.environ.get(EMULATOR_ENV):
            raise RuntimeError(f"--publish needs {EMULATOR_ENV} (see `churnwatch emulator`)")
        topics = {s: topology.topic(args.project, s) for s in ("feedback", "customer")}
        n = publish_messages(sim.messages, topics, paced=args.paced)
        print(f"published {n} messages")
    print(json.dumps(sim.counts()))
    return 0
