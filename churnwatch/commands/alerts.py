"""churnwatch alerts: alerts as work items (queue, acknowledge, resolve, reconcile, stats).

    churnwatch alerts list      --warehouse duckdb:///w.duckdb [--owner account_manager]
    churnwatch alerts ack       --warehouse ... ALERT_ID --by alice [--note "calling them"]
    churnwatch alerts resolve   --warehouse ... ALERT_ID --outcome SAVED --by alice
    churnwatch alerts reconcile --warehouse ...   # outcomes from later customer events
    churnwatch alerts stats     --warehouse ...   # precision, save rate, time to action

Every step is checked against the lifecycle before anything is written: an unknown alert
id or an illegal step (resolving an alert nobody acknowledged, resolving twice) prints
what is wrong, exits 2 and leaves the warehouse as it was.
"""

from __future__ import annotations

import argparse

from churnwatch import lifecycle
from churnwatch.warehouse import WarehouseUrl

HELP = "work the alert queue: list, ack, resolve, reconcile outcomes, stats"


def _warehouse_arg(parser) -> None:
    parser.add_argument("--warehouse", required=True, help="duckdb:///path/to/file.duckdb")


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="an owner's queue, highest revenue at risk first")
    _warehouse_arg(listing)
    listing.add_argument("--owner", help="routing-policy owner (default: every owner)")
    listing.add_argument("--limit", type=int, default=20, help="rows to show (0: all)")

    ack = sub.add_parser("ack", help="take an OPEN alert (OPEN -> ACKNOWLEDGED)")
    _warehouse_arg(ack)
    ack.add_argument("alert_id")
    ack.add_argument("--by", required=True, help="who takes it")
    ack.add_argument("--note", default=None)

    resolve = sub.add_parser("resolve", help="close an acknowledged alert with its outcome")
    _warehouse_arg(resolve)
    resolve.add_argument("alert_id")
    resolve.add_argument("--outcome", required=True, choices=lifecycle.PERSON_OUTCOMES)
    resolve.add_argument("--by", required=True, help="who resolves it")
    resolve.add_argument("--note", default=None)

    reconcile = sub.add_parser(
        "reconcile", help="resolve active alerts from later customer events (RECOVERED, LOST)"
    )
    _warehouse_arg(reconcile)

    stats = sub.add_parser(
        "stats", help="production precision, save rate, time to first action, revenue saved"
    )
    _warehouse_arg(stats)
    stats.add_argument("--by", choices=("owner_type", "owner", "type"), default="owner_type")


def duckdb_path(url: str) -> str:
    parsed = WarehouseUrl.parse(url if "://" in url else f"duckdb://{url}")
    if parsed.scheme != "duckdb":
        raise ValueError(
            f"--warehouse {url}: churnwatch alerts works on DuckDB files; on BigQuery "
            "read current_alerts and write alert_events rows"
        )
    return parsed.location


def _ledger(url: str):
    from churnwatch.warehouse.alert_events import AlertLedger
    from churnwatch.warehouse.duckdb_store import open_existing

    return AlertLedger(open_existing(duckdb_path(url)))


def _subject(row: dict) -> str:
    return row.get("customer_id") or row.get("topic") or "-"


def _print_queue(rows: list[dict]) -> None:
    if not rows:
        print("no active alerts")
        return
    header = f"{'alert_id':<18} {'state':<12} {'type':<15} {'sev':<8} {'subject':<14} "
    print(header + f"{'revenue':>10}  owner")
    for r in rows:
        print(
            f"{r['alert_id'][:18]:<18} {r['state']:<12} {r['alert_type']:<15} "
            f"{r['severity']:<8} {_subject(r)[:14]:<14} {r['revenue_at_risk']:>10,.0f}  "
            f"{r['owner']}"
        )


def run(args: argparse.Namespace) -> int:
    ledger = _ledger(args.warehouse)
    try:
        if args.action == "list":
            rows = ledger.queue(args.owner, args.limit or None)
            total = sum(r["revenue_at_risk"] for r in ledger.queue(args.owner))
            who = args.owner or "all owners"
            print(f"queue of {who}: revenue at risk {total:,.0f} (highest first)")
            _print_queue(rows)
        elif args.action == "ack":
            step = ledger.act(args.alert_id, lifecycle.ACKNOWLEDGED, args.by, args.note)
            print(f"{step.alert_id}: ACKNOWLEDGED by {step.actor} (step {step.seq})")
        elif args.action == "resolve":
            step = ledger.act(args.alert_id, args.outcome, args.by, args.note)
            print(f"{step.alert_id}: {step.state} by {step.actor} (step {step.seq})")
        elif args.action == "reconcile":
            counts = ledger.reconcile()
            print(
                f"reconciled {counts['checked']} active customer alerts: "
                f"{counts[lifecycle.RECOVERED]} RECOVERED, {counts[lifecycle.LOST]} LOST "
                "(from later customer events)"
            )
        elif args.action == "stats":
            from churnwatch.outcomes import production_scores, render_scores

            print(render_scores(production_scores(ledger.warehouse, args.by)))
    finally:
        ledger.warehouse.close()
    return 0
