"""What ChurnwatchOptions checks before a graph is built; each problem says what to fix."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from churnwatch.warehouse import WarehouseUrl

if TYPE_CHECKING:
    from pipelines.options import ChurnwatchOptions

SUBSCRIPTION_RE = re.compile(
    r"^projects/[a-z][-a-z0-9]{4,28}[a-z0-9]/subscriptions/[A-Za-z][-\w.~+%]{2,254}$"
)
TOPIC_RE = re.compile(r"^projects/[a-z][-a-z0-9]{4,28}[a-z0-9]/topics/[A-Za-z][-\w.~+%]{2,254}$")


def problems(options: ChurnwatchOptions) -> list[str]:
    """Every invalid flag, then (when the flags are sound) every config that fails to build."""
    found = []
    if any(str(f).startswith("--p_alive_threshold") for f in options._flags or ()):
        found.append(
            "--p_alive_threshold was removed: the risk model combines P(alive) with "
            "behaviour; set --alert_budget (AT_RISK alerts per 1,000 customers per month) "
            "or --risk_threshold"
        )
    if options.risk_threshold is not None and not 0 < options.risk_threshold < 1:
        found.append(f"--risk_threshold={options.risk_threshold}: must be within (0, 1)")
    if not options.alert_budget > 0:
        found.append(f"--alert_budget={options.alert_budget}: must be positive")
    for flag in ("feedback_subscription", "customer_subscription"):
        value = getattr(options, flag)
        if not value:
            found.append(f"--{flag} is required")
        elif not SUBSCRIPTION_RE.match(value):
            found.append(
                f"--{flag}={value!r}: expected projects/PROJECT/subscriptions/NAME "
                "(project id 6-30 chars)"
            )
    try:
        WarehouseUrl.parse(options.warehouse)
    except ValueError as exc:
        found.append(str(exc))
    try:
        options.bigquery_write_config()
    except ValueError as exc:
        found.append(str(exc))
    if options.day_seconds <= 0:
        found.append("--day_seconds must be positive")
    if options.writer_schemas_dir:
        from churnwatch.wire import load_writer_dir

        try:
            load_writer_dir(options.writer_schemas_dir)
        except ValueError as exc:
            found.append(str(exc))
    if options.idle_stop_seconds is not None and options.idle_stop_seconds <= 0:
        found.append("--idle_stop_seconds must be positive")
    if options.dedupe_ttl_seconds <= 0 or options.dedupe_shards <= 0:
        found.append("--dedupe_ttl_seconds and --dedupe_shards must be positive")
    if not 1 <= options.pull_max_messages <= 1000:
        found.append("--pull_max_messages must be within 1..1000 (Pub/Sub's limit)")
    if options.alerts_topic and not TOPIC_RE.match(options.alerts_topic):
        found.append(f"--alerts_topic={options.alerts_topic!r}: expected projects/P/topics/T")
    found.extend(options.configure_state_cache())
    if not found:
        try:
            options.tracking_setup()
        except (ValueError, OSError) as exc:
            found.append(str(exc))
        for build in (options.aggregate_config, options.spike_config, options.quality_config):
            try:
                build()
            except ValueError as exc:
                found.append(f"aggregate / spike / quality options: {exc}")
    return found
