"""The notifier's start-up checks and its delivery log's claims (no emulator needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from churnwatch.notify.service import DeliveryLog
from churnwatch.routing import PolicyError, RoutingPolicy

ROOT = Path(__file__).resolve().parents[1]
SECRET = "T0SECRET/B0SECRET/hook-token-4242"

POLICY = {
    "owners": {
        "agent": {"authority_limit": 10, "channel": {"webhook_env": "CHURNWATCH_WEBHOOK_X"}},
    },
    "rules": [{"alert_type": "SILENT_CHURN", "owner": "agent"}],
    "default_owner": "agent",
}


@pytest.mark.parametrize(
    "channel",
    [None, {}, {"webhook_env": ""}, {"webhook_env": "lower-case"}, {"email": "no-at-sign"},
     {"webhook_env": "A_VAR", "email": "a@example.com"}, {"pager": "x"}],
)  # fmt: skip
def test_an_owner_without_a_usable_channel_is_refused(channel):
    # Before: an owner without a channel passed and the notifier crashed with KeyError.
    doc = {**POLICY, "owners": {"agent": {"authority_limit": 10, "channel": channel}}}
    if channel is None:
        del doc["owners"]["agent"]["channel"]
    with pytest.raises(PolicyError, match="owner 'agent': channel must be exactly one"):
        RoutingPolicy.from_dict(doc)


def test_the_packaged_policy_still_loads():
    policy = RoutingPolicy.load()
    assert all(len(owner.channel) == 1 for owner in policy.owners.values())


def run_notify(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in __import__("os").environ.items() if "CHURNWATCH_" not in k}
    return subprocess.run(
        [sys.executable, "-m", "churnwatch.cli", "notify", *args],
        cwd=ROOT, env={**clean, **env}, text=True, capture_output=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(
    "url",
    [f"hooks.example.com/services/{SECRET}", f"https://hooks.example.com:99x/{SECRET}",
     f"https://hooks.example.com/services/ {SECRET}", f"file:///tmp/{SECRET}"],
)  # fmt: skip
def test_a_malformed_webhook_stops_the_start_naming_only_the_variable(url, tmp_path):
    # Before: the URL was printed in full when the first alert arrived, the process
    # exited 2 and the redelivered message crashed it again.
    env = {"CHURNWATCH_WEBHOOK_FRONTLINE": url, "PUBSUB_EMULATOR_HOST": "127.0.0.1:9"}
    result = run_notify(env, "--state", str(tmp_path / "s.duckdb"), "--once")
    assert result.returncode == 2
    assert "CHURNWATCH_WEBHOOK_FRONTLINE" in result.stderr
    assert "hook-token-4242" not in result.stdout + result.stderr
    assert "example.com" not in result.stdout + result.stderr
    assert not (tmp_path / "s.duckdb").exists()  # stopped before touching anything


def test_a_bad_smtp_port_stops_the_start(tmp_path):
    env = {name: "https://hooks.example.com/x" for name in
           ("CHURNWATCH_WEBHOOK_FRONTLINE", "CHURNWATCH_WEBHOOK_PRODUCT",
            "CHURNWATCH_WEBHOOK_DATA")}  # fmt: skip
    env.update({"CHURNWATCH_SMTP_HOST": "127.0.0.1", "CHURNWATCH_SMTP_PORT": "25x",
                "CHURNWATCH_SMTP_PASSWORD": "pw-secret-1",
                "CHURNWATCH_SMTP_USER": "u"})  # fmt: skip
    result = run_notify(env, "--state", str(tmp_path / "s.duckdb"), "--once")
    assert result.returncode == 2, result.stderr
    assert "CHURNWATCH_SMTP_PORT" in result.stderr and "Traceback" not in result.stderr
    assert "pw-secret-1" not in result.stderr


def test_claims_keep_two_instances_from_sending_the_same_alert(tmp_path):
    a = DeliveryLog(tmp_path / "log.duckdb", instance="a")
    b = DeliveryLog(tmp_path / "log.duckdb", instance="b")
    assert a.claim("alert-1", "webhook:X", lease_s=60) == DeliveryLog.CLAIMED
    assert b.claim("alert-1", "webhook:X", lease_s=60) == DeliveryLog.BUSY  # a is sending
    assert a.claim("alert-1", "webhook:X", lease_s=60) == DeliveryLog.CLAIMED  # a's redelivery
    a.record("alert-1", "webhook:X", "agent", "m1", 1)
    assert b.claim("alert-1", "webhook:X", lease_s=60) == DeliveryLog.DELIVERED
    # A failed send releases the claim; an expired claim (a crashed instance) is taken over.
    assert a.claim("alert-2", "webhook:X", lease_s=60) == DeliveryLog.CLAIMED
    a.release("alert-2", "webhook:X")
    assert b.claim("alert-2", "webhook:X", lease_s=60) == DeliveryLog.CLAIMED
    assert b.claim("alert-3", "webhook:X", lease_s=-1) == DeliveryLog.CLAIMED  # already expired
    assert a.claim("alert-3", "webhook:X", lease_s=60) == DeliveryLog.CLAIMED


def test_an_unexpected_error_in_one_message_is_a_dead_letter_not_a_crash(tmp_path, monkeypatch):
    # A policy built in code, bypassing validation, with a channel kind the notifier does not
    # know: handling raises inside (KeyError). The message becomes a dead letter and the
    # notifier goes on; before, the exception ended the process and the redelivered message
    # crashed it again.
    from google.cloud import pubsub_v1

    from churnwatch import schemas
    from churnwatch.notify.channels import Channels
    from churnwatch.notify.service import ACK, Notifier
    from churnwatch.routing import Owner
    from churnwatch.wire import attributes_for, encode_binary
    from tests.test_notify_service import alert

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")  # the client is never called
    owner = Owner("pager_duty", "", 0.0, {"pager": "ops"})
    policy = RoutingPolicy({"pager_duty": owner}, (), "pager_duty", "EUR")
    state = DeliveryLog(tmp_path / "state.duckdb")
    notifier = Notifier("projects/p/subscriptions/s", state, policy, channels=Channels({}, None))
    schema = schemas.load(schemas.CHURN_ALERT)
    record = alert("boom-1", "pager_duty")
    message = pubsub_v1.types.PubsubMessage(
        data=encode_binary(schema, record), attributes=attributes_for(schema, record),
        message_id="m-1",
    )  # fmt: skip
    assert notifier.handle(message) == ACK
    notifier.close()
    rows = state.query("SELECT stage, error, message_id FROM dead_letters")
    assert rows == [("SINK", "unexpected KeyError: 'email'", "m-1")]
    assert notifier.counts["dead_letters"] == 1
