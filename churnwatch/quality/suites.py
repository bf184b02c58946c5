"""Expectation suites as plain specs, derived from a table spec and the quality rules.

No field list is written by hand: every expectation comes from a ``schemas/*.avsc``
annotation or from ``churnwatch/policy/quality.yaml``. Specs are plain dataclasses so the
suites can be tested (and listed, and diffed) without importing Great Expectations;
``gx_runner`` turns them into GX expectations.

Per table::

    table.columns                 the frame has exactly the table's columns
    <pk>.unique                   primary key (churnwatch.primary_key), single or compound
    <col>.not_null                every required (non-union) column
    <col>.in_set                  enum symbols
    <col>.between                 churnwatch.min / churnwatch.max
    <col>.pattern                 churnwatch.pattern
    <col>.non_empty               churnwatch.non_empty (at least one non-blank character)
    <col>.event_time              churnwatch.event_time: after 2000-01-01, not beyond
                                  now + future_tolerance_seconds (a run-time parameter)
    <col>.null_rate               quality.yaml null_rate (mostly = 1 - max null fraction)
    <rule>.not_null / .between    quality.yaml conditional rules (row condition)
    <col>.routing_owner           quality.yaml routing_owner: values are policy owners

Timestamps are compared as epoch milliseconds (stream rows carry them that way; the
warehouse checkpoint reads them with ``epoch_ms``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from churnwatch.quality.rules import QualityRules
from churnwatch.schemas import TableSpec
from churnwatch.validation import EARLIEST_PLAUSIBLE_MS

#: Run-time parameter: the latest acceptable event time (now + tolerance), epoch ms.
MAX_EVENT_TIME = "max_event_time_ms"

NON_EMPTY_REGEX = r"\S"


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation, independent of Great Expectations.

    ``kwargs`` are the GX keyword arguments (a value ``{"$PARAMETER": name}`` is filled
    at run time); ``condition`` restricts it to rows where a column is in a value set.
    """

    id: str
    type: str
    kwargs: dict[str, Any]
    column: str | None = None
    condition: tuple[str, tuple[Any, ...]] | None = None  # (column, values): rows it applies to
    origin: str = ""  # which annotation or rule it comes from

    def kwargs_json(self) -> str:
        out = dict(self.kwargs)
        if self.condition:
            out["row_condition"] = {"column": self.condition[0], "in": list(self.condition[1])}
        return json.dumps(out, sort_keys=True, default=str)


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    table: str
    expectations: tuple[ExpectationSpec, ...] = field(default_factory=tuple)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(e.id for e in self.expectations)

    def expectation(self, expectation_id: str) -> ExpectationSpec:
        for spec in self.expectations:
            if spec.id == expectation_id:
                return spec
        raise KeyError(f"suite {self.name} has no expectation {expectation_id!r}")


def build_suite(
    table: TableSpec, rules: QualityRules, policy_owners: tuple[str, ...] = ()
) -> SuiteSpec:
    """Every expectation for ``table``: annotations first (column order), then the rules."""
    out: list[ExpectationSpec] = [
        ExpectationSpec(
            "table.columns",
            "expect_table_columns_to_match_set",
            {"column_set": list(table.column_names), "exact_match": True},
            origin="schema fields",
        )
    ]
    pk = table.primary_key
    if len(pk) == 1:
        out.append(
            ExpectationSpec(
                f"{pk[0]}.unique",
                "expect_column_values_to_be_unique",
                {"column": pk[0]},
                pk[0],
                origin="churnwatch.primary_key",
            )
        )
    elif pk:
        out.append(
            ExpectationSpec(
                "primary_key.unique",
                "expect_compound_columns_to_be_unique",
                {"column_list": list(pk)},
                origin="churnwatch.primary_key",
            )
        )
    null_rates = rules.null_rates(table.name)
    for c in table.columns:
        name = c.name

        def add(suffix: str, kind: str, origin: str, col: str = name, **kwargs: Any) -> None:
            spec = ExpectationSpec(f"{col}.{suffix}", kind, {"column": col, **kwargs}, col)
            out.append(replace(spec, origin=origin))

        if c.required:
            add("not_null", "expect_column_values_to_not_be_null", "required field")
        elif name in null_rates:
            add(
                "null_rate",
                "expect_column_values_to_not_be_null",
                "quality.yaml null_rate",
                mostly=round(1.0 - null_rates[name], 6),
            )
        if c.symbols:
            add("in_set", "expect_column_values_to_be_in_set", "enum", value_set=list(c.symbols))
        if c.minimum is not None or c.maximum is not None:
            bounds = {}
            if c.minimum is not None:
                bounds["min_value"] = c.minimum
            if c.maximum is not None:
                bounds["max_value"] = c.maximum
            add("between", "expect_column_values_to_be_between", "churnwatch.min/max", **bounds)
        if c.pattern:
            add(
                "pattern",
                "expect_column_values_to_match_regex",
                "churnwatch.pattern",
                regex=c.pattern,
            )
        if c.non_empty:
            add(
                "non_empty",
                "expect_column_values_to_match_regex",
                "churnwatch.non_empty",
                regex=NON_EMPTY_REGEX,
            )
        if c.event_time:
            add(
                "event_time",
                "expect_column_values_to_be_between",
                "churnwatch.event_time + future_tolerance_seconds",
                min_value=EARLIEST_PLAUSIBLE_MS,
                max_value={"$PARAMETER": MAX_EVENT_TIME},
            )
    for rule in rules.conditionals(table.name):
        condition = (rule.when_column, rule.when_values)
        origin = f"quality.yaml conditional {rule.name}"
        if rule.not_null:
            out.append(
                ExpectationSpec(
                    f"{rule.name}.not_null",
                    "expect_column_values_to_not_be_null",
                    {"column": rule.column},
                    rule.column,
                    condition,
                    origin,
                )
            )
        if rule.minimum is not None or rule.maximum is not None:
            bounds = {}
            if rule.minimum is not None:
                bounds["min_value"] = rule.minimum
            if rule.maximum is not None:
                bounds["max_value"] = rule.maximum
            out.append(
                ExpectationSpec(
                    f"{rule.name}.between",
                    "expect_column_values_to_be_between",
                    {"column": rule.column, **bounds},
                    rule.column,
                    condition,
                    origin,
                )
            )
    owners = rules.owner_columns(table.name)
    if owners and not policy_owners:
        raise ValueError(f"{table.name}: routing_owner rules need the routing policy's owners")
    for col in owners:
        out.append(
            ExpectationSpec(
                f"{col}.routing_owner",
                "expect_column_values_to_be_in_set",
                {"column": col, "value_set": sorted(policy_owners)},
                col,
                origin="quality.yaml routing_owner",
            )
        )
    ids = [e.id for e in out]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"{table.name}: duplicate expectation ids {duplicates}")
    return SuiteSpec(table.name, table.name, tuple(out))


def build_suites(
    tables: dict[str, TableSpec], rules: QualityRules, policy_owners: tuple[str, ...] = ()
) -> dict[str, SuiteSpec]:
    return {name: build_suite(spec, rules, policy_owners) for name, spec in tables.items()}
