"""The one schema loader: every table, validation and expectation derives from here.

Each ``schemas/*.avsc`` file is a plain Avro record schema plus a few ``churnwatch.*``
attributes (Avro allows extra attributes) that say how the record is stored and checked:

* record level: ``churnwatch.table``, ``churnwatch.primary_key``,
  ``churnwatch.partition_field``, ``churnwatch.cluster_fields``;
* field level: ``churnwatch.min`` / ``churnwatch.max`` (numeric range),
  ``churnwatch.pattern`` (regex for strings), ``churnwatch.max_length`` (longest string,
  in characters), ``churnwatch.non_empty``,
  ``churnwatch.event_time`` (the field that carries event time).

Two parsed forms are kept per schema: ``parsed`` (fastavro with logical types, for
writers that hand in datetimes) and ``parsed_plain`` (logical types stripped), which the
hot path uses so timestamps stay as integer epoch milliseconds end to end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

SCHEMA_PACKAGE = "schemas"
ATTR = "churnwatch."


@dataclass(frozen=True)
class FieldSpec:
    """One field, flattened to what storage and validation need."""

    name: str
    avro_type: str  # primitive or complex base type: string, long, enum, array, map, ...
    nullable: bool
    doc: str = ""
    logical_type: str | None = None
    symbols: tuple[str, ...] = ()  # enum symbols
    items: str | None = None  # array item / map value primitive type
    has_default: bool = False
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    max_length: int | None = None
    non_empty: bool = False
    event_time: bool = False

    @property
    def is_timestamp(self) -> bool:
        return self.logical_type in ("timestamp-millis", "timestamp-micros")

    @property
    def required(self) -> bool:
        return not self.nullable


@dataclass(frozen=True)
class RecordSchema:
    """A record schema with its storage hints and both parsed forms."""

    name: str
    doc: str
    raw: dict[str, Any] = field(repr=False)
    fields: tuple[FieldSpec, ...]
    table: str | None = None
    primary_key: tuple[str, ...] = ()
    partition_field: str | None = None
    cluster_fields: tuple[str, ...] = ()

    @property
    def parsed(self) -> dict[str, Any]:
        return _parse(json.dumps(self.raw, sort_keys=True), plain=False)

    @property
    def parsed_plain(self) -> dict[str, Any]:
        return _parse(json.dumps(self.raw, sort_keys=True), plain=True)

    @property
    def revision(self) -> str:
        """CRC-64-AVRO fingerprint of the parsing canonical form, in hex."""
        return schema_revision(self.raw)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def event_time_field(self) -> str | None:
        return next((f.name for f in self.fields if f.event_time), None)

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(f"{self.name} has no field {name!r}")


def schema_revision(raw: dict[str, Any]) -> str:
    return _revision(json.dumps(raw, sort_keys=True))


@cache
def _revision(raw_json: str) -> str:
    # fastavro's Rabin fingerprint is pure Python (~0.5 ms): once per schema, not per message
    return fingerprint(to_parsing_canonical_form(json.loads(raw_json)), "CRC-64-AVRO")


def strip_logical_types(node: Any) -> Any:
    """Copy of a schema without ``logicalType`` so timestamps decode as int millis."""
    if isinstance(node, dict):
        return {k: strip_logical_types(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [strip_logical_types(v) for v in node]
    return node


@cache
def _parse(raw_json: str, plain: bool) -> dict[str, Any]:
    raw = json.loads(raw_json)
    return fastavro.parse_schema(strip_logical_types(raw) if plain else raw)


def _field_spec(raw_field: dict[str, Any]) -> FieldSpec:
    avro_type = raw_field["type"]
    nullable = False
    if isinstance(avro_type, list):
        branches = [b for b in avro_type if b != "null"]
        nullable = len(branches) < len(avro_type)
        if len(branches) != 1:
            raise ValueError(f"field {raw_field['name']}: only [null, T] unions are supported")
        avro_type = branches[0]
    logical = None
    symbols: tuple[str, ...] = ()
    items = None
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        symbols = tuple(avro_type.get("symbols", ()))
        items = avro_type.get("items") or avro_type.get("values")
        avro_type = avro_type["type"]
    return FieldSpec(
        name=raw_field["name"],
        avro_type=avro_type,
        nullable=nullable,
        doc=raw_field.get("doc", ""),
        logical_type=logical,
        symbols=symbols,
        items=items if isinstance(items, str) else None,
        has_default="default" in raw_field,
        default=raw_field.get("default"),
        minimum=raw_field.get(ATTR + "min"),
        maximum=raw_field.get(ATTR + "max"),
        pattern=raw_field.get(ATTR + "pattern"),
        max_length=raw_field.get(ATTR + "max_length"),
        non_empty=bool(raw_field.get(ATTR + "non_empty", False)),
        event_time=bool(raw_field.get(ATTR + "event_time", False)),
    )


def record_schema(raw: dict[str, Any]) -> RecordSchema:
    """Build a :class:`RecordSchema` from a raw Avro record (validated by fastavro)."""
    fastavro.parse_schema(raw)  # fail early on a malformed schema
    return RecordSchema(
        name=raw["name"],
        doc=raw.get("doc", ""),
        raw=raw,
        fields=tuple(_field_spec(f) for f in raw["fields"]),
        table=raw.get(ATTR + "table"),
        primary_key=tuple(raw.get(ATTR + "primary_key", ())),
        partition_field=raw.get(ATTR + "partition_field"),
        cluster_fields=tuple(raw.get(ATTR + "cluster_fields", ())),
    )


def schema_dir() -> Path:
    return Path(str(resources.files(SCHEMA_PACKAGE)))


@cache
def load_all() -> dict[str, RecordSchema]:
    """Every record schema in ``schemas/``, by record name."""
    out = {}
    for path in sorted(schema_dir().glob("*.avsc")):
        schema = record_schema(json.loads(path.read_text()))
        out[schema.name] = schema
    return out


def load(name: str) -> RecordSchema:
    try:
        return load_all()[name]
    except KeyError:
        raise KeyError(f"no schema named {name!r}; known: {sorted(load_all())}") from None


def avsc_path(name: str) -> Path:
    for path in schema_dir().glob("*.avsc"):
        if json.loads(path.read_text())["name"] == name:
            return path
    raise KeyError(name)


FEEDBACK_EVENT = "FeedbackEvent"
CUSTOMER_EVENT = "CustomerEvent"
CHURN_ALERT = "ChurnAlert"
FEEDBACK_AGGREGATE = "FeedbackAggregate"
DEAD_LETTER = "DeadLetter"
INGEST_METADATA = "IngestMetadata"

#: Event records get the ingest metadata columns in the warehouse.
EVENT_SCHEMAS = (FEEDBACK_EVENT, CUSTOMER_EVENT)


@dataclass(frozen=True)
class TableSpec:
    """A warehouse table: its columns (schema fields plus metadata) and storage hints."""

    name: str
    record: RecordSchema
    columns: tuple[FieldSpec, ...]

    @property
    def primary_key(self) -> tuple[str, ...]:
        return self.record.primary_key

    @property
    def partition_field(self) -> str | None:
        return self.record.partition_field

    @property
    def cluster_fields(self) -> tuple[str, ...]:
        return self.record.cluster_fields

    @property
    def version_field(self) -> str | None:
        """``churnwatch.version_field``: a higher value replaces the row (aggregate panes)."""
        return self.record.raw.get(ATTR + "version_field")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def row(self, values: dict[str, Any]) -> dict[str, Any]:
        """One value per column: a column the row leaves out takes the schema's default,
        as Avro resolution would (e.g. a writer from before ``revision`` existed)."""
        return {
            c.name: values.get(c.name, c.default if c.has_default else None) for c in self.columns
        }


@cache
def tables() -> dict[str, TableSpec]:
    """All warehouse tables, derived from the schemas that name a table."""
    out = {}
    meta = load(INGEST_METADATA).fields
    for schema in load_all().values():
        if not schema.table:
            continue
        columns = schema.fields + (meta if schema.name in EVENT_SCHEMAS else ())
        out[schema.table] = TableSpec(schema.table, schema, columns)
    return out


def table(name: str) -> TableSpec:
    try:
        return tables()[name]
    except KeyError:
        raise KeyError(f"no table {name!r}; known: {sorted(tables())}") from None
