"""Routing policy: alert type x severity x revenue at risk -> owner and authority limit.

The policy is a YAML file the business writes (default: ``churnwatch/policy/routing.yaml``).
It is loaded and validated once at start; a bad file raises :class:`PolicyError` naming
the file, the rule and the field, before any pipeline is built.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from churnwatch import schemas
from churnwatch.policy import read_policy_yaml

DEFAULT_POLICY = "routing.yaml"


class PolicyError(ValueError):
    """The routing policy file is malformed."""


def _enum_symbols(field_name: str) -> tuple[str, ...]:
    return schemas.load(schemas.CHURN_ALERT).field(field_name).symbols


#: How an owner hears about alerts: one message each (the notifier) or one daily digest.
PER_ALERT = "per_alert"
DAILY_DIGEST = "daily_digest"
DELIVERIES = (PER_ALERT, DAILY_DIGEST)


@dataclass(frozen=True)
class Owner:
    name: str
    description: str
    authority_limit: float
    channel: dict[str, str]  # {"webhook_env": VAR} or {"email": address}
    delivery: str = PER_ALERT


@dataclass(frozen=True)
class Rule:
    owner: str
    alert_types: frozenset[str] = frozenset()
    severities: frozenset[str] = frozenset()
    min_revenue: float | None = None
    max_revenue: float | None = None

    def matches(self, alert_type: str, severity: str, revenue_at_risk: float) -> bool:
        return (
            (not self.alert_types or alert_type in self.alert_types)
            and (not self.severities or severity in self.severities)
            and (self.min_revenue is None or revenue_at_risk >= self.min_revenue)
            and (self.max_revenue is None or revenue_at_risk < self.max_revenue)
        )


@dataclass(frozen=True)
class Route:
    owner: str
    authority_limit: float
    channel: dict[str, str]


@dataclass(frozen=True)
class RoutingPolicy:
    owners: dict[str, Owner]
    rules: tuple[Rule, ...]
    default_owner: str
    currency: str
    source: str = "<memory>"
    #: Jinja2 message templates by name (checked by churnwatch.notify.digest at start).
    templates: dict[str, str] = field(default_factory=dict)

    def route(self, alert_type: str, severity: str, revenue_at_risk: float = 0.0) -> Route:
        """The first matching rule's owner, else the default owner."""
        name = next(
            (r.owner for r in self.rules if r.matches(alert_type, severity, revenue_at_risk)),
            self.default_owner,
        )
        owner = self.owners[name]
        return Route(owner.name, owner.authority_limit, dict(owner.channel))

    @classmethod
    def load(cls, path: str | Path | None = None) -> RoutingPolicy:
        doc, source = read_policy_yaml(path, DEFAULT_POLICY, PolicyError, "routing policy")
        return cls.from_dict(doc, source)

    @classmethod
    def from_dict(cls, doc: Any, source: str = "<memory>") -> RoutingPolicy:
        def fail(message: str) -> PolicyError:
            return PolicyError(f"{source}: {message}")

        if not isinstance(doc, dict):
            raise fail("expected a mapping with owners, rules and default_owner")
        unknown = set(doc) - {
            "version",
            "currency",
            "owners",
            "rules",
            "default_owner",
            "templates",
        }
        if unknown:
            raise fail(f"unknown top-level keys {sorted(unknown)}")
        owners_doc = doc.get("owners")
        if not isinstance(owners_doc, dict) or not owners_doc:
            raise fail("'owners' must map owner names to their description, limit and channel")
        owners = {}
        for name, spec in owners_doc.items():
            if not isinstance(spec, dict):
                raise fail(f"owner {name!r}: expected a mapping")
            limit = spec.get("authority_limit", 0)
            if not isinstance(limit, int | float) or limit < 0:
                raise fail(f"owner {name!r}: authority_limit must be a non-negative number")
            channel = _channel(spec.get("channel"))
            if channel is None:
                raise fail(
                    f"owner {name!r}: channel must be exactly one of {{webhook_env: VAR}} "
                    "(an upper-case environment variable) or {email: ADDRESS}"
                )
            delivery = spec.get("delivery", PER_ALERT)
            if delivery not in DELIVERIES:
                raise fail(f"owner {name!r}: delivery must be one of {list(DELIVERIES)}")
            owners[name] = Owner(
                name, str(spec.get("description", "")), float(limit), channel, delivery
            )
        alert_types, severities = set(_enum_symbols("alert_type")), set(_enum_symbols("severity"))
        rules = []
        for index, spec in enumerate(doc.get("rules") or [], start=1):
            where = f"rule {index}"
            if not isinstance(spec, dict):
                raise fail(f"{where}: expected a mapping")
            unknown = set(spec) - {
                "alert_type",
                "severity",
                "min_revenue_at_risk",
                "max_revenue_at_risk",
                "owner",
            }
            if unknown:
                raise fail(f"{where}: unknown keys {sorted(unknown)}")
            owner = spec.get("owner")
            if owner not in owners:
                raise fail(f"{where}: owner {owner!r} is not defined under 'owners'")
            types = frozenset(_as_list(spec.get("alert_type")))
            if types - alert_types:
                raise fail(
                    f"{where}: unknown alert_type {sorted(types - alert_types)}; "
                    f"known: {sorted(alert_types)}"
                )
            sevs = frozenset(_as_list(spec.get("severity")))
            if sevs - severities:
                raise fail(
                    f"{where}: unknown severity {sorted(sevs - severities)}; "
                    f"known: {sorted(severities)}"
                )
            lo, hi = spec.get("min_revenue_at_risk"), spec.get("max_revenue_at_risk")
            for key, value in (("min_revenue_at_risk", lo), ("max_revenue_at_risk", hi)):
                if value is not None and (not isinstance(value, int | float) or value < 0):
                    raise fail(f"{where}: {key} must be a non-negative number")
            rules.append(Rule(owner, types, sevs, lo, hi))
        default_owner = doc.get("default_owner")
        if default_owner not in owners:
            raise fail(f"default_owner {default_owner!r} is not defined under 'owners'")
        templates = doc.get("templates") or {}
        if not isinstance(templates, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in templates.items()
        ):
            raise fail("'templates' must map template names to Jinja2 text")
        return cls(
            owners,
            tuple(rules),
            default_owner,
            str(doc.get("currency", "EUR")),
            source,
            dict(templates),
        )


def _channel(value: Any) -> dict[str, str] | None:
    """The owner's one channel, or None when it is missing or malformed (an owner without a
    channel would pass validation and fail at delivery time)."""
    if not isinstance(value, dict) or len(value) != 1:
        return None
    ((kind, target),) = value.items()
    if not isinstance(target, str) or not target.strip():
        return None
    if kind == "webhook_env" and re.fullmatch(r"[A-Z_][A-Z0-9_]*", target):
        return {kind: target}
    if kind == "email" and re.fullmatch(r"[^@\s]+@[^@\s]+", target):
        return {kind: target}
    return None


def _as_list(value: Any) -> Iterable[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
