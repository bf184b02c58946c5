"""BigQuery schemas and table specs come from the .avsc files through one mapping function.

Checked field by field against what the BigQuery API and the real client accept (the
client's own ``SchemaField`` / ``Table`` parsing, no network).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.cloud import bigquery

from churnwatch import schemas
from churnwatch.schemas import FieldSpec
from churnwatch.warehouse.bigquery import (
    BEAM_ROWS,
    JSON_ROWS,
    bigquery_field,
    current_view_sql,
    from_bigquery_value,
    table_resource,
    table_schema,
    terraform_tables_json,
    to_bigquery_row,
)

ROOT = Path(__file__).resolve().parents[1]


def field(**kwargs) -> FieldSpec:
    return FieldSpec(**{"name": "f", "avro_type": "string", "nullable": False, **kwargs})


@pytest.mark.parametrize(
    ("spec", "bq_type", "mode"),
    [
        (field(avro_type="string"), "STRING", "REQUIRED"),
        (field(avro_type="string", nullable=True), "STRING", "NULLABLE"),
        (field(avro_type="enum", symbols=("A", "B")), "STRING", "REQUIRED"),
        (field(avro_type="int"), "INT64", "REQUIRED"),
        (field(avro_type="long"), "INT64", "REQUIRED"),
        (field(avro_type="float", nullable=True), "FLOAT64", "NULLABLE"),
        (field(avro_type="double"), "FLOAT64", "REQUIRED"),
        (field(avro_type="boolean"), "BOOL", "REQUIRED"),
        (field(avro_type="bytes"), "BYTES", "REQUIRED"),
        (field(avro_type="long", logical_type="timestamp-millis"), "TIMESTAMP", "REQUIRED"),
        (
            field(avro_type="long", logical_type="timestamp-micros", nullable=True),
            "TIMESTAMP",
            "NULLABLE",
        ),
        (field(avro_type="int", logical_type="date"), "DATE", "REQUIRED"),
        # Arrays are REPEATED columns of the item type; BigQuery has no null arrays.
        (field(avro_type="array", items="string"), "STRING", "REPEATED"),
        (field(avro_type="array", items="long", nullable=True), "INT64", "REPEATED"),
    ],
)
def test_each_avro_type_maps_to_one_bigquery_type(spec, bq_type, mode):
    column = bigquery_field(spec)
    assert (column["type"], column["mode"]) == (bq_type, mode)
    parsed = bigquery.SchemaField.from_api_repr(column)  # the real client accepts it
    assert (parsed.field_type, parsed.mode) == (bq_type, mode)


def test_a_map_is_a_repeated_key_value_record():
    column = bigquery_field(field(name="attributes", avro_type="map", items="string"))
    parsed = bigquery.SchemaField.from_api_repr(column)
    assert (parsed.field_type, parsed.mode) == ("RECORD", "REPEATED")
    assert [(f.name, f.field_type, f.mode) for f in parsed.fields] == [
        ("key", "STRING", "REQUIRED"),
        ("value", "STRING", "NULLABLE"),
    ]


def test_enum_symbols_and_docs_become_the_description():
    column = bigquery_field(field(avro_type="enum", symbols=("NPS", "CSAT"), doc="Survey."))
    assert column["description"] == "Survey. One of: NPS, CSAT."


def test_an_unmappable_type_is_refused_by_name():
    with pytest.raises(ValueError, match="field f: no BigQuery type for Avro 'fixed'"):
        bigquery_field(field(avro_type="fixed"))


@pytest.mark.parametrize("name", sorted(schemas.tables()))
def test_every_table_has_every_schema_column_in_order(name):
    spec = schemas.table(name)
    columns = table_schema(spec)["fields"]
    assert [c["name"] for c in columns] == list(spec.column_names)
    for column, source in zip(columns, spec.columns, strict=True):
        assert column == bigquery_field(source)


@pytest.mark.parametrize("name", sorted(schemas.tables()))
def test_table_resources_partition_by_event_date_and_cluster(name):
    spec = schemas.table(name)
    table = bigquery.Table.from_api_repr(table_resource(spec, "churnwatch-prod", "churnwatch"))
    assert table.table_id == name
    assert table.time_partitioning.type_ == "DAY"
    assert table.time_partitioning.field == spec.partition_field
    assert table.clustering_fields == list(spec.cluster_fields)
    assert [f.name for f in table.schema] == list(spec.column_names)
    # The partition column is a TIMESTAMP BigQuery can partition on.
    partition = next(f for f in table.schema if f.name == spec.partition_field)
    assert partition.field_type == "TIMESTAMP"


def test_event_tables_partition_by_occurred_at_and_cluster_by_customer():
    for name in ("feedback_events", "customer_events"):
        resource = table_resource(schemas.table(name), "p-roject", "d")
        assert resource["timePartitioning"] == {"type": "DAY", "field": "occurred_at"}
        assert resource["clustering"] == {"fields": ["customer_id"]}


def test_aggregates_view_keeps_the_latest_pane_per_window():
    sql = current_view_sql(schemas.table("feedback_aggregates"), "p-roject", "d")
    assert "FROM `p-roject.d.feedback_aggregates`" in sql
    assert (
        "PARTITION BY window_kind, window_start, window_end, dimension, dimension_value "
        "ORDER BY updated_at DESC) = 1"
    ) in sql


def test_rows_convert_for_streaming_inserts_and_back():
    spec = schemas.table("dead_letters")
    row = {
        "dead_letter_id": "feedback:DECODE:1",
        "source": "feedback",
        "message_id": "1",
        "publish_time": 1_764_000_000_123,
        "attributes": {"b": "2", "a": "1"},
        "payload": b"\x00\xffbad",
        "stage": "DECODE",
        "error": "truncated",
        "pipeline_version": "0.1",
        "failed_at": 1_764_000_000_456,
        "not_a_column": "dropped",
    }
    converted = to_bigquery_row(spec, row, JSON_ROWS)
    assert converted["publish_time"] == "2025-11-24T16:00:00.123000Z"
    assert converted["attributes"] == [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]
    assert converted["payload"] == "AP9iYWQ="
    assert "not_a_column" not in converted
    json.dumps(converted)  # the JSON API can carry it
    back = {c.name: from_bigquery_value(c, converted[c.name]) for c in spec.columns}
    assert back == {k: v for k, v in row.items() if k != "not_a_column"}


def test_rows_convert_for_the_storage_write_api():
    from apache_beam.utils.timestamp import Timestamp

    spec = schemas.table("churn_alerts")
    converted = to_bigquery_row(
        spec, {"detected_at": 1_000, "reason_codes": None, "customer_id": None}, BEAM_ROWS
    )
    assert converted["detected_at"] == Timestamp(micros=1_000_000)
    assert converted["reason_codes"] == []  # BigQuery has no null arrays
    assert converted["customer_id"] is None


def test_terraform_reads_the_tables_generated_from_the_schemas():
    """infra/terraform/generated/bigquery_tables.json is current (`churnwatch infra-tables`)."""
    committed = ROOT / "infra" / "terraform" / "generated" / "bigquery_tables.json"
    assert committed.read_text() == terraform_tables_json(), (
        "stale: run `churnwatch infra-tables` and commit the result"
    )
    assert set(json.loads(committed.read_text())) == set(schemas.tables())


def test_alert_events_current_view_is_current_alerts_with_the_duckdb_sql():
    """alert_events names its view (churnwatch.current_view): one row per alert with its
    lifecycle state, the same SQL DuckDB runs, over both tables in the dataset."""
    from churnwatch.warehouse.alert_events import current_alerts_sql
    from churnwatch.warehouse.bigquery import current_view_name, terraform_tables

    spec = schemas.table("alert_events")
    assert current_view_name("alert_events") == "current_alerts"
    sql = current_view_sql(spec, "p-roject", "d")
    assert sql == current_alerts_sql(lambda t: f"`p-roject.d.{t}`").strip()
    assert "`p-roject.d.churn_alerts`" in sql and "`p-roject.d.alert_events`" in sql
    assert terraform_tables()["alert_events"]["current_view"]["name"] == "current_alerts"
