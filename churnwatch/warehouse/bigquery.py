"""BigQuery warehouse: table schemas, table specs and views generated from ``schemas/*.avsc``.

One mapping function, :func:`bigquery_field`, turns a schema field into a BigQuery column;
everything else (the ``WriteToBigQuery`` schema, the tables the client creates, the JSON
that Terraform reads) is built from it, so the two warehouses cannot drift apart.

=====================  =======================================================
Avro                   BigQuery
=====================  =======================================================
string, enum           STRING (enum symbols listed in the column description)
int, long              INT64
float, double          FLOAT64
boolean                BOOL
bytes                  BYTES
long timestamp-millis  TIMESTAMP (micros too)
int date               DATE
array<T>               T, mode REPEATED (a null array is written as [])
map<T>                 RECORD(key STRING, value T), mode REPEATED
[null, T]              mode NULLABLE; otherwise REQUIRED
=====================  =======================================================

Exactly once: BigQuery has no primary keys to upsert on, so each keyed table gets a
``current_<table>`` view that keeps one row per primary key (the highest
``churnwatch.version_field`` where there is one, else the first written). For aggregates
that is **one row per window**: every pane is appended and the view picks the latest pane.
We chose the view over a ``MERGE`` per pane because a streaming job cannot run DML at pane
rate (DML quotas and cost, and the Storage Write API cannot express it), while the view
costs one window function over the partitions a query touches and keeps every pane for
audit.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from churnwatch.schemas import FieldSpec, TableSpec, tables
from churnwatch.warehouse import check_bigquery_ids

_PRIMITIVE_TYPES = {
    "string": "STRING",
    "enum": "STRING",
    "int": "INT64",
    "long": "INT64",
    "float": "FLOAT64",
    "double": "FLOAT64",
    "boolean": "BOOL",
    "bytes": "BYTES",
}
_LOGICAL_TYPES = {
    "timestamp-millis": "TIMESTAMP",
    "timestamp-micros": "TIMESTAMP",
    "date": "DATE",
}
#: BigQuery rejects longer column descriptions.
MAX_DESCRIPTION = 1024


def _description(spec: FieldSpec) -> str:
    text = spec.doc
    if spec.symbols:
        text = f"{text} One of: {', '.join(spec.symbols)}.".strip()
    return text[:MAX_DESCRIPTION]


def bigquery_field(spec: FieldSpec) -> dict[str, Any]:
    """The BigQuery column (REST ``TableFieldSchema`` JSON) for one schema field."""
    description = _description(spec)
    if spec.avro_type == "map":
        value = _PRIMITIVE_TYPES[spec.items or "string"]
        return {
            "name": spec.name,
            "type": "RECORD",
            "mode": "REPEATED",
            "description": description,
            "fields": [
                {"name": "key", "type": "STRING", "mode": "REQUIRED"},
                {"name": "value", "type": value, "mode": "NULLABLE"},
            ],
        }
    if spec.avro_type == "array":
        item = _PRIMITIVE_TYPES[spec.items or "string"]
        return {"name": spec.name, "type": item, "mode": "REPEATED", "description": description}
    if spec.logical_type in _LOGICAL_TYPES:
        bq_type = _LOGICAL_TYPES[spec.logical_type]
    elif spec.avro_type in _PRIMITIVE_TYPES:
        bq_type = _PRIMITIVE_TYPES[spec.avro_type]
    else:
        raise ValueError(f"field {spec.name}: no BigQuery type for Avro {spec.avro_type!r}")
    mode = "NULLABLE" if spec.nullable else "REQUIRED"
    return {"name": spec.name, "type": bq_type, "mode": mode, "description": description}


def table_schema(spec: TableSpec) -> dict[str, Any]:
    """``{"fields": [...]}``: the form ``WriteToBigQuery(schema=...)`` and the REST API take."""
    return {"fields": [bigquery_field(c) for c in spec.columns]}


def table_options(spec: TableSpec) -> dict[str, Any]:
    """Partitioning and clustering (``additional_bq_parameters`` form)."""
    options: dict[str, Any] = {}
    if spec.partition_field:
        options["timePartitioning"] = {"type": "DAY", "field": spec.partition_field}
    if spec.cluster_fields:
        options["clustering"] = {"fields": list(spec.cluster_fields)}
    return options


def table_resource(spec: TableSpec, project: str, dataset: str) -> dict[str, Any]:
    """The REST ``Table`` resource for ``tables.insert``: schema, partitioning, clustering."""
    return {
        "tableReference": {"projectId": project, "datasetId": dataset, "tableId": spec.name},
        "description": spec.record.doc[:16384],
        "schema": table_schema(spec),
        **table_options(spec),
    }


def _named_current_view(table_name: str) -> str | None:
    """``churnwatch.current_view`` of the table's schema: a view that replaces the generic one.

    ``alert_events`` names ``current_alerts``: one row per alert with its lifecycle state
    (SQL shared with DuckDB in :mod:`churnwatch.warehouse.alert_events`).
    """
    spec = tables().get(table_name)
    return spec.record.raw.get("churnwatch.current_view") if spec else None


def current_view_name(table_name: str) -> str:
    return _named_current_view(table_name) or f"current_{table_name}"


def current_view_description(table_name: str) -> str:
    if _named_current_view(table_name):
        from churnwatch.warehouse.alert_events import CURRENT_ALERTS_DOC

        return CURRENT_ALERTS_DOC
    return (
        f"One row per primary key of {table_name} (the highest version where there is one, "
        "else the first written): what BI tools should read."
    )


def current_view_sql(spec: TableSpec, project: str, dataset: str) -> str | None:
    """One row per primary key, None for a table without a key.

    The highest ``version_field`` wins (the latest aggregate pane); without one the first
    written row does (ordered by the partition column), as DuckDB's first write wins:
    a redelivered event or a timer that fired twice wrote the same row again.
    """
    if not spec.primary_key:
        return None
    if (project, dataset) != ("{project}", "{dataset}"):  # Terraform fills those two in
        check_bigquery_ids(project, dataset)
    if _named_current_view(spec.name):
        from churnwatch.warehouse.alert_events import current_alerts_sql

        return current_alerts_sql(lambda t: f"`{project}.{dataset}.{t}`").strip()
    version = spec.version_field
    order = f"{version} DESC" if version else (spec.partition_field or spec.primary_key[0])
    return (
        f"SELECT * FROM `{project}.{dataset}.{spec.name}`\n"
        f"WHERE TRUE\n"
        f"QUALIFY ROW_NUMBER() OVER (PARTITION BY {', '.join(spec.primary_key)} "
        f"ORDER BY {order}) = 1"
    )


def terraform_tables() -> dict[str, Any]:
    """Every table as Terraform reads it (``infra/terraform/generated/bigquery_tables.json``)."""
    out = {}
    for name, spec in sorted(tables().items()):
        partition = table_options(spec).get("timePartitioning")
        out[name] = {
            "description": spec.record.doc,
            "schema": table_schema(spec)["fields"],
            "time_partitioning": partition and {"type": "DAY", "field": partition["field"]},
            "clustering": list(spec.cluster_fields),
            "primary_key": list(spec.primary_key),
            "version_field": spec.version_field,
            "current_view": _current_view(name, spec),
        }
    return out


def _current_view(name: str, spec: TableSpec) -> dict[str, str] | None:
    """The view Terraform creates; it fills in ``{project}`` and ``{dataset}``."""
    if not spec.primary_key:
        return None
    return {
        "name": current_view_name(name),
        "description": current_view_description(name),
        "query": current_view_sql(spec, "{project}", "{dataset}"),
    }


def terraform_tables_json() -> str:
    return json.dumps(terraform_tables(), indent=2, sort_keys=True) + "\n"


# -- rows ------------------------------------------------------------------------------------
#: Row formats per write method: the JSON API (streaming inserts) wants RFC 3339 timestamps
#: and base64 bytes; the Storage Write API (a Java transform fed Beam Rows) wants Beam
#: Timestamps and raw bytes.
JSON_ROWS = "json"
BEAM_ROWS = "beam"


def _timestamp(millis: int, row_format: str) -> Any:
    if row_format == BEAM_ROWS:
        from apache_beam.utils.timestamp import Timestamp

        return Timestamp(micros=int(millis) * 1000)
    return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _value(spec: FieldSpec, value: Any, row_format: str) -> Any:
    if spec.avro_type == "array":
        return list(value or [])
    if spec.avro_type == "map":
        return [{"key": k, "value": v} for k, v in sorted((value or {}).items())]
    if value is None:
        return None
    if spec.is_timestamp:
        return _timestamp(value, row_format)
    if spec.avro_type == "bytes" and row_format == JSON_ROWS:
        return base64.b64encode(value).decode("ascii")
    return value


def to_bigquery_row(spec: TableSpec, row: Mapping[str, Any], row_format: str) -> dict[str, Any]:
    """A pipeline row (timestamps as epoch millis) as BigQuery takes it; unknown keys dropped,
    missing ones take the schema's default."""
    filled = spec.row(dict(row))
    return {c.name: _value(c, filled[c.name], row_format) for c in spec.columns}


def from_bigquery_value(spec: FieldSpec, value: Any) -> Any:
    """Inverse of :func:`to_bigquery_row` for one JSON-format value (dead letters, tests)."""
    if spec.avro_type == "map":
        return {kv["key"]: kv["value"] for kv in value or []}
    if value is None or spec.avro_type == "array":
        return value
    if spec.is_timestamp:
        parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        return round(parsed.timestamp() * 1000)
    if spec.avro_type == "bytes":
        return base64.b64decode(value)
    return value


# -- the client ------------------------------------------------------------------------------
class BigQueryWarehouse:
    """Creates the dataset, tables and ``current_*`` views with the real BigQuery client.

    The pipeline writes with ``WriteToBigQuery`` and ``CREATE_NEVER``: tables are created
    here (or by Terraform) with their partitioning and clustering, never implicitly.
    """

    def __init__(self, project: str, dataset: str, location: str = "EU", client=None) -> None:
        from google.cloud import bigquery

        check_bigquery_ids(project, dataset)
        self.project = project
        self.dataset = dataset
        self.location = location
        self.client = client or bigquery.Client(project=project)

    def ensure_tables(self, names=None) -> list[str]:
        """Create what is missing; returns what was created (empty when all exist).

        Looks before creating, so it needs only read access where Terraform already made
        everything (the Dataflow account has ``dataEditor`` on the dataset, not
        ``datasets.create`` on the project).
        """
        from google.api_core.exceptions import NotFound
        from google.cloud import bigquery

        created: list[str] = []
        views: list[tuple[str, Any]] = []  # after every table: a view may read several
        dataset_id = f"{self.project}.{self.dataset}"
        try:
            self.client.get_dataset(dataset_id)
        except NotFound:
            dataset = bigquery.Dataset(dataset_id)
            dataset.location = self.location
            self.client.create_dataset(dataset, exists_ok=True)
            created.append(self.dataset)
        for name in names or sorted(tables()):
            spec = tables()[name]
            wanted = [(name, bigquery.Table.from_api_repr(table_resource(spec, *self._ids())))]
            sql = current_view_sql(spec, *self._ids())
            if sql:
                view = bigquery.Table(f"{dataset_id}.{current_view_name(name)}")
                view.view_query = sql
                view.description = current_view_description(name)
                views.append((current_view_name(name), view))
            for table_id, resource in wanted:
                try:
                    self.client.get_table(f"{dataset_id}.{table_id}")
                except NotFound:
                    self.client.create_table(resource, exists_ok=True)
                    created.append(table_id)
        for table_id, resource in views:
            try:
                self.client.get_table(f"{dataset_id}.{table_id}")
            except NotFound:
                self.client.create_table(resource, exists_ok=True)
                created.append(table_id)
        return created

    def _ids(self) -> tuple[str, str]:
        return self.project, self.dataset
