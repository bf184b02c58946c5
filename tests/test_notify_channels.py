"""Webhook and email channels against real loopback servers (TLS, no mocks)."""

from __future__ import annotations

import pytest

from churnwatch.notify.channels import (
    ChannelConfigError,
    PermanentFailure,
    RetryPolicy,
    TransientFailure,
    load_channels,
    send_email,
    send_webhook,
    smtp_from_env,
    webhook_from_env,
)
from tests.test_notify_servers import SMTPServer, WebhookReceiver, client_context

FAST = RetryPolicy(attempts=3, base_seconds=0.01, max_seconds=5, timeout_seconds=2)
ENV = "CHURNWATCH_WEBHOOK_TEST"
SECRET = "T0SECRET/B0SECRET/token-777"


def alert(alert_id: str = "alert-1") -> dict:
    return {"alert_id": alert_id, "alert_type": "SILENT_CHURN", "severity": "HIGH",
            "customer_id": "cust-9", "topic": None, "revenue_at_risk": 12000.0,
            "authority_limit": 1000.0, "reason_codes": ["NO_PURCHASE_90D"]}  # fmt: skip


def hook_channels(url: str):
    return load_channels([{"webhook_env": ENV}], {ENV: url}, ssl_context=client_context())


def smtp_channels(environ: dict):
    return load_channels([{"email": "am@example.com"}], environ, ssl_context=client_context())


def test_webhook_delivers_slack_compatible_json():
    with WebhookReceiver() as hook:
        assert send_webhook(hook_channels(hook.url()), ENV, alert(), FAST) == 1
    assert hook.delivered == ["alert-1"]
    text = hook.requests[0]["text"]  # Slack renders the "text" field
    assert "SILENT_CHURN" in text and "cust-9" in text and "12,000" in text


def test_webhook_retries_a_500_then_succeeds():
    with WebhookReceiver(lambda n: (500, {}) if n == 0 else (200, {})) as hook:
        assert send_webhook(hook_channels(hook.url()), ENV, alert(), FAST) == 2
    assert len(hook.requests) == 2 and hook.delivered == ["alert-1"]


def test_webhook_honours_retry_after_on_429():
    plan = lambda n: (429, {"Retry-After": "1"}) if n == 0 else (200, {})  # noqa: E731
    with WebhookReceiver(plan) as hook:
        slept: list[float] = []
        assert send_webhook(hook_channels(hook.url()), ENV, alert(), FAST, sleep=slept.append) == 2
    # The server's Retry-After (1 s) replaces the 0.01 s backoff.
    assert slept == [1.0]
    assert hook.delivered == ["alert-1"]


def test_webhook_that_times_out_is_a_transient_failure():
    policy = RetryPolicy(attempts=2, base_seconds=0.01, timeout_seconds=0.3)
    with WebhookReceiver(lambda n: "hang") as hook:
        with pytest.raises(TransientFailure, match="timed out") as info:
            send_webhook(hook_channels(hook.url(SECRET)), ENV, alert(), policy)
        hook.release.set()
    assert len(hook.requests) == 2 and hook.delivered == []
    assert "token-777" not in str(info.value)


def test_webhook_4xx_is_permanent_without_retry():
    with (
        WebhookReceiver(lambda n: (404, {})) as hook,
        pytest.raises(PermanentFailure, match="HTTP 404"),
    ):
        send_webhook(hook_channels(hook.url()), ENV, alert(), FAST)
    assert len(hook.requests) == 1  # no retry on a 4xx other than 429


def test_a_redirect_is_a_failure_not_a_delivery():
    # Before: urllib followed the 302 as a GET without the body and returned "delivered".
    redirect = lambda n: (302, {"Location": "/elsewhere"}) if n == 0 else (200, {})  # noqa: E731
    with (
        WebhookReceiver(redirect) as hook,
        pytest.raises(PermanentFailure, match=r"HTTP 302 \(a redirect; not followed\)"),
    ):
        send_webhook(hook_channels(hook.url()), ENV, alert(), FAST)
    assert len(hook.requests) == 1 and hook.delivered == []  # one POST, nothing followed


def test_untrusted_certificate_is_refused():
    # The receiver's certificate is self-signed; without the test CA the send must fail.
    with WebhookReceiver() as hook:
        channels = load_channels([{"webhook_env": ENV}], {ENV: hook.url()})
        with pytest.raises(PermanentFailure, match="certificate is not trusted"):
            send_webhook(channels, ENV, alert(), FAST)
    assert hook.delivered == []


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("hooks.example.com/services/" + SECRET, "https://"),  # no scheme
        ("https://hooks.example.com/services/ " + SECRET, "whitespace"),
        ("https://hooks.example.com:99999/services/" + SECRET, "does not parse"),
        ("https://hooks.example.com:abc/services/" + SECRET, "does not parse"),
        ("http://hooks.example.com/services/" + SECRET, "https://"),
        ("file:///etc/passwd?" + SECRET, "https://"),
        ("https:///services/" + SECRET, "no host"),
        ("", "is not set"),
    ],
)
def test_malformed_webhook_urls_are_refused_naming_only_the_variable(url, problem):
    with pytest.raises(ChannelConfigError, match=problem) as info:
        webhook_from_env(ENV, {ENV: url} if url else {})
    assert ENV in str(info.value)
    assert "token-777" not in str(info.value) and "example.com" not in str(info.value)


def test_every_problem_is_reported_at_once():
    specs = [{"webhook_env": "HOOK_A"}, {"webhook_env": "HOOK_B"}, {"email": "x@example.com"}]
    environ = {"HOOK_A": "http://a.example.com/" + SECRET, "CHURNWATCH_SMTP_HOST": "mail"}
    environ["CHURNWATCH_SMTP_PORT"] = "smtp"
    with pytest.raises(ChannelConfigError) as info:
        load_channels(specs, environ)
    message = str(info.value)
    for name in ("HOOK_A", "HOOK_B", "CHURNWATCH_SMTP_PORT"):
        assert name in message
    assert "token-777" not in message


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({}, "CHURNWATCH_SMTP_HOST"),
        ({"CHURNWATCH_SMTP_PORT": "twenty-five"}, "CHURNWATCH_SMTP_PORT"),
        ({"CHURNWATCH_SMTP_PORT": "70000"}, "CHURNWATCH_SMTP_PORT"),
        ({"CHURNWATCH_SMTP_SECURITY": "none"}, "CHURNWATCH_SMTP_SECURITY"),
        ({"CHURNWATCH_SMTP_PASSWORD": "pw-1"}, "CHURNWATCH_SMTP_USER"),
    ],
)
def test_smtp_settings_are_validated_at_start(environ, variable):
    base = {} if variable == "CHURNWATCH_SMTP_HOST" else {"CHURNWATCH_SMTP_HOST": "127.0.0.1"}
    with pytest.raises(ChannelConfigError, match=variable) as info:
        smtp_from_env({**base, **environ})
    assert "pw-1" not in str(info.value)


def test_smtp_defaults_follow_the_security_mode():
    assert smtp_from_env({"CHURNWATCH_SMTP_HOST": "mail"}).port == 587  # STARTTLS
    ssl_mode = smtp_from_env({"CHURNWATCH_SMTP_HOST": "m", "CHURNWATCH_SMTP_SECURITY": "SSL"})
    assert (ssl_mode.security, ssl_mode.port) == ("ssl", 465)


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_email_logs_in_only_over_tls_and_delivers(security):
    with SMTPServer("churnwatch", "smtp-pass-123", security) as smtp:
        env = {"CHURNWATCH_SMTP_HOST": "127.0.0.1", "CHURNWATCH_SMTP_PORT": str(smtp.port),
               "CHURNWATCH_SMTP_USER": "churnwatch", "CHURNWATCH_SMTP_PASSWORD": "smtp-pass-123",
               "CHURNWATCH_SMTP_SECURITY": security}  # fmt: skip
        send_email(smtp_channels(env), "am@example.com", alert("alert-7"), FAST)
        assert smtp.alert_ids() == ["alert-7"]
        assert smtp.logins == [("churnwatch", True)]  # the password travelled encrypted
        message = smtp.inbox.messages[0]
        assert message["To"] == "am@example.com" and "cust-9" in message.get_payload()
    # SMTP down is transient: the alert must be redelivered later, not dropped.
    with pytest.raises(TransientFailure):
        send_email(smtp_channels(env), "am@example.com", alert("alert-8"), FAST)


def test_email_never_logs_in_to_a_server_without_starttls():
    # A server that offers no STARTTLS: the client must not send the password in clear.
    with SMTPServer("churnwatch", "smtp-pass-123", "plain") as smtp:
        env = {"CHURNWATCH_SMTP_HOST": "127.0.0.1", "CHURNWATCH_SMTP_PORT": str(smtp.port),
               "CHURNWATCH_SMTP_USER": "churnwatch",
               "CHURNWATCH_SMTP_PASSWORD": "smtp-pass-123"}  # fmt: skip
        with pytest.raises(TransientFailure, match="STARTTLS") as info:
            send_email(smtp_channels(env), "am@example.com", alert("alert-9"), FAST)
        assert smtp.logins == [] and smtp.alert_ids() == []
    assert "smtp-pass-123" not in str(info.value)


def test_email_to_a_closed_port_is_transient_not_a_crash():
    from churnwatch.emulator import free_port

    env = {"CHURNWATCH_SMTP_HOST": "127.0.0.1", "CHURNWATCH_SMTP_PORT": str(free_port())}
    with pytest.raises(TransientFailure, match="email to"):
        send_email(smtp_channels(env), "am@example.com", alert(), FAST)
