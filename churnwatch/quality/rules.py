"""Business rules for the expectation suites: ``churnwatch/policy/quality.yaml``.

Only what the ``.avsc`` annotations cannot say lives here: null-rate limits for optional
columns, the future tolerance of event time, conditional rules (cancellations carry a
non-negative revenue) and columns whose values must be routing-policy owners. The file
is validated on load; every error names the file, the table and the column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churnwatch import schemas
from churnwatch.policy import read_policy_yaml

DEFAULT_RULES = "quality.yaml"


class QualityRulesError(ValueError):
    """The quality rules file is malformed."""


@dataclass(frozen=True)
class ConditionalRule:
    """Rows where ``when_column`` is one of ``when_values`` must satisfy the column checks."""

    name: str
    table: str
    when_column: str
    when_values: tuple[str, ...]
    column: str
    not_null: bool = False
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class QualityRules:
    future_tolerance_seconds: float = 300.0
    null_rate: dict[str, dict[str, float]] | None = None  # table -> column -> max fraction
    conditional: tuple[ConditionalRule, ...] = ()
    routing_owner: dict[str, tuple[str, ...]] | None = None  # table -> owner columns
    source: str = "<memory>"

    def null_rates(self, table: str) -> dict[str, float]:
        return dict((self.null_rate or {}).get(table, {}))

    def conditionals(self, table: str) -> tuple[ConditionalRule, ...]:
        return tuple(r for r in self.conditional if r.table == table)

    def owner_columns(self, table: str) -> tuple[str, ...]:
        return tuple((self.routing_owner or {}).get(table, ()))

    @classmethod
    def load(cls, path: str | Path | None = None) -> QualityRules:
        doc, source = read_policy_yaml(path, DEFAULT_RULES, QualityRulesError, "quality rules")
        return cls.from_dict(doc, source)

    @classmethod
    def from_dict(cls, doc: Any, source: str = "<memory>") -> QualityRules:
        def fail(message: str) -> QualityRulesError:
            return QualityRulesError(f"{source}: {message}")

        if not isinstance(doc, dict):
            raise fail("expected a mapping (future_tolerance_seconds, null_rate, conditional, ...)")
        known = {"version", "future_tolerance_seconds", "null_rate", "conditional", "routing_owner"}
        unknown = set(doc) - known
        if unknown:
            raise fail(f"unknown top-level keys {sorted(unknown)}; known: {sorted(known)}")
        tables = schemas.tables()

        def column(table: str, name: Any, where: str) -> schemas.FieldSpec:
            if table not in tables:
                raise fail(f"{where}: unknown table {table!r}; known: {sorted(tables)}")
            for spec in tables[table].columns:
                if spec.name == name:
                    return spec
            raise fail(f"{where}: table {table!r} has no column {name!r}")

        tolerance = doc.get("future_tolerance_seconds", 300)
        if not _is_number(tolerance) or tolerance < 0:
            raise fail("future_tolerance_seconds must be a non-negative number")

        null_rate: dict[str, dict[str, float]] = {}
        for table, limits in (doc.get("null_rate") or {}).items():
            if not isinstance(limits, dict):
                raise fail(f"null_rate.{table}: expected a mapping column -> max null fraction")
            for name, limit in limits.items():
                where = f"null_rate.{table}.{name}"
                spec = column(table, name, where)
                if not spec.nullable:
                    raise fail(f"{where}: column is required (never null); no null rate applies")
                if not _is_number(limit) or not 0 <= limit < 1:
                    raise fail(f"{where}: max null fraction must be a number in [0, 1)")
                null_rate.setdefault(table, {})[name] = float(limit)

        conditional = []
        for index, spec in enumerate(doc.get("conditional") or [], start=1):
            where = f"conditional[{index}]"
            if not isinstance(spec, dict):
                raise fail(f"{where}: expected a mapping")
            keys = {"name", "table", "when", "column", "not_null", "min", "max"}
            if set(spec) - keys:
                raise fail(f"{where}: unknown keys {sorted(set(spec) - keys)}")
            name = spec.get("name")
            if not isinstance(name, str) or not name.isidentifier():
                raise fail(f"{where}: 'name' must be an identifier (it names the expectation)")
            where = f"conditional {name!r}"
            table = spec.get("table")
            when = spec.get("when")
            if not isinstance(when, dict) or set(when) != {"column", "in"}:
                raise fail(f"{where}: 'when' must be {{column: NAME, in: [VALUES]}}")
            when_spec = column(table, when["column"], f"{where}.when")
            values = when["in"] if isinstance(when["in"], list) else [when["in"]]
            if when_spec.symbols and set(values) - set(when_spec.symbols):
                raise fail(
                    f"{where}.when: {sorted(set(values) - set(when_spec.symbols))} are not "
                    f"symbols of {when_spec.name}; known: {list(when_spec.symbols)}"
                )
            target = column(table, spec.get("column"), where)
            lo, hi = spec.get("min"), spec.get("max")
            for key, value in (("min", lo), ("max", hi)):
                if value is not None and not _is_number(value):
                    raise fail(f"{where}.{key}: must be a number")
            if (lo is not None or hi is not None) and target.avro_type not in _NUMERIC:
                raise fail(f"{where}: min/max need a numeric column, {target.name} is not")
            not_null = spec.get("not_null", False)
            if not isinstance(not_null, bool):
                raise fail(f"{where}.not_null: must be true or false")
            if not not_null and lo is None and hi is None:
                raise fail(f"{where}: nothing to check (give not_null, min or max)")
            conditional.append(
                ConditionalRule(
                    name, table, when_spec.name, tuple(values), target.name, not_null, lo, hi
                )
            )

        routing_owner: dict[str, tuple[str, ...]] = {}
        for table, columns in (doc.get("routing_owner") or {}).items():
            if not isinstance(columns, list):
                raise fail(f"routing_owner.{table}: expected a list of columns")
            for name in columns:
                column(table, name, f"routing_owner.{table}")
            routing_owner[table] = tuple(columns)

        return cls(float(tolerance), null_rate, tuple(conditional), routing_owner, source)


_NUMERIC = ("int", "long", "float", "double")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
