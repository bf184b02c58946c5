"""churnwatch notify: deliver alerts from the alerts subscription to their owners, once each.

Environment: the webhook URL of each owner's ``webhook_env`` variable (see
churnwatch/policy/routing.yaml) and CHURNWATCH_SMTP_HOST, CHURNWATCH_SMTP_PORT,
CHURNWATCH_SMTP_USER, CHURNWATCH_SMTP_PASSWORD, CHURNWATCH_SMTP_FROM for email.
PUBSUB_EMULATOR_HOST points the client at the emulator.
"""

from __future__ import annotations

from pathlib import Path

from churnwatch import topology
from churnwatch.commands import add_renamed_flag

HELP = "deliver churn alerts (Pub/Sub) to owners by webhook or email, exactly once each"


def add_arguments(parser) -> None:
    parser.add_argument(
        "--subscription",
        default=topology.subscription(topology.DEFAULT_PROJECT, "alerts"),
        help="projects/<p>/subscriptions/<s> of the alerts topic",
    )
    parser.add_argument(
        "--state",
        type=Path,
        default=Path("notifier-state.duckdb"),
        help="DuckDB file for the delivery log and the notifier's dead letters",
    )
    add_renamed_flag(
        parser, "--routing-policy", "--policy", type=Path, default=None, help="routing policy YAML"
    )
    parser.add_argument(
        "--max-idle-seconds",
        type=float,
        default=None,
        help="exit after this long without messages (default: run forever)",
    )
    parser.add_argument("--once", action="store_true", help="one pull, then exit")
    parser.add_argument("--attempts", type=int, default=5, help="webhook attempts per alert")
    parser.add_argument(
        "--retry-base-seconds",
        type=float,
        default=0.5,
        help="first backoff delay; doubles per attempt (Retry-After wins)",
    )
    parser.add_argument("--timeout-seconds", type=float, default=10.0, help="per HTTP/SMTP request")


def run(args) -> int:
    from churnwatch.notify.channels import RetryPolicy
    from churnwatch.notify.service import DeliveryLog, Notifier
    from churnwatch.routing import RoutingPolicy

    policy = RoutingPolicy.load(args.routing_policy)
    state = DeliveryLog(args.state)
    notifier = Notifier(
        subscription=args.subscription,
        state=state,
        policy=policy,
        retry=RetryPolicy(args.attempts, args.retry_base_seconds, 30.0, args.timeout_seconds),
    )
    print(f"notifier reading {args.subscription}; delivery log {args.state}", flush=True)
    try:
        counts = notifier.run(max_idle_seconds=args.max_idle_seconds, once=args.once)
    except KeyboardInterrupt:
        counts = notifier.counts
    finally:
        notifier.close()
        state.close()
    summary = ", ".join(
        f"{k}={counts.get(k, 0)}"
        for k in ("pulled", "delivered", "duplicates_skipped", "dead_letters", "transient_failures")
    )
    print(f"notifier done: {summary}", flush=True)
    return 0
