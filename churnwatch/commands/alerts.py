"""churnwatch alerts: alerts as work items (queue, acknowledge, resolve, reconcile, stats).

    churnwatch alerts list      --warehouse duckdb:///w.duckdb [--owner account_manager]
    churnwatch alerts ack       --warehouse ... ALERT_ID --by alice [--note "calling them"]
    churnwatch alerts resolve   --warehouse ... ALERT_ID --outcome SAVED --by alice
    churnwatch alerts reconcile --warehouse ...   # outcomes from later customer events
    churnwatch alerts stats     --warehouse ...   # precision, save rate, time to action
    churnwatch alerts digest    --warehouse ...   # one message per owner (routing policy)

Every step is checked against the lifecycle before anything is written: an unknown alert
id or an illegal step (resolving an alert nobody acknowledged, resolving twice) prints
what is wrong, exits 2 and leaves the warehouse as it was.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from churnwatch import lifecycle
from churnwatch.warehouse import WarehouseUrl

HELP = "work the alert queue: list, ack, resolve, reconcile outcomes, stats, digest"


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

    digest = sub.add_parser(
        "digest",
        help="send each daily_digest owner (routing policy) one message with their open alerts",
    )
    _warehouse_arg(digest)
    digest.add_argument("--policy", type=Path, default=None, help="routing policy YAML")
    digest.add_argument(
        "--state",
        type=Path,
        default=Path("notifier-state.duckdb"),
        help="delivery log (the notifier's file): each owner gets one digest per day",
    )
    digest.add_argument("--day", default=None, help="digest day, YYYY-MM-DD (default: today UTC)")
    digest.add_argument(
        "--owner", action="append", default=None, help="send to this owner (repeatable) instead"
    )
    digest.add_argument("--dry-run", action="store_true", help="print the digests, send nothing")
    digest.add_argument("--timeout-seconds", type=float, default=10.0)


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


def _digest(args: argparse.Namespace) -> int:
    """Templates are checked before the warehouse is opened: a bad policy changes nothing."""
    from datetime import UTC, datetime

    from churnwatch.notify.channels import RetryPolicy, load_channels
    from churnwatch.notify.digest import (
        DigestTemplates,
        build_digests,
        digest_owners,
        send_digests,
    )
    from churnwatch.notify.service import DeliveryLog
    from churnwatch.routing import RoutingPolicy
    from churnwatch.warehouse.duckdb_store import open_existing
    from churnwatch.warehouse.views import create_views

    policy = RoutingPolicy.load(args.policy)
    templates = DigestTemplates.from_policy(policy)
    owners = digest_owners(policy, args.owner)
    channels = None
    if not args.dry_run:  # every channel checked before anything is read or sent
        channels = load_channels(policy.owners[o].channel for o in owners)
    day = args.day or datetime.now(UTC).strftime("%Y-%m-%d")
    warehouse = open_existing(duckdb_path(args.warehouse), read_only=True)
    try:
        create_views(warehouse, temporary=True)
        columns = ("alert_id", "alert_type", "severity", "owner", "customer_id", "topic")
        columns += ("revenue_at_risk", "state", "age_days", "above_authority", "acknowledged_by")
        queue: dict[str, list[dict]] = {}
        for row in warehouse.query(f"SELECT {', '.join(columns)} FROM v_open_alerts"):
            alert = dict(zip(columns, row, strict=True))
            queue.setdefault(alert["owner"], []).append(alert)
    finally:
        warehouse.close()
    digests = build_digests(policy, templates, queue, day, owners)
    if args.dry_run:
        for d in digests:
            print(f"--- {d.owner} via {next(iter(d.channel))}: {d.subject}\n{d.body}")
        print(f"{len(digests)} digests (dry run, nothing sent)")
        return 0
    state = DeliveryLog(args.state)
    try:
        retry = RetryPolicy(timeout_seconds=args.timeout_seconds)
        counts = send_digests(digests, state, retry, channels)
    finally:
        state.close()
    print(
        f"digests for {day}: {counts['sent']} sent, {counts['already_sent']} already sent, "
        f"{counts['failed']} failed ({len(digests)} owners with open alerts)"
    )
    return 1 if counts["failed"] else 0


def run(args: argparse.Namespace) -> int:
    if args.action == "digest":
        return _digest(args)

    ledger = _ledger(args.warehouse)
    try:
        if args.action == "list":
            rows = ledger.queue(args.owner, args.limit or None)
            total = lifecycle.revenue_at_risk(ledger.queue(args.owner))
            who = args.owner or "all owners"
            print(f"queue of {who}: revenue at risk {total:,.0f} (each customer once)")
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


#: What the demo's lead does with the top of each queue, in order (the last stays taken).
DEMO_OUTCOMES = (lifecycle.SAVED, lifecycle.LOST, lifecycle.NOT_A_RISK, None)


def demo_work_queue(url: str, owners: int = 2, by: str = "demo-lead") -> None:
    """The demo's closing act, through the same commands a lead types.

    Reconciles outcomes from the data, then for the ``owners`` owners with the most
    revenue at risk takes the top alerts of their queue (one per customer) and resolves
    them (saved, lost, not a risk; one stays acknowledged), and prints the outcome table.
    """
    from churnwatch.cli import main

    def step(*argv: str) -> None:
        print(f"$ churnwatch alerts {' '.join(argv)}")
        if main(["alerts", argv[0], "--warehouse", url, *argv[1:]]) != 0:
            raise RuntimeError(f"churnwatch alerts {argv[0]} failed")

    step("reconcile")
    ledger = _ledger(url)
    try:
        queue = [a for a in ledger.queue() if a["customer_id"]]
    finally:
        ledger.warehouse.close()
    ranked_owners: list[str] = []
    for alert in queue:  # highest revenue first, so owners come in revenue order
        if alert["owner"] not in ranked_owners:
            ranked_owners.append(alert["owner"])
    for owner in ranked_owners[:owners]:
        step("list", "--owner", owner, "--limit", "5")
        mine, customers = [], set()
        for alert in queue:  # one alert per customer: a customer is one phone call
            mine_and_new = alert["owner"] == owner and alert["customer_id"] not in customers
            if mine_and_new and alert["state"] == lifecycle.OPEN:
                customers.add(alert["customer_id"])
                mine.append(alert)
        for alert, outcome in zip(mine, DEMO_OUTCOMES, strict=False):
            step("ack", alert["alert_id"], "--by", by, "--note", "called the customer")
            if outcome:
                step("resolve", alert["alert_id"], "--outcome", outcome, "--by", by)
    step("stats")
