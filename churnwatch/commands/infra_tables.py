"""churnwatch infra-tables: write the BigQuery tables Terraform creates, from the schemas."""

from __future__ import annotations

from pathlib import Path

from churnwatch.commands import write_or_check
from churnwatch.schemas import tables
from churnwatch.warehouse.bigquery import terraform_tables_json

HELP = (
    "write infra/terraform/generated/bigquery_tables.json (BigQuery schemas, partitioning "
    "and clustering generated from schemas/*.avsc) for Terraform"
)
DEFAULT_OUT = (
    Path(__file__).resolve().parents[2]
    / "infra"
    / "terraform"
    / "generated"
    / "bigquery_tables.json"
)


def add_arguments(parser) -> None:
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON file to write")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the file differs from the schemas"
    )


def run(args) -> int:
    text = terraform_tables_json()
    return write_or_check(args.out, text, "infra-tables", args.check, f"{len(tables())} tables")
