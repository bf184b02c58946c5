"""TEMPORARY: writes infra/terraform/generated/bigquery_tables.json with a naive mapping.

The real generator is the lead's ``churnwatch infra-tables`` (churnwatch/warehouse/bigquery.py),
which overwrites this file; delete this script then. Terraform (infra/terraform/bigquery.tf)
depends only on the file's format:

    {"<table>": {"description": str, "schema": [BigQuery JSON fields],
                 "time_partitioning": {"type": "DAY", "field": str} | null,
                 "clustering": [str], "primary_key": [str]}}

    python infra/scripts/placeholder_bigquery_tables.py
"""

from __future__ import annotations

import json
from pathlib import Path

from churnwatch import schemas

OUT = Path(__file__).resolve().parents[1] / "terraform" / "generated" / "bigquery_tables.json"

PRIMITIVE = {
    "string": "STRING",
    "long": "INT64",
    "int": "INT64",
    "boolean": "BOOL",
    "double": "FLOAT64",
    "float": "FLOAT64",
    "bytes": "BYTES",
    "enum": "STRING",
}


def field(spec: schemas.FieldSpec) -> dict:
    out = {"name": spec.name, "description": spec.doc}
    if spec.avro_type == "array":
        return {**out, "type": PRIMITIVE[spec.items], "mode": "REPEATED"}
    if spec.avro_type == "map":  # repeated key/value records, the usual BigQuery shape
        kv = [
            {"name": "key", "type": "STRING", "mode": "REQUIRED", "description": "Map key."},
            {
                "name": "value",
                "type": PRIMITIVE[spec.items],
                "mode": "NULLABLE",
                "description": "Map value.",
            },
        ]
        return {**out, "type": "RECORD", "mode": "REPEATED", "fields": kv}
    kind = "TIMESTAMP" if spec.is_timestamp else PRIMITIVE[spec.avro_type]
    return {**out, "type": kind, "mode": "NULLABLE" if spec.nullable else "REQUIRED"}


def table(spec: schemas.TableSpec) -> dict:
    partition = spec.partition_field
    return {
        "description": spec.record.doc,
        "schema": [field(c) for c in spec.columns],
        "time_partitioning": {"type": "DAY", "field": partition} if partition else None,
        "clustering": list(spec.cluster_fields),
        "primary_key": list(spec.primary_key),
    }


def main() -> None:
    tables = {name: table(spec) for name, spec in sorted(schemas.tables().items())}
    OUT.write_text(json.dumps(tables, indent=2, sort_keys=True) + "\n")
    print(f"wrote {len(tables)} tables to {OUT}")


if __name__ == "__main__":
    main()
