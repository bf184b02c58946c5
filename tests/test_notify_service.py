"""The notifier end to end: real Pub/Sub emulator, loopback webhook receiver and SMTP server.

Routing (churnwatch/policy/routing.yaml): frontline_agent -> webhook from
CHURNWATCH_WEBHOOK_FRONTLINE; account_manager -> email to account-managers@example.com.
Every channel of the policy is validated at start, so the tests set all three webhook
variables (the other two point at the same receiver) and the SMTP settings. The receivers
speak TLS with a throwaway certificate that the notifier is told to trust.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from google.cloud import pubsub_v1

from churnwatch import schemas
from churnwatch.notify.channels import RetryPolicy, load_channels
from churnwatch.notify.service import DeliveryLog, Notifier
from churnwatch.routing import RoutingPolicy
from churnwatch.wire import attributes_for, encode_binary
from tests.test_notify_servers import SMTPServer, WebhookReceiver, client_context, tls_files

pytestmark = pytest.mark.emulator

ROOT = Path(__file__).resolve().parents[1]
SMTP_USER, SMTP_PASSWORD = "churnwatch", "smtp-secret-pw-31337"
WEBHOOK_SECRET = "T0SECRET/B0SECRET/hook-secret-token-99"


def alert(alert_id: str, owner: str) -> dict:
    return {
        "alert_id": alert_id, "alert_type": "SILENT_CHURN", "severity": "HIGH",
        "customer_id": f"cust-{alert_id}", "topic": None, "detected_at": 1_780_000_000_000,
        "processed_at": 1_780_000_001_000, "p_alive": 0.1, "expected_purchases": 0.2,
        "days_since_last_activity": 80.0, "typical_gap_days": 20.0, "revenue_at_risk": 1200.0,
        "reason_codes": ["NO_ACTIVITY"], "last_feedback_kind": None, "last_nps": None,
        "affected_customers": None, "example_event_ids": [], "owner": owner,
        "authority_limit": 100.0, "model_version": "test",
    }  # fmt: skip


WEBHOOK_VARS = ("CHURNWATCH_WEBHOOK_FRONTLINE", "CHURNWATCH_WEBHOOK_PRODUCT",
                "CHURNWATCH_WEBHOOK_DATA")  # fmt: skip


def point_webhooks(monkeypatch, url: str) -> None:
    for name in WEBHOOK_VARS:
        monkeypatch.setenv(name, url)


def notifier(subscription: str, state: DeliveryLog, **kwargs) -> Notifier:
    """A Notifier whose channels come from the environment, trusting the test certificate."""
    policy = RoutingPolicy.load()
    channels = load_channels(
        (o.channel for o in policy.owners.values()), ssl_context=client_context()
    )
    return Notifier(subscription, state, policy, channels=channels, **kwargs)


def publish(topic: str, payloads: list[tuple[bytes, dict]]) -> None:
    publisher = pubsub_v1.PublisherClient()
    futures = [publisher.publish(topic, data, **attrs) for data, attrs in payloads]
    for f in futures:
        f.result(timeout=30)


def encoded(record: dict) -> tuple[bytes, dict]:
    schema = schemas.load(schemas.CHURN_ALERT)
    return encode_binary(schema, record), attributes_for(schema, record)


@pytest.fixture
def smtp(monkeypatch):
    with SMTPServer(SMTP_USER, SMTP_PASSWORD) as server:
        for key, value in {"HOST": "127.0.0.1", "PORT": str(server.port), "USER": SMTP_USER,
                           "PASSWORD": SMTP_PASSWORD}.items():  # fmt: skip
            monkeypatch.setenv(f"CHURNWATCH_SMTP_{key}", value)
        yield server


def test_each_alert_delivered_once_duplicates_and_bad_messages_acked(
    topics, tmp_path, smtp, monkeypatch
):
    webhook_ids = [f"w{i}" for i in range(4)]
    email_ids = [f"e{i}" for i in range(3)]
    records = [alert(i, "frontline_agent") for i in webhook_ids]
    records += [alert(i, "account_manager") for i in email_ids]
    # Every alert is published twice (detect timers may fire twice); plus one message that
    # is not Avro and one alert for an owner the policy does not know.
    payloads = [encoded(r) for r in records] * 2
    payloads += [(b"\xff\x00 not avro", {}), encoded(alert("x1", "nobody"))]
    publish(topics["alerts"]["topic"], payloads)

    # The receiver answers the very first request 500, then 200: one retry, no duplicate.
    with WebhookReceiver(lambda n: (500, {}) if n == 0 else (200, {})) as hook:
        point_webhooks(monkeypatch, hook.url(WEBHOOK_SECRET))
        state = DeliveryLog(tmp_path / "notifier.duckdb")
        service = notifier(
            topics["alerts"]["subscription"], state,
            retry=RetryPolicy(attempts=3, base_seconds=0.01, timeout_seconds=5),
        )  # fmt: skip
        counts = service.run(max_idle_seconds=2)
        assert service.run(once=True)["pulled"] == counts["pulled"]  # nothing left to pull
        service.close()
    assert sorted(hook.delivered) == webhook_ids
    assert len(hook.requests) == len(webhook_ids) + 1  # the one 500
    assert sorted(smtp.alert_ids()) == email_ids
    # 16 messages: 7 delivered, 7 duplicates skipped by the delivery log, 2 dead letters.
    assert counts["pulled"] == 16
    assert (counts["delivered"], counts["duplicates_skipped"], counts["dead_letters"]) == (7, 7, 2)
    stages = state.query("SELECT stage, source FROM dead_letters ORDER BY stage")
    assert stages == [("DECODE", "alerts"), ("SEMANTIC", "alerts")]
    assert state.query("SELECT count(*) FROM notifier_deliveries") == [(7,)]
    state.close()


def test_transient_failure_is_not_acked_and_delivered_on_the_next_run(
    topics, tmp_path, monkeypatch, smtp
):
    publish(topics["alerts"]["topic"], [encoded(alert("t1", "frontline_agent"))])
    state = DeliveryLog(tmp_path / "notifier.duckdb")
    with WebhookReceiver(lambda n: "hang") as hook:  # times out every time
        point_webhooks(monkeypatch, hook.url())
        service = notifier(
            topics["alerts"]["subscription"],
            state,
            retry=RetryPolicy(attempts=2, base_seconds=0.01, timeout_seconds=0.3),
        )
        counts = service.run(once=True)
        service.close()
        hook.release.set()
    assert (counts["transient_failures"], counts["delivered"]) == (1, 0)
    assert state.query("SELECT count(*) FROM notifier_deliveries") == [(0,)]
    # The nack made Pub/Sub redeliver it at once; a healthy receiver now gets it once.
    with WebhookReceiver() as hook:
        point_webhooks(monkeypatch, hook.url())
        service = notifier(topics["alerts"]["subscription"], state)
        counts = service.run(max_idle_seconds=2)
        service.close()
    assert hook.delivered == ["t1"] and counts["delivered"] == 1
    state.close()


def test_killed_notifier_restarts_without_losing_or_repeating_alerts(
    pubsub_emulator, topics, tmp_path, smtp
):
    # A subscription with the shortest ack deadline (10 s): what the killed process pulled
    # but never acked comes back 10 s later.
    sub = topics["alerts"]["subscription"] + f"-restart-{uuid.uuid4().hex[:6]}"
    subscriber = pubsub_v1.SubscriberClient()
    subscriber.create_subscription(
        name=sub, topic=topics["alerts"]["topic"], ack_deadline_seconds=10
    )
    subscriber.close()
    webhook_ids = [f"w{i:02d}" for i in range(10)]
    email_ids = [f"e{i:02d}" for i in range(4)]
    records = [alert(i, "frontline_agent") for i in webhook_ids]
    records += [alert(i, "account_manager") for i in email_ids]
    publish(topics["alerts"]["topic"], [encoded(r) for r in records])

    # The 4th webhook request is held unanswered; while it hangs the notifier is killed.
    with WebhookReceiver(lambda n: "hang" if n == 3 else (200, {})) as hook:
        env = dict(os.environ, SSL_CERT_FILE=tls_files()[0])
        env.update({name: hook.url(WEBHOOK_SECRET) for name in WEBHOOK_VARS})
        cmd = [sys.executable, "-m", "churnwatch.cli", "-v", "notify", "--subscription", sub,
               "--state", str(tmp_path / "notifier.duckdb"), "--retry-base-seconds", "0.05",
               "--timeout-seconds", "5", "--lease-seconds", "10"]  # fmt: skip
        first = subprocess.Popen(
            [*cmd, "--max-idle-seconds", "60"], cwd=ROOT, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        assert hook.hanging.wait(60), "the notifier never reached the 4th webhook"
        first.send_signal(signal.SIGKILL)
        first_out = first.communicate(timeout=30)[0]
        hook.release.set()
        delivered_before_kill = len(hook.delivered)
        second = subprocess.run(
            [*cmd, "--max-idle-seconds", "15"], cwd=ROOT, env=env, text=True,
            capture_output=True, timeout=180,
        )  # fmt: skip
    output = first_out + second.stdout + second.stderr
    assert second.returncode == 0, output
    assert delivered_before_kill == 3  # requests 0-2 answered, 3 held when killed
    # Exactly once at the receivers, in spite of the kill and the redelivery.
    assert sorted(hook.delivered) == webhook_ids
    assert sorted(smtp.alert_ids()) == email_ids
    print(f"restart: {second.stdout.strip().splitlines()[-1]}")
    # Secrets come from the environment and never reach the output or logs.
    assert "delivered alert" in output  # -v logs were captured, so the check means something
    for secret in (WEBHOOK_SECRET, "hook-secret-token-99", SMTP_PASSWORD):
        assert secret not in output


def short_deadline_subscription(topic: str, base: str, label: str) -> str:
    """A new subscription with the shortest ack deadline Pub/Sub allows (10 s)."""
    sub = f"{base}-{label}-{uuid.uuid4().hex[:6]}"
    subscriber = pubsub_v1.SubscriberClient()
    subscriber.create_subscription(name=sub, topic=topic, ack_deadline_seconds=10)
    subscriber.close()
    return sub


def test_lease_is_extended_while_a_slow_delivery_runs(topics, tmp_path, monkeypatch, smtp):
    # The receiver answers after 14 s, longer than the subscription's 10 s ack deadline.
    # Without lease extension Pub/Sub hands the message to the next puller at 10 s.
    sub = short_deadline_subscription(
        topics["alerts"]["topic"], topics["alerts"]["subscription"], "lease"
    )
    publish(topics["alerts"]["topic"], [encoded(alert("slow1", "frontline_agent"))])
    slow = lambda n: (time.sleep(14), (200, {}))[1]  # noqa: E731
    state = DeliveryLog(tmp_path / "notifier.duckdb")
    with WebhookReceiver(slow) as hook:
        point_webhooks(monkeypatch, hook.url())
        service = notifier(
            sub, state, lease_seconds=10, retry=RetryPolicy(attempts=1, timeout_seconds=30)
        )
        worker = threading.Thread(target=service.run, kwargs={"once": True})
        worker.start()
        with hook.got:
            assert hook.got.wait_for(lambda: hook.requests, 20), "no webhook request"
        time.sleep(12)  # past the 10 s deadline, before the 14 s answer
        rival = pubsub_v1.SubscriberClient()
        stolen = rival.pull(subscription=sub, max_messages=10, timeout=3, retry=None)
        rival.close()
        worker.join(60)
        service.close()
    assert len(stolen.received_messages) == 0  # the lease held: nobody else got it
    assert hook.delivered == ["slow1"] and service.counts["delivered"] == 1
    assert service.counts["lease_extensions"] >= 2  # every ~3.3 s for ~14 s
    state.close()


def test_two_instances_share_one_delivery_log(topics, tmp_path, smtp):
    # Two notifier processes, one state file, one subscription: every alert once, and the
    # second instance no longer dies on DuckDB's file lock.
    sub = short_deadline_subscription(
        topics["alerts"]["topic"], topics["alerts"]["subscription"], "pair"
    )
    ids = [f"p{i:02d}" for i in range(12)]
    publish(topics["alerts"]["topic"], [encoded(alert(i, "frontline_agent")) for i in ids])
    state_file = tmp_path / "shared.duckdb"
    slow = lambda n: (time.sleep(0.3), (200, {}))[1]  # noqa: E731
    with WebhookReceiver(slow) as hook:
        env = dict(os.environ, SSL_CERT_FILE=tls_files()[0])
        env.update({name: hook.url(WEBHOOK_SECRET) for name in WEBHOOK_VARS})
        cmd = [sys.executable, "-m", "churnwatch.cli", "notify", "--subscription", sub,
               "--state", str(state_file), "--max-idle-seconds", "6",
               "--lease-seconds", "10"]  # fmt: skip
        out = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}
        procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, text=True, **out) for _ in range(2)]
        outputs = [p.communicate(timeout=120)[0] for p in procs]
    for proc, out in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out
    print("two instances:", [o.strip().splitlines()[-1] for o in outputs])
    assert sorted(hook.delivered) == ids  # each once, across both instances
    log = DeliveryLog(state_file)
    assert log.query("SELECT count(*) FROM notifier_deliveries") == [(12,)]
    assert log.query("SELECT count(*) FROM notifier_claims") == [(0,)]
