"""Daily digests: one message per owner with their open alerts, highest revenue first.

An owner whose routing-policy entry says ``delivery: daily_digest`` gets no message per
alert from the notifier; ``churnwatch alerts digest`` (run once a day, e.g. from cron or
Cloud Scheduler) sends them one message over the same channel senders instead: a
Slack-compatible webhook or an email.

Text comes from the policy's Jinja2 ``templates`` (``digest_subject``, ``digest``). They
are compiled in a sandbox with strict undefined variables and rendered once against a
sample digest when loaded, so a typo in a template stops the start with a message naming
the template, instead of sending a blank or a half message at 8 am.

Each (owner, day) is sent at most once: the delivery log (the notifier's DuckDB file)
records ``digest:<owner>:<day>`` per channel after the send, so a rerun the same day
skips owners already served and retries only those that failed.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from churnwatch.lifecycle import revenue_at_risk
from churnwatch.notify.channels import (
    Channels,
    PermanentFailure,
    RetryPolicy,
    TransientFailure,
    send_email,
    send_webhook,
)
from churnwatch.notify.service import DeliveryLog, channel_key
from churnwatch.routing import DAILY_DIGEST, PolicyError, RoutingPolicy

log = logging.getLogger(__name__)

REQUIRED_TEMPLATES = ("digest_subject", "digest")
#: Alerts listed in one digest; the rest are counted ("...and 12 more").
MAX_LISTED = 20

_SAMPLE_ALERT = {
    "alert_id": "sample",
    "alert_type": "AT_RISK_SILENT",
    "severity": "HIGH",
    "owner": "sample_owner",
    "customer_id": "c-1",
    "topic": None,
    "revenue_at_risk": 1234.0,
    "state": "OPEN",
    "age_days": 1.5,
    "above_authority": True,
    "acknowledged_by": None,
    "more": 0,
}


def _money(value: Any) -> str:
    return f"{float(value or 0):,.0f}"


@dataclass(frozen=True)
class DigestTemplates:
    """The compiled digest templates of one routing policy."""

    subject: Any
    body: Any

    @classmethod
    def from_policy(cls, policy: RoutingPolicy) -> DigestTemplates:
        """Compile and test-render the templates; :class:`PolicyError` says which is wrong."""
        env = SandboxedEnvironment(
            undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, autoescape=False
        )
        env.filters["money"] = _money
        compiled = {}
        for name in REQUIRED_TEMPLATES:
            text = policy.templates.get(name)
            if not text:
                raise PolicyError(f"{policy.source}: templates.{name} is missing (Jinja2 text)")
            try:
                compiled[name] = env.from_string(text)
            except TemplateError as exc:
                raise PolicyError(f"{policy.source}: templates.{name}: {exc}") from None
        templates = cls(compiled["digest_subject"], compiled["digest"])
        sample = digest_context("sample_owner", "sample", "2026-01-01", [_SAMPLE_ALERT] * 2)
        for name in REQUIRED_TEMPLATES:
            try:
                compiled[name].render(sample)
            except TemplateError as exc:  # undefined variable, bad filter, sandbox refusal
                raise PolicyError(f"{policy.source}: templates.{name}: {exc}") from None
        return templates

    def render(self, context: Mapping[str, Any]) -> tuple[str, str]:
        """``(subject, body)``; the subject is one line."""
        subject = " ".join(self.subject.render(context).split())
        return subject, self.body.render(context).strip() + "\n"


def digest_context(
    owner: str,
    description: str,
    day: str,
    alerts: list[Mapping[str, Any]],
    authority_limit: float = 0.0,
    currency: str = "EUR",
) -> dict[str, Any]:
    """What the templates see: one entry per customer, highest revenue at risk first.

    A customer with several open alerts is one call to make: the entry is their largest
    alert with ``more`` = how many other open alerts they have. Topic and data alerts are
    their own entries.
    """
    ranked = sorted(alerts, key=lambda a: (-float(a["revenue_at_risk"] or 0), a["alert_id"]))
    entries: dict[str, dict[str, Any]] = {}
    for a in ranked:
        key = a.get("customer_id") or a["alert_id"]
        if key in entries:
            entries[key]["more"] += 1
        else:
            entries[key] = {**a, "more": 0}
    listed = list(entries.values())
    return {
        "owner": owner,
        "description": description,
        "day": day,
        "alerts": listed[:MAX_LISTED],
        "shown": min(len(listed), MAX_LISTED),
        "customers": len(listed),
        "total_alerts": len(ranked),
        "total_revenue_at_risk": revenue_at_risk(ranked),
        "authority_limit": authority_limit,
        "currency": currency,
    }


@dataclass(frozen=True)
class Digest:
    owner: str
    digest_id: str  # digest:<owner>:<day>
    channel: dict[str, str]
    subject: str
    body: str
    alerts: int


def build_digests(
    policy: RoutingPolicy,
    templates: DigestTemplates,
    queue: Mapping[str, list[Mapping[str, Any]]],
    day: str,
    owners: list[str] | None = None,
) -> list[Digest]:
    """One digest per digest owner with open alerts (``queue``: owner -> open alerts).

    ``owners`` overrides the policy's choice (e.g. a test or a one-off send to a per-alert
    owner). Owners without open alerts get nothing: an empty digest is noise.
    """
    out = []
    for name in digest_owners(policy, owners):
        owner = policy.owners[name]
        alerts = queue.get(name) or []
        if not alerts:
            continue
        context = digest_context(
            name, owner.description, day, alerts, owner.authority_limit, policy.currency
        )
        subject, body = templates.render(context)
        out.append(
            Digest(name, f"digest:{name}:{day}", dict(owner.channel), subject, body, len(alerts))
        )
    return out


def digest_owners(policy: RoutingPolicy, owners: list[str] | None = None) -> list[str]:
    """``owners`` (checked against the policy), else the policy's daily_digest owners."""
    chosen = owners or [n for n, o in policy.owners.items() if o.delivery == DAILY_DIGEST]
    unknown = [n for n in chosen if n not in policy.owners]
    if unknown:
        raise ValueError(f"owner(s) {unknown} not in the routing policy {policy.source}")
    return chosen


def send_digests(
    digests: list[Digest], state: DeliveryLog, retry: RetryPolicy, channels: Channels
) -> Counter:
    """Send each digest once per (digest_id, channel); counts sent / skipped / failed.

    ``channels``: resolved and validated at start (``load_channels`` over the digest
    owners' channels), as the notifier does.
    """
    counts: Counter = Counter()
    for digest in digests:
        channel = channel_key(digest.channel)
        if state.delivered(digest.digest_id, channel):
            counts["already_sent"] += 1
            continue
        envelope = {"alert_id": digest.digest_id}
        try:
            if "webhook_env" in digest.channel:
                attempts = send_webhook(
                    channels, digest.channel["webhook_env"], envelope, retry, text=digest.body
                )
            else:
                send_email(
                    channels,
                    digest.channel["email"],
                    envelope,
                    retry,
                    text=digest.body,
                    subject=digest.subject,
                )
                attempts = 1
        except (PermanentFailure, TransientFailure) as exc:
            counts["failed"] += 1
            log.warning("digest %s to %s not sent: %s", digest.digest_id, channel, exc)
            continue
        state.record(digest.digest_id, channel, digest.owner, "", attempts)
        counts["sent"] += 1
    return counts
