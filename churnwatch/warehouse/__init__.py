"""Warehouses behind one ``--warehouse`` URL: ``duckdb:///path`` or ``bigquery://project/dataset``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse


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
