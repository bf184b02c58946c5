"""Semantic rules: what a record must satisfy beyond its Avro types.

The rules are read from the schema's field annotations (``churnwatch.min``, ``.max``,
``.pattern``, ``.max_length``, ``.non_empty``, ``.event_time``), so adding a range to an
``.avsc`` file changes validation, the warehouse checks and the expectation suites
together. Every ``float`` / ``double`` must also be finite (Avro binary carries NaN and
infinities). Bad values are quoted cut short (:func:`churnwatch.wire.quote`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from churnwatch.schemas import FieldSpec, RecordSchema
from churnwatch.wire import quote

Check = Callable[[Mapping[str, Any], int], str | None]

#: Event times before this are treated as producer bugs (epoch zero, seconds-not-millis).
EARLIEST_PLAUSIBLE_MS = 946_684_800_000  # 2000-01-01T00:00:00Z


def _range_check(spec: FieldSpec) -> Check:
    name, lo, hi = spec.name, spec.minimum, spec.maximum

    def check(record: Mapping[str, Any], _now_ms: int) -> str | None:
        value = record.get(name)
        if value is None:
            return None
        if lo is not None and value < lo:
            return f"{name}={value} below minimum {lo}"
        if hi is not None and value > hi:
            return f"{name}={value} above maximum {hi}"
        return None

    return check


def _finite_check(spec: FieldSpec) -> Check:
    name = spec.name

    def check(record: Mapping[str, Any], _now_ms: int) -> str | None:
        value = record.get(name)
        if value is None or math.isfinite(value):
            return None
        return f"{name}={value} is not a finite number"

    return check


def _pattern_check(spec: FieldSpec) -> Check:
    name, regex, limit = spec.name, re.compile(spec.pattern or ""), spec.max_length

    def check(record: Mapping[str, Any], _now_ms: int) -> str | None:
        value = record.get(name)
        if value is None or (limit is not None and len(value) > limit):
            return None  # the length check reports it; no regex over megabytes
        if regex.fullmatch(value):
            return None
        return f"{name}={quote(value)} does not match {regex.pattern}"

    return check


def _length_check(spec: FieldSpec) -> Check:
    name, limit = spec.name, spec.max_length or 0

    def check(record: Mapping[str, Any], _now_ms: int) -> str | None:
        value = record.get(name)
        if value is None or len(value) <= limit:
            return None
        return f"{name} is {len(value):,} characters long (max_length {limit}): {quote(value)}"

    return check


def _non_empty_check(spec: FieldSpec) -> Check:
    name = spec.name

    def check(record: Mapping[str, Any], _now_ms: int) -> str | None:
        value = record.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return f"{name} is empty"
        return None

    return check


def _event_time_check(spec: FieldSpec, future_tolerance_ms: int) -> Check:
    name = spec.name

    def check(record: Mapping[str, Any], now_ms: int) -> str | None:
        value = record.get(name)
        if value is None:
            return None
        if value > now_ms + future_tolerance_ms:
            ahead, tolerance = (value - now_ms) / 1000, future_tolerance_ms / 1000
            return f"{name} is {ahead:.0f}s in the future (tolerance {tolerance:.0f}s)"
        if value < EARLIEST_PLAUSIBLE_MS:
            return f"{name}={value} is before 2000-01-01: seconds instead of milliseconds?"
        return None

    return check


class RecordRules:
    """Compiled semantic checks for one record schema."""

    def __init__(self, schema: RecordSchema, future_tolerance_s: float = 300.0) -> None:
        self.schema = schema
        tolerance_ms = int(future_tolerance_s * 1000)
        checks: list[Check] = []
        for spec in schema.fields:
            if spec.avro_type in ("float", "double"):
                checks.append(_finite_check(spec))
            if spec.max_length is not None:
                checks.append(_length_check(spec))
            if spec.non_empty:
                checks.append(_non_empty_check(spec))
            if spec.pattern:
                checks.append(_pattern_check(spec))
            if spec.minimum is not None or spec.maximum is not None:
                checks.append(_range_check(spec))
            if spec.event_time:
                checks.append(_event_time_check(spec, tolerance_ms))
        self._checks = tuple(checks)

    def errors(self, record: Mapping[str, Any], now_ms: int) -> list[str]:
        """Every broken rule, in field order; empty when the record is valid."""
        out = []
        for check in self._checks:
            problem = check(record, now_ms)
            if problem:
                out.append(problem)
        return out
