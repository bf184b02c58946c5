"""The schema loader: every record parses, storage hints are consistent, tables derive from it."""

from __future__ import annotations

import json

import pytest

from churnwatch import schemas
from churnwatch.warehouse.duckdb_store import ddl


def test_every_avsc_file_loads_and_every_field_is_documented():
    loaded = schemas.load_all()
    files = list(schemas.schema_dir().glob("*.avsc"))
    assert len(loaded) == len(files)
    undocumented = [f"{s.name}.{f.name}" for s in loaded.values() for f in s.fields if not f.doc]
    assert undocumented == []


@pytest.mark.parametrize("table", sorted(schemas.tables()))
def test_storage_hints_name_real_fields(table):
    spec = schemas.table(table)
    names = set(spec.column_names)
    assert set(spec.primary_key) <= names
    assert set(spec.cluster_fields) <= names
    assert spec.partition_field in names
    assert spec.record.field(spec.partition_field).is_timestamp


def test_event_tables_get_the_ingest_metadata_columns():
    meta = schemas.load(schemas.INGEST_METADATA).field_names
    for name in ("feedback_events", "customer_events"):
        spec = schemas.table(name)
        assert spec.column_names == schemas.load(spec.record.name).field_names + meta
    assert "schema_revision" not in schemas.table("dead_letters").column_names


def test_ddl_follows_the_schema_field_by_field():
    spec = schemas.table("feedback_events")
    statement = ddl(spec)
    for column in spec.columns:  # identifiers are quoted (churnwatch.warehouse.duckdb_store)
        assert f'    "{column.name}" ' in statement
    assert '"nps_score" INTEGER,' in statement  # nullable int
    assert '"occurred_at" TIMESTAMP NOT NULL' in statement  # timestamp-millis, required
    assert 'PRIMARY KEY ("event_id")' in statement


def test_revision_is_the_crc64_fingerprint_and_changes_with_the_schema():
    schema = schemas.load(schemas.FEEDBACK_EVENT)
    changed = json.loads(json.dumps(schema.raw))
    changed["fields"].append({"name": "x", "type": ["null", "int"], "default": None})
    assert len(schema.revision) == 16
    assert schemas.schema_revision(changed) != schema.revision
    # docs and churnwatch.* annotations are not part of the canonical form
    relabelled = json.loads(json.dumps(schema.raw))
    relabelled["fields"][0]["doc"] = "something else"
    assert schemas.schema_revision(relabelled) == schema.revision


def test_unknown_schema_and_table_names_say_what_exists():
    with pytest.raises(KeyError, match="FeedbackEvent"):
        schemas.load("Feedback")
    with pytest.raises(KeyError, match="feedback_events"):
        schemas.table("feedback")
