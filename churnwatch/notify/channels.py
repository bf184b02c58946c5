"""Delivery channels: Slack-compatible incoming webhooks and SMTP email.

Every channel is read and validated once, at start (:func:`load_channels`): a webhook URL
must be ``https://`` with a host and a valid port, SMTP needs a host, a port in 1-65535
and STARTTLS or SSL. Errors name the environment variable only, never its value, because
the value is the secret (a webhook URL is its own credential). The values may be Secret
Manager references (``sm://projects/P/secrets/S/versions/V``, see
:mod:`churnwatch.secrets`).

Each send either returns (delivered), raises :class:`TransientFailure` (worth redelivering
later: timeouts, 429/5xx after retries, SMTP server down) or :class:`PermanentFailure`
(will never work as configured: 4xx, a redirect, a rejected recipient). Redirects are not
followed: a 3xx is a failure, not a delivery (a redirect-following client re-sends a POST
as a GET without its body and would count it as delivered). Only ``https`` is opened: the
opener has no handler for ``file://``, ``ftp://`` or plain ``http://``.
"""

from __future__ import annotations

import json
import re
import smtplib
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from churnwatch.secrets import Fetch, SecretError, resolve_env

SMTP_ENV = {
    "host": "CHURNWATCH_SMTP_HOST",
    "port": "CHURNWATCH_SMTP_PORT",
    "user": "CHURNWATCH_SMTP_USER",
    "password": "CHURNWATCH_SMTP_PASSWORD",
    "sender": "CHURNWATCH_SMTP_FROM",
    "security": "CHURNWATCH_SMTP_SECURITY",
}
SMTP_SECURITY = {"starttls": 587, "ssl": 465}  # mode -> default port


class DeliveryFailure(Exception):
    pass


class TransientFailure(DeliveryFailure):
    """Try again later: do not ack, let Pub/Sub redeliver."""


class PermanentFailure(DeliveryFailure):
    """Will not succeed as configured: record a dead letter and ack."""


class ChannelConfigError(ValueError):
    """A channel setting is missing or malformed; the message names variables, not values."""


def scrub(text: str, secrets: Iterable[str]) -> str:
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

    def worst_case_seconds(self) -> float:
        """Longest one send can take: every attempt times out, every pause is the longest."""
        pauses = sum(min(self.max_seconds, self.base_seconds * 2**a) for a in range(self.attempts))
        return self.attempts * self.timeout_seconds + max(pauses, self.max_seconds)


# --- configuration, validated at start ------------------------------------------------------
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


@dataclass(frozen=True)
class Webhook:
    env: str
    url: str = field(repr=False)  # the secret


@dataclass(frozen=True)
class SMTPSettings:
    host: str
    port: int
    security: str  # "starttls" or "ssl"
    sender: str
    user: str | None = None
    password: str = field(default="", repr=False)


def webhook_from_env(
    env_name: str, environ: Mapping[str, str] | None = None, fetch: Fetch | None = None
) -> Webhook:
    """The validated webhook of one variable; :class:`ChannelConfigError` names only the
    variable (a URL that failed to parse may still hold its token)."""
    if not _ENV_NAME.match(env_name):
        raise ChannelConfigError(f"{env_name!r} is not an environment variable name")
    try:
        url = resolve_env(env_name, environ, fetch)
    except SecretError as exc:
        raise ChannelConfigError(str(exc)) from None
    if not url:
        raise ChannelConfigError(f"{env_name} is not set (the webhook URL of this channel)")
    problem = _url_problem(url)
    if problem:
        raise ChannelConfigError(f"{env_name}: {problem}")
    return Webhook(env_name, url)


def _url_problem(url: str) -> str | None:
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        return "the webhook URL contains whitespace or control characters"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not 0-65535
    except ValueError:
        return "the webhook URL does not parse (check the host and port)"
    if parts.scheme.lower() != "https":
        return "webhook URLs must start with https:// (no http, file or other schemes)"
    if not parts.hostname:
        return "the webhook URL has no host"
    if port == 0:
        return "the webhook URL has port 0"
    return None


def smtp_from_env(
    environ: Mapping[str, str] | None = None, fetch: Fetch | None = None
) -> SMTPSettings:
    """The SMTP settings, validated; errors name the variable to fix."""

    def get(key: str) -> str | None:
        try:
            return resolve_env(SMTP_ENV[key], environ, fetch)
        except SecretError as exc:
            raise ChannelConfigError(str(exc)) from None

    host = (get("host") or "").strip()
    if not host:
        raise ChannelConfigError(f"email channels need {SMTP_ENV['host']} (the SMTP server)")
    if any(ch.isspace() for ch in host) or "/" in host:
        raise ChannelConfigError(f"{SMTP_ENV['host']}: expected a host name or address")
    security = (get("security") or "starttls").strip().lower()
    if security not in SMTP_SECURITY:
        raise ChannelConfigError(
            f"{SMTP_ENV['security']}: expected one of {sorted(SMTP_SECURITY)} "
            "(the password never travels in clear)"
        )
    port_text = get("port")
    if port_text is None or port_text.strip() == "":
        port = SMTP_SECURITY[security]
    else:
        try:
            port = int(port_text.strip())
        except ValueError:
            port = -1
        if not 1 <= port <= 65535:
            raise ChannelConfigError(f"{SMTP_ENV['port']}: expected a port number 1-65535")
    user = get("user") or None
    password = get("password") or ""
    if password and not user:
        raise ChannelConfigError(f"{SMTP_ENV['password']} is set but {SMTP_ENV['user']} is not")
    sender = get("sender") or "churnwatch@localhost"
    if "@" not in sender:
        raise ChannelConfigError(f"{SMTP_ENV['sender']}: expected an email address")
    return SMTPSettings(host, port, security, sender, user, password)


@dataclass(frozen=True)
class Channels:
    """Every channel a routing policy can deliver to, resolved and validated at start."""

    webhooks: dict[str, Webhook]
    smtp: SMTPSettings | None
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    def secrets(self) -> list[str]:
        out = [w.url for w in self.webhooks.values()]
        for w in self.webhooks.values():
            parts = urllib.parse.urlsplit(w.url)
            out += [parts.path, parts.query]
        if self.smtp and self.smtp.password:
            out.append(self.smtp.password)
        return [s for s in out if s and s != "/"]

    def context(self) -> ssl.SSLContext:
        """Certificate and host name checked; SSL_CERT_FILE / SSL_CERT_DIR add trust roots."""
        return self.ssl_context or ssl.create_default_context()


def load_channels(
    channel_specs: Iterable[Mapping[str, str]],
    environ: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    fetch: Fetch | None = None,
) -> Channels:
    """Resolve and validate every channel; one error listing every problem, by variable."""
    webhooks: dict[str, Webhook] = {}
    errors: list[str] = []
    needs_smtp = False
    for spec in channel_specs:
        if "webhook_env" in spec:
            name = spec["webhook_env"]
            if name in webhooks:
                continue
            try:
                webhooks[name] = webhook_from_env(name, environ, fetch)
            except ChannelConfigError as exc:
                errors.append(str(exc))
        elif "email" in spec:
            needs_smtp = True
    smtp = None
    if needs_smtp:
        try:
            smtp = smtp_from_env(environ, fetch)
        except ChannelConfigError as exc:
            errors.append(str(exc))
    if errors:
        raise ChannelConfigError("; ".join(sorted(set(errors))))
    return Channels(webhooks, smtp, ssl_context)


# --- sending --------------------------------------------------------------------------------
def _https_opener(context: ssl.SSLContext) -> urllib.request.OpenerDirector:
    """An opener that speaks https only and follows no redirect (a 3xx raises HTTPError)."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.HTTPSHandler(context=context),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def send_webhook(
    channels: Channels,
    url_env: str,
    alert: Mapping[str, Any],
    retry: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    text: str | None = None,
) -> int:
    """POST a Slack-compatible JSON body; returns the number of attempts used.

    ``text`` replaces the one-line alert text (digests: ``alert`` then only needs an id).
    """
    hook = channels.webhooks.get(url_env)
    if hook is None:  # load_channels covers every channel of the policy; this is a bug guard
        raise PermanentFailure(f"webhook variable {url_env} was not configured at start")
    if _url_problem(hook.url):
        raise PermanentFailure(f"webhook {url_env}: not an https URL")
    opener = _https_opener(channels.context())
    body = json.dumps(
        {"text": alert_text(alert) if text is None else text, "alert_id": alert["alert_id"]}
    ).encode()
    secrets = channels.secrets()
    last = ""
    for attempt in range(retry.attempts):
        request = urllib.request.Request(
            hook.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-Churnwatch-Alert-Id": alert["alert_id"],
            },
        )
        retry_after = None
        try:
            with opener.open(request, timeout=retry.timeout_seconds) as response:
                response.read()
                status = response.status
            if 200 <= status < 300:
                return attempt + 1
            raise PermanentFailure(f"webhook {url_env} answered HTTP {status}")
        except urllib.error.HTTPError as exc:
            if 300 <= exc.code < 400:
                raise PermanentFailure(
                    f"webhook {url_env} answered HTTP {exc.code} (a redirect; not followed)"
                ) from None
            if exc.code != 429 and exc.code < 500:
                raise PermanentFailure(f"webhook {url_env} answered HTTP {exc.code}") from None
            retry_after = exc.headers.get("Retry-After")
            last = f"HTTP {exc.code}"
        except TimeoutError:
            last = f"timed out after {retry.timeout_seconds:g} s"
        except ssl.SSLCertVerificationError:
            raise PermanentFailure(
                f"webhook {url_env}: the server's TLS certificate is not trusted"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise PermanentFailure(
                    f"webhook {url_env}: the server's TLS certificate is not trusted"
                ) from None
            if isinstance(reason, TimeoutError | socket.timeout):
                last = f"timed out after {retry.timeout_seconds:g} s"
            else:
                last = scrub(f"{type(reason).__name__}: {reason}", secrets)
        if attempt + 1 < retry.attempts:
            sleep(retry.delay(attempt, retry_after))
    raise TransientFailure(f"webhook {url_env}: {last} after {retry.attempts} attempts")


def send_email(
    channels: Channels,
    address: str,
    alert: Mapping[str, Any],
    retry: RetryPolicy,
    text: str | None = None,
    subject: str | None = None,
) -> None:
    """Send one plain-text email over STARTTLS or SSL; log in only once encrypted.

    ``text`` and ``subject`` replace the alert's own (digests: ``alert`` needs only an id).
    """
    smtp = channels.smtp
    if smtp is None:  # load_channels requires SMTP when the policy has an email owner
        raise PermanentFailure(f"email needs {SMTP_ENV['host']}; it was not configured at start")
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = address
    message["Subject"] = subject or f"Churnwatch {alert['severity']} {alert['alert_type']}"
    message["X-Churnwatch-Alert-Id"] = alert["alert_id"]
    message.set_content(alert_text(alert) if text is None else text)
    context = channels.context()
    secrets = [smtp.password]
    try:
        if smtp.security == "ssl":
            client = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=retry.timeout_seconds, context=context
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=retry.timeout_seconds)
        with client:
            if smtp.security == "starttls":
                client.starttls(context=context)  # raises when the server does not offer it
            if smtp.user:
                client.login(smtp.user, smtp.password)
            client.send_message(message)
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPAuthenticationError) as exc:
        raise PermanentFailure(scrub(f"email to {address}: {exc}", secrets)) from None
    except ssl.SSLCertVerificationError:
        raise PermanentFailure(
            f"email to {address}: the SMTP server's TLS certificate is not trusted"
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise TransientFailure(
            scrub(f"email to {address}: {type(exc).__name__}: {exc}", secrets)
        ) from None
