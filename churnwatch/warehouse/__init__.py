"""Warehouses behind one ``--warehouse`` URL: ``duckdb:///path`` or ``bigquery://project/dataset``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlparse

# What BigQuery accepts, checked before the names go into view SQL and API paths:
# project ids (optionally domain-scoped, "example.com:my-project") and dataset ids.
_PROJECT_ID = re.compile(r"^(?:[a-z0-9][a-z0-9.-]{0,61}[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_DATASET_ID = re.compile(r"^[A-Za-z0-9_]{1,1024}$")


def check_bigquery_ids(project: str, dataset: str) -> None:
    """Raise ValueError unless both are valid BigQuery ids (they are interpolated into SQL)."""
    if not _PROJECT_ID.match(project):
        raise ValueError(
            f"BigQuery project {project!r}: expected 6-30 lower-case letters, digits or "
            "hyphens, starting with a letter"
        )
    if not _DATASET_ID.match(dataset):
        raise ValueError(f"BigQuery dataset {dataset!r}: expected letters, digits or underscores")


@dataclass(frozen=True)
class WarehouseUrl:
    scheme: str  # duckdb | bigquery
    location: str  # file path, or project/dataset

    @classmethod
    def parse(cls, url: str) -> WarehouseUrl:
        parsed = urlparse(url)
        if parsed.scheme == "duckdb":
            path = (parsed.netloc + parsed.path) if parsed.netloc else parsed.path
            if not path:
                raise ValueError(f"--warehouse {url!r}: expected duckdb:///path/to/file.duckdb")
            return cls("duckdb", path)
        if parsed.scheme == "bigquery":
            parts = [p for p in (parsed.netloc + parsed.path).split("/") if p]
            if len(parts) != 2:
                raise ValueError(f"--warehouse {url!r}: expected bigquery://project/dataset")
            try:
                check_bigquery_ids(*parts)
            except ValueError as exc:
                raise ValueError(f"--warehouse {url!r}: {exc}") from None
            return cls("bigquery", "/".join(parts))
        raise ValueError(
            f"--warehouse {url!r}: unsupported scheme; use duckdb:///file.duckdb "
            "or bigquery://project/dataset"
        )


def prepare_warehouse(url: str) -> None:
    """Create every table up front, so empty inputs still leave queryable (empty) tables.

    On DuckDB the BI views (``churnwatch.warehouse.views``) are created too, so a file a
    pipeline wrote is ready for BI tools; the report only reads it.
    """
    parsed = WarehouseUrl.parse(url)
    if parsed.scheme == "duckdb":
        from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
        from churnwatch.warehouse.views import create_views

        create_views(DuckDBWarehouse.shared(parsed.location))
    else:  # idempotent: a no-op where Terraform already created them
        from churnwatch.warehouse.bigquery import BigQueryWarehouse

        BigQueryWarehouse(*parsed.location.split("/")).ensure_tables()
