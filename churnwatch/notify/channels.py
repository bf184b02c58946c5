"""Delivery channels: Slack-compatible incoming webhooks and SMTP email.

Each send either returns (delivered), raises :class:`TransientFailure` (worth redelivering
later: timeouts, 429/5xx after retries, SMTP server down) or :class:`PermanentFailure`
(will never work as configured: 4xx, missing webhook variable, rejected recipient).
Secrets (webhook URLs, SMTP password) are read from the environment at send time and are
scrubbed from every error message, so they never reach logs or dead letters.
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

SMTP_ENV = {
    "host": "CHURNWATCH_SMTP_HOST",
    "port": "CHURNWATCH_SMTP_PORT",
    "user": "CHURNWATCH_SMTP_USER",
    "password": "CHURNWATCH_SMTP_PASSWORD",
    "sender": "CHURNWATCH_SMTP_FROM",
}


class DeliveryFailure(Exception):
    pass


class TransientFailure(DeliveryFailure):
    """Try again later: do not ack, let Pub/Sub redeliver."""


class PermanentFailure(DeliveryFailure):
    """Will not succeed as configured: record a dead letter and ack."""


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text


def alert_text(alert: Mapping[str, Any]) -> str:
    """One readable line for a person; alert_id last so receivers can dedupe on it."""
    subject = alert.get("customer_id") or alert.get("topic") or "pipeline"
    reasons = ", ".join(alert.get("reason_codes") or [])
    return (
        f"[{alert['severity']}] {alert['alert_type']} for {subject}: "
        f"revenue at risk {alert['revenue_at_risk']:,.0f} "
        f"(your authority: {alert['authority_limit']:,.0f}). {reasons} "
        f"(alert {alert['alert_id']})"
    )


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_seconds: float = 0.5
    max_seconds: float = 30.0
    timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_seconds < 0 or self.timeout_seconds <= 0:
            raise ValueError("retry policy: attempts >= 1, base >= 0, timeout > 0")

    def delay(self, attempt: int, retry_after: str | None) -> float:
        """Retry-After (seconds) when the server gives one, else exponential backoff."""
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), self.max_seconds)
            except ValueError:
                pass  # an HTTP date: fall back to backoff
        return min(self.base_seconds * 2**attempt, self.max_seconds)


def send_webhook(
    url_env: str,
    alert: Mapping[str, Any],
    retry: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    text: str | None = None,
) -> int:
    """POST a Slack-compatible JSON body; returns the number of attempts used.

    ``text`` replaces the one-line alert text (digests: ``alert`` then only needs an id).
    """
    url = os.environ.get(url_env)
    if not url:
        raise PermanentFailure(f"webhook variable {url_env} is not set")
    body = json.dumps(
        {"text": alert_text(alert) if text is None else text, "alert_id": alert["alert_id"]}
    ).encode()
    last = ""
    for attempt in range(retry.attempts):
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-Churnwatch-Alert-Id": alert["alert_id"],
            },
        )
        retry_after = None
        try:
            with urllib.request.urlopen(request, timeout=retry.timeout_seconds) as response:
                response.read()
            return attempt + 1
        except urllib.error.HTTPError as exc:
            if exc.code != 429 and exc.code < 500:
                raise PermanentFailure(f"webhook {url_env} answered HTTP {exc.code}") from None
            retry_after = exc.headers.get("Retry-After")
            last = f"HTTP {exc.code}"
        except TimeoutError:
            last = f"timed out after {retry.timeout_seconds:g} s"
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError | socket.timeout):
                last = f"timed out after {retry.timeout_seconds:g} s"
            else:
                last = scrub(f"{type(reason).__name__}: {reason}", [url])
        if attempt + 1 < retry.attempts:
            sleep(retry.delay(attempt, retry_after))
    raise TransientFailure(f"webhook {url_env}: {last} after {retry.attempts} attempts")


def send_email(
    address: str,
    alert: Mapping[str, Any],
    retry: RetryPolicy,
    text: str | None = None,
    subject: str | None = None,
) -> None:
    """Send one plain-text email through the SMTP server named in the environment.

    ``text`` and ``subject`` replace the alert's own (digests: ``alert`` needs only an id).
    """
    host = os.environ.get(SMTP_ENV["host"])
    if not host:
        raise PermanentFailure(f"email needs {SMTP_ENV['host']} (and optionally the port etc.)")
    port = int(os.environ.get(SMTP_ENV["port"], "25"))
    user = os.environ.get(SMTP_ENV["user"])
    password = os.environ.get(SMTP_ENV["password"], "")
    message = EmailMessage()
    message["From"] = os.environ.get(SMTP_ENV["sender"], "churnwatch@localhost")
    message["To"] = address
    message["Subject"] = subject or f"Churnwatch {alert['severity']} {alert['alert_type']}"
    message["X-Churnwatch-Alert-Id"] = alert["alert_id"]
    message.set_content(alert_text(alert) if text is None else text)
    try:
        with smtplib.SMTP(host, port, timeout=retry.timeout_seconds) as smtp:
            if user:
                smtp.login(user, password)
            smtp.send_message(message)
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPAuthenticationError) as exc:
        raise PermanentFailure(scrub(f"email to {address}: {exc}", [password])) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise TransientFailure(
            scrub(f"email to {address}: {type(exc).__name__}: {exc}", [password])
        ) from None
