"""The notifier: pull alerts, deliver each once to its owner's channel, then ack.

Exactly-once delivery to people on top of at-least-once Pub/Sub:

1. pull a small batch synchronously (bounded wait);
2. per message: decode (bad bytes -> dead letter), look up the owner's channel in the
   routing policy, skip if the delivery log already has (alert_id, channel), else send;
3. after a successful send, write (alert_id, channel) to the delivery log (a DuckDB
   file, committed per row) *before* acking;
4. ack the delivered, skipped and dead-lettered messages; nack (ack deadline 0) the
   transient failures so Pub/Sub redelivers them.

A restart re-pulls whatever was not acked and the log skips what was already delivered.
The only duplicate left is a crash between the receiver's 200 and the log write; the
payload carries ``alert_id`` for receivers that want to dedupe that too.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from churnwatch import schemas
from churnwatch.clock import now_ms
from churnwatch.dead_letters import dead_letter
from churnwatch.notify.channels import (
    PermanentFailure,
    RetryPolicy,
    TransientFailure,
    send_email,
    send_webhook,
)
from churnwatch.routing import DAILY_DIGEST, RoutingPolicy
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from churnwatch.wire import DecodeError, SchemaMismatch, WriterSchemas

log = logging.getLogger(__name__)

SOURCE = "alerts"
_LOG_DDL = """
CREATE TABLE IF NOT EXISTS notifier_deliveries (
    alert_id VARCHAR NOT NULL,
    channel VARCHAR NOT NULL,
    owner VARCHAR NOT NULL,
    message_id VARCHAR,
    attempts INTEGER NOT NULL,
    delivered_at TIMESTAMP NOT NULL,
    PRIMARY KEY (alert_id, channel)
)
"""


def channel_key(channel: dict[str, str]) -> str:
    """Names the channel without its secret: the env variable name or the address."""
    if "webhook_env" in channel:
        return f"webhook:{channel['webhook_env']}"
    return f"email:{channel['email']}"


class DeliveryLog:
    """Persistent (alert_id, channel) set plus the notifier's dead letters, in one DuckDB file."""

    def __init__(self, path: str | Path) -> None:
        self.warehouse = DuckDBWarehouse(path)
        self.warehouse.ensure_tables(["dead_letters"])
        self.warehouse.query(_LOG_DDL)

    def delivered(self, alert_id: str, channel: str) -> bool:
        rows = self.warehouse.query(
            "SELECT 1 FROM notifier_deliveries WHERE alert_id = ? AND channel = ?",
            [alert_id, channel],
        )
        return bool(rows)

    def record(self, alert_id: str, channel: str, owner: str, message_id: str, attempts: int):
        self.warehouse.query(
            "INSERT INTO notifier_deliveries VALUES (?, ?, ?, ?, ?, epoch_ms(?::BIGINT))"
            " ON CONFLICT DO NOTHING",
            [alert_id, channel, owner, message_id, attempts, now_ms()],
        )

    def dead_letter(self, row: dict[str, Any]) -> None:
        self.warehouse.upsert("dead_letters", [row])

    def close(self) -> None:
        self.warehouse.close()


@dataclass
class Notifier:
    subscription: str
    state: DeliveryLog
    policy: RoutingPolicy
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_messages: int = 10
    pull_timeout_s: float = 2.0
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        from google.cloud import pubsub_v1

        self._client = pubsub_v1.SubscriberClient()
        self._schemas = WriterSchemas(schemas.load(schemas.CHURN_ALERT))

    def close(self) -> None:
        self._client.close()

    def run(self, max_idle_seconds: float | None = None, once: bool = False) -> Counter:
        """Pull until idle for ``max_idle_seconds`` (None: forever) or after one pull."""
        idle_since = time.monotonic()
        while True:
            handled = self.pull_once()
            if handled:
                idle_since = time.monotonic()
            if once:
                return self.counts
            if max_idle_seconds is not None and time.monotonic() - idle_since >= max_idle_seconds:
                return self.counts

    def pull_once(self) -> int:
        from google.api_core import exceptions

        try:
            response = self._client.pull(
                subscription=self.subscription,
                max_messages=self.max_messages,
                timeout=self.pull_timeout_s,
                retry=None,
            )
        except (exceptions.DeadlineExceeded, exceptions.ServiceUnavailable):
            return 0
        ack, nack = [], []
        for received in response.received_messages:
            if self.handle(received.message):
                ack.append(received.ack_id)
            else:
                nack.append(received.ack_id)
        if ack:
            self._client.acknowledge(subscription=self.subscription, ack_ids=ack)
        if nack:
            self._client.modify_ack_deadline(
                subscription=self.subscription, ack_ids=nack, ack_deadline_seconds=0
            )
        self.counts["pulled"] += len(response.received_messages)
        return len(response.received_messages)

    def handle(self, message) -> bool:
        """Deliver one message; True when it may be acked."""
        data, attributes = bytes(message.data), dict(message.attributes)
        try:
            alert, _ = self._schemas.decode(data, attributes)
        except (DecodeError, SchemaMismatch) as exc:
            stage = "DECODE" if isinstance(exc, DecodeError) else "SCHEMA"
            return self._dead(message, stage, str(exc))
        owner = self.policy.owners.get(alert["owner"])
        if owner is None:
            return self._dead(message, "SEMANTIC", f"owner {alert['owner']!r} not in policy")
        if owner.delivery == DAILY_DIGEST:  # they read `churnwatch alerts digest` instead
            self.counts["left_for_digest"] += 1
            return True
        channel = channel_key(owner.channel)
        if self.state.delivered(alert["alert_id"], channel):
            self.counts["duplicates_skipped"] += 1
            return True
        try:
            if "webhook_env" in owner.channel:
                attempts = send_webhook(owner.channel["webhook_env"], alert, self.retry)
            else:
                send_email(owner.channel["email"], alert, self.retry)
                attempts = 1
        except PermanentFailure as exc:
            return self._dead(message, "SINK", f"alert {alert['alert_id']} to {channel}: {exc}")
        except TransientFailure as exc:
            self.counts["transient_failures"] += 1
            log.warning("alert %s to %s not delivered yet: %s", alert["alert_id"], channel, exc)
            return False
        self.state.record(alert["alert_id"], channel, owner.name, message.message_id, attempts)
        self.counts["delivered"] += 1
        log.info("delivered alert %s to %s via %s", alert["alert_id"], owner.name, channel)
        return True

    def _dead(self, message, stage: str, error: str) -> bool:
        self.state.dead_letter(
            dead_letter(
                source=SOURCE,
                payload=bytes(message.data),
                stage=stage,
                error=error,
                message_id=message.message_id,
                publish_time=message.publish_time,
                attributes=dict(message.attributes),
            )
        )
        self.counts["dead_letters"] += 1
        log.warning("alert message %s dead-lettered (%s): %s", message.message_id, stage, error)
        return True
