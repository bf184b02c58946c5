"""Webhook and email channels against real loopback servers (no mocks)."""

from __future__ import annotations

import pytest

from churnwatch.notify.channels import (
    PermanentFailure,
    RetryPolicy,
    TransientFailure,
    send_email,
    send_webhook,
)
from tests.test_notify_servers import SMTPServer, WebhookReceiver

FAST = RetryPolicy(attempts=3, base_seconds=0.01, max_seconds=5, timeout_seconds=2)
ENV = "CHURNWATCH_WEBHOOK_TEST"


def alert(alert_id: str = "alert-1") -> dict:
    return {"alert_id": alert_id, "alert_type": "SILENT_CHURN", "severity": "HIGH",
            "customer_id": "cust-9", "topic": None, "revenue_at_risk": 12000.0,
            "authority_limit": 1000.0, "reason_codes": ["NO_PURCHASE_90D"]}  # fmt: skip


def test_webhook_delivers_slack_compatible_json(monkeypatch):
    with WebhookReceiver() as hook:
        monkeypatch.setenv(ENV, hook.url())
        assert send_webhook(ENV, alert(), FAST) == 1
    assert hook.delivered == ["alert-1"]
    text = hook.requests[0]["text"]  # Slack renders the "text" field
    assert "SILENT_CHURN" in text and "cust-9" in text and "12,000" in text


def test_webhook_retries_a_500_then_succeeds(monkeypatch):
    with WebhookReceiver(lambda n: (500, {}) if n == 0 else (200, {})) as hook:
        monkeypatch.setenv(ENV, hook.url())
        assert send_webhook(ENV, alert(), FAST) == 2  # one failure, one success
    assert len(hook.requests) == 2 and hook.delivered == ["alert-1"]


def test_webhook_honours_retry_after_on_429(monkeypatch):
    plan = lambda n: (429, {"Retry-After": "1"}) if n == 0 else (200, {})  # noqa: E731
    with WebhookReceiver(plan) as hook:
        monkeypatch.setenv(ENV, hook.url())
        slept: list[float] = []
        assert send_webhook(ENV, alert(), FAST, sleep=slept.append) == 2
    # The server's Retry-After (1 s) replaces the 0.01 s backoff.
    assert slept == [1.0]
    assert hook.delivered == ["alert-1"]


def test_webhook_that_times_out_is_a_transient_failure(monkeypatch):
    policy = RetryPolicy(attempts=2, base_seconds=0.01, timeout_seconds=0.3)
    with WebhookReceiver(lambda n: "hang") as hook:
        monkeypatch.setenv(ENV, hook.url("SECRET-TOKEN-42"))
        with pytest.raises(TransientFailure, match="timed out") as info:
            send_webhook(ENV, alert(), policy)
        hook.release.set()
    assert len(hook.requests) == 2 and hook.delivered == []
    assert "SECRET-TOKEN-42" not in str(info.value)


def test_webhook_4xx_and_missing_url_are_permanent(monkeypatch):
    with WebhookReceiver(lambda n: (404, {})) as hook:
        monkeypatch.setenv(ENV, hook.url())
        with pytest.raises(PermanentFailure, match="HTTP 404"):
            send_webhook(ENV, alert(), FAST)
    assert len(hook.requests) == 1  # no retry on a 4xx other than 429
    monkeypatch.delenv(ENV)
    with pytest.raises(PermanentFailure, match=f"{ENV} is not set"):
        send_webhook(ENV, alert(), FAST)


def test_email_logs_in_and_delivers(monkeypatch):
    with SMTPServer("churnwatch", "smtp-pass-123") as smtp:
        monkeypatch.setenv("CHURNWATCH_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("CHURNWATCH_SMTP_PORT", str(smtp.port))
        monkeypatch.setenv("CHURNWATCH_SMTP_USER", "churnwatch")
        monkeypatch.setenv("CHURNWATCH_SMTP_PASSWORD", "smtp-pass-123")
        send_email("am@example.com", alert("alert-7"), FAST)
        assert smtp.alert_ids() == ["alert-7"] and smtp.logins == ["churnwatch"]
        message = smtp.inbox.messages[0]
        assert message["To"] == "am@example.com" and "cust-9" in message.get_payload()
    # SMTP down is transient: the alert must be redelivered later, not dropped.
    with pytest.raises(TransientFailure):
        send_email("am@example.com", alert("alert-8"), FAST)
