"""churnwatch notify: deliver alerts from the alerts subscription to their owners, once each.

Environment: the https webhook URL of each owner's ``webhook_env`` variable (see
churnwatch/policy/routing.yaml) and CHURNWATCH_SMTP_HOST, CHURNWATCH_SMTP_PORT,
CHURNWATCH_SMTP_SECURITY (starttls, the default, or ssl), CHURNWATCH_SMTP_USER,
CHURNWATCH_SMTP_PASSWORD, CHURNWATCH_SMTP_FROM for email. Any of them may hold a Secret
Manager reference (sm://projects/P/secrets/S/versions/latest) instead of the value.
Every channel of the policy is validated before the first pull; a bad one stops the start
(exit 2) with a message that names the variable, never its value.
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
    parser.add_argument(
        "--lease-seconds",
        type=int,
        default=60,
        help="ack deadline kept on pulled messages while they are delivered (renewed every "
        "third of it; 10-600)",
    )


def run(args) -> int:
    import sys

    from churnwatch.notify.channels import ChannelConfigError, RetryPolicy, load_channels
    from churnwatch.notify.service import DeliveryLog, Notifier
    from churnwatch.routing import PolicyError, RoutingPolicy

    try:
        policy = RoutingPolicy.load(args.routing_policy)
        channels = load_channels(owner.channel for owner in policy.owners.values())
        retry = RetryPolicy(args.attempts, args.retry_base_seconds, 30.0, args.timeout_seconds)
        if not 10 <= args.lease_seconds <= 600:
            raise ValueError("--lease-seconds: Pub/Sub ack deadlines are 10-600 s")
    except (PolicyError, ChannelConfigError, ValueError) as exc:
        print(f"churnwatch notify: {exc}", file=sys.stderr)
        return 2
    state = DeliveryLog(args.state)
    notifier = Notifier(
        subscription=args.subscription,
        state=state,
        policy=policy,
        retry=retry,
        channels=channels,
        lease_seconds=args.lease_seconds,
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
        for k in (
            "pulled",
            "delivered",
            "duplicates_skipped",
            "claimed_elsewhere",
            "dead_letters",
            "transient_failures",
            "lease_extensions",
        )
    )
    print(f"notifier done: {summary}", flush=True)
    return 0
