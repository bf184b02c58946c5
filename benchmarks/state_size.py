"""Bytes of detection state per tracked customer (what each shard pickles and commits).

    .venv/bin/python benchmarks/state_size.py [--customers 20000]

Replays a simulated year through the same Detector the stream uses, groups the customer
records by shard as TrackCustomers does, and prints pickled bytes per customer.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from churnwatch.detection import Customer, Detector, DetectorConfig
from churnwatch.model.packaged import load_model
from churnwatch.routing import RoutingPolicy
from churnwatch.simulate import SimConfig, simulate
from transforms.sharding import shard_of


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--shards", type=int, default=64)
    args = parser.parse_args()
    sim = simulate(SimConfig(customers=args.customers, days=365, seed=99, spike=False))
    detector = Detector(DetectorConfig(), load_model(), RoutingPolicy.load())
    customers: dict[str, Customer] = {}
    events = sorted(sim.events["feedback"] + sim.events["customer"], key=lambda r: r["occurred_at"])
    for row in events:
        c = customers.setdefault(row["customer_id"], Customer())
        detector.apply(c, row["customer_id"], row, row["occurred_at"])
    shards: dict[int, dict[str, Customer]] = {}
    for cid, c in customers.items():
        shards.setdefault(shard_of(cid, args.shards), {})[cid] = c
    total = sum(
        len(pickle.dumps([s, None], protocol=pickle.HIGHEST_PROTOCOL)) for s in shards.values()
    )
    one = len(pickle.dumps(next(iter(customers.values())), protocol=pickle.HIGHEST_PROTOCOL))
    print(f"events replayed:            {len(events):>10,}")
    print(f"customers tracked:          {len(customers):>10,}")
    print(f"shards:                     {len(shards):>10,}")
    print(f"state, all shards (pickled): {total:>10,} bytes")
    print(f"bytes per customer:         {total / len(customers):>10,.0f}  (in shard dicts)")
    print(f"one record pickled alone:   {one:>10,} bytes (class name not shared)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
