"""The notifier: pull alerts, deliver each once to its owner's channel, then ack.

Exactly-once delivery to people on top of at-least-once Pub/Sub:

1. pull a small batch synchronously (bounded wait); while the batch is being delivered a
   background thread extends the ack deadline of its unsettled messages every
   ``lease_seconds / 3`` (a webhook with retries can take minutes, the subscription's
   ack deadline is 60 s, and an expired lease would hand the message to another puller);
2. per message: decode (bad bytes -> dead letter), look up the owner's channel in the
   routing policy, skip if the delivery log already has (alert_id, channel), else claim
   it and send; any unexpected error is caught per message (dead letter), never ends the
   process;
3. after a successful send, write (alert_id, channel) to the delivery log (a DuckDB
   file) *before* acking;
4. ack the delivered, skipped and dead-lettered messages at once; nack (ack deadline 0)
   the transient failures so Pub/Sub redelivers them.

A restart re-pulls whatever was not acked and the log skips what was already delivered.
The only duplicate left is a crash between the receiver's 200 and the log write; the
payload carries ``alert_id`` for receivers that want to dedupe that too.

Several instances: the delivery log opens the DuckDB file only for each read or write
(waiting while another process holds DuckDB's file lock), and an instance claims
(alert_id, channel) before sending; an instance that pulls an alert another one has
claimed nacks it and skips it once it is recorded. This holds for instances that share
the file on one machine (a local disk, where DuckDB's lock works); instances on different
machines cannot share a DuckDB file and each need their own (then only the lease
extension keeps two of them from delivering the same alert).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from churnwatch import schemas
from churnwatch.clock import now_ms
from churnwatch.dead_letters import dead_letter
from churnwatch.notify.channels import (
    Channels,
    PermanentFailure,
    RetryPolicy,
    TransientFailure,
    load_channels,
    scrub,
    send_email,
    send_webhook,
)
from churnwatch.routing import DAILY_DIGEST, RoutingPolicy
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from churnwatch.wire import DecodeError, SchemaMismatch, WriterSchemas

log = logging.getLogger(__name__)

SOURCE = "alerts"
ACK, NACK, DEFER = "ack", "nack", "defer"
#: Redelivery delay for an alert another live instance is sending (Pub/Sub minimum is 10 s).
DEFER_SECONDS = 10
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
_CLAIMS_DDL = """
CREATE TABLE IF NOT EXISTS notifier_claims (
    alert_id VARCHAR NOT NULL,
    channel VARCHAR NOT NULL,
    instance VARCHAR NOT NULL,
    claimed_until TIMESTAMP NOT NULL,
    PRIMARY KEY (alert_id, channel)
)
"""


def channel_key(channel: dict[str, str]) -> str:
    """Names the channel without its secret: the env variable name or the address."""
    if "webhook_env" in channel:
        return f"webhook:{channel['webhook_env']}"
    return f"email:{channel['email']}"


class DeliveryLog:
    """Persistent (alert_id, channel) set, claims and the notifier's dead letters, in one
    DuckDB file that is open only while a read or write runs (see the module docstring)."""

    DELIVERED, CLAIMED, BUSY = "delivered", "claimed", "busy"

    def __init__(
        self, path: str | Path, instance: str | None = None, lock_timeout_s: float = 60.0
    ) -> None:
        self.path = str(path)
        self.instance = instance or f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lock_timeout_s = lock_timeout_s
        self._lock = threading.Lock()
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute(_LOG_DDL)
            con.execute(_CLAIMS_DDL)
        with self._warehouse() as wh:
            wh.ensure_tables(["dead_letters"])

    @contextmanager
    def _open(self, opener: Callable[[str], Any]) -> Iterator[Any]:
        """``opener(path)`` for one operation; waits while another process holds the file."""
        deadline = time.monotonic() + self.lock_timeout_s
        with self._lock:
            while True:
                try:
                    handle = opener(self.path)
                    break
                except duckdb.IOException as exc:
                    if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                        raise
                    time.sleep(random.uniform(0.01, 0.05))
            try:
                yield handle
            finally:
                handle.close()

    def _connect(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        return self._open(duckdb.connect)

    def _warehouse(self) -> AbstractContextManager[DuckDBWarehouse]:
        return self._open(DuckDBWarehouse)

    def delivered(self, alert_id: str, channel: str) -> bool:
        with self._connect() as con:
            rows = con.execute(
                "SELECT 1 FROM notifier_deliveries WHERE alert_id = ? AND channel = ?",
                [alert_id, channel],
            ).fetchall()
        return bool(rows)

    def claim(self, alert_id: str, channel: str, lease_s: float) -> str:
        """DELIVERED (skip), CLAIMED (this instance sends) or BUSY (another instance holds a
        live claim: nack, it comes back and is skipped once recorded)."""
        now = now_ms()
        with self._connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                key = [alert_id, channel]
                done = con.execute(
                    "SELECT 1 FROM notifier_deliveries WHERE alert_id = ? AND channel = ?", key
                ).fetchall()
                if done:
                    con.execute("COMMIT")
                    return self.DELIVERED
                held = con.execute(
                    "SELECT instance FROM notifier_claims WHERE alert_id = ? AND channel = ?"
                    " AND claimed_until > epoch_ms(?::BIGINT)",
                    [*key, now],
                ).fetchall()
                if held and held[0][0] != self.instance and _alive(held[0][0]):
                    con.execute("COMMIT")
                    return self.BUSY
                con.execute(
                    "INSERT OR REPLACE INTO notifier_claims VALUES (?, ?, ?, epoch_ms(?::BIGINT))",
                    [*key, self.instance, now + int(lease_s * 1000)],
                )
                con.execute("COMMIT")
                return self.CLAIMED
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def release(self, alert_id: str, channel: str) -> None:
        """Drop this instance's claim after a failed send, so any instance may retry."""
        with self._connect() as con:
            con.execute(
                "DELETE FROM notifier_claims WHERE alert_id = ? AND channel = ? AND instance = ?",
                [alert_id, channel, self.instance],
            )

    def record(self, alert_id: str, channel: str, owner: str, message_id: str, attempts: int):
        with self._connect() as con:
            con.execute(
                "INSERT INTO notifier_deliveries VALUES (?, ?, ?, ?, ?, epoch_ms(?::BIGINT))"
                " ON CONFLICT DO NOTHING",
                [alert_id, channel, owner, message_id, attempts, now_ms()],
            )
            con.execute(
                "DELETE FROM notifier_claims WHERE alert_id = ? AND channel = ?",
                [alert_id, channel],
            )

    def dead_letter(self, row: dict[str, Any]) -> None:
        with self._warehouse() as wh:
            wh.upsert("dead_letters", [row])

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        """Read the log (tests, operators)."""
        with self._connect() as con:
            return con.execute(sql, params or []).fetchall()

    def close(self) -> None:
        """Nothing stays open between operations; kept for callers that close resources."""


def _alive(instance: str) -> bool:
    """False when ``instance`` ran on this machine and its process is gone (killed while it
    held a claim): its claim is taken over at once instead of waiting for it to expire."""
    host, _, rest = instance.partition(":")
    pid = rest.partition(":")[0]
    if host != os.uname().nodename or not pid.isdigit():
        return True  # another machine's claim: only its expiry can end it
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _LeaseKeeper:
    """Extends the ack deadline of the pulled, unsettled messages until they are settled."""

    def __init__(self, client, subscription: str, lease_seconds: int) -> None:
        self.client, self.subscription, self.lease_seconds = client, subscription, lease_seconds
        self.pending: set[str] = set()
        self.extensions = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def add(self, ack_ids: list[str]) -> None:
        """Track a pulled batch and set its deadline to the lease at once: the subscription's
        own deadline may be shorter than the first renewal (a third of the lease)."""
        with self._lock:
            self.pending.update(ack_ids)
        if ack_ids:
            self._extend(sorted(ack_ids))

    def settle(self, ack_id: str) -> None:
        with self._lock:
            self.pending.discard(ack_id)

    def _run(self) -> None:
        interval = max(self.lease_seconds / 3.0, 0.5)
        while not self._stop.wait(interval):
            with self._lock:
                ack_ids = sorted(self.pending)
            if ack_ids:
                self._extend(ack_ids)
                self.extensions += 1

    def _extend(self, ack_ids: list[str]) -> None:
        try:
            self.client.modify_ack_deadline(
                subscription=self.subscription,
                ack_ids=ack_ids,
                ack_deadline_seconds=self.lease_seconds,
            )
        except Exception as exc:  # a failed extension must not end delivery
            log.warning(
                "ack deadline extension failed",
                extra={"json_fields": {"error_type": type(exc).__name__}},
            )


@dataclass
class Notifier:
    subscription: str
    state: DeliveryLog
    policy: RoutingPolicy
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_messages: int = 10
    pull_timeout_s: float = 2.0
    channels: Channels | None = None
    lease_seconds: int = 60
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        from google.cloud import pubsub_v1

        if not 10 <= self.lease_seconds <= 600:
            raise ValueError("lease_seconds: Pub/Sub ack deadlines are 10-600 s")
        if self.channels is None:  # validated here, at start, not at the first alert
            self.channels = load_channels(o.channel for o in self.policy.owners.values())
        self._client = pubsub_v1.SubscriberClient()
        self._schemas = WriterSchemas(schemas.load(schemas.CHURN_ALERT))
        self._secrets = self.channels.secrets()

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
        received = list(response.received_messages)
        with _LeaseKeeper(self._client, self.subscription, self.lease_seconds) as lease:
            lease.add([r.ack_id for r in received])
            for item in received:
                action = self.handle(item.message)
                if action == ACK:
                    self._client.acknowledge(subscription=self.subscription, ack_ids=[item.ack_id])
                else:  # NACK: redeliver now; DEFER: after another instance had time to finish
                    self._client.modify_ack_deadline(
                        subscription=self.subscription,
                        ack_ids=[item.ack_id],
                        ack_deadline_seconds=0 if action == NACK else DEFER_SECONDS,
                    )
                lease.settle(item.ack_id)
        self.counts["lease_extensions"] += lease.extensions
        self.counts["pulled"] += len(received)
        return len(received)

    def handle(self, message) -> str:
        """Deliver one message; ACK, NACK (redeliver) or DEFER (redeliver later). Never raises."""
        try:
            return self._handle(message)
        except Exception as exc:  # one bad message must not end the notifier
            reason = scrub(f"unexpected {type(exc).__name__}: {exc}", self._secrets)
            log.error(
                "alert message failed unexpectedly",
                extra={"json_fields": {"message_id": message.message_id,
                                       "error_type": type(exc).__name__}},
            )  # fmt: skip
            try:
                return self._dead(message, "SINK", reason)
            except Exception:  # the state file itself is failing: let Pub/Sub redeliver
                self.counts["errors"] += 1
                return NACK

    def _handle(self, message) -> str:
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
            return ACK
        channel = channel_key(owner.channel)
        fields = {"alert_id": alert["alert_id"], "owner": owner.name, "channel": channel}
        claim = self.state.claim(
            alert["alert_id"], channel, lease_s=self.retry.worst_case_seconds() + 60
        )
        if claim == DeliveryLog.DELIVERED:
            self.counts["duplicates_skipped"] += 1
            return ACK
        if claim == DeliveryLog.BUSY:
            self.counts["claimed_elsewhere"] += 1
            log.info("alert claimed by another instance", extra={"json_fields": fields})
            return DEFER
        try:
            if "webhook_env" in owner.channel:
                attempts = send_webhook(
                    self.channels, owner.channel["webhook_env"], alert, self.retry
                )
            else:
                send_email(self.channels, owner.channel["email"], alert, self.retry)
                attempts = 1
        except PermanentFailure as exc:
            self.state.release(alert["alert_id"], channel)
            return self._dead(message, "SINK", f"alert {alert['alert_id']} to {channel}: {exc}")
        except TransientFailure:
            self.state.release(alert["alert_id"], channel)
            self.counts["transient_failures"] += 1
            log.warning(
                "alert not delivered yet",
                extra={"json_fields": {**fields, "attempts": self.retry.attempts}},
            )
            return NACK
        self.state.record(alert["alert_id"], channel, owner.name, message.message_id, attempts)
        self.counts["delivered"] += 1
        log.info("delivered alert", extra={"json_fields": {**fields, "attempts": attempts}})
        return ACK

    def _dead(self, message, stage: str, error: str) -> str:
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
        log.warning(
            "alert message dead-lettered",
            extra={"json_fields": {"message_id": message.message_id, "stage": stage}},
        )
        return ACK
