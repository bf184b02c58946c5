"""Names never become SQL: crafted DuckDB table names and bad BigQuery ids."""

from __future__ import annotations

import duckdb
import pytest

from churnwatch.schemas import table
from churnwatch.summary import warehouse_summary
from churnwatch.warehouse import WarehouseUrl
from churnwatch.warehouse.bigquery import current_view_sql
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse, quote_ident

EVIL = "x; DROP TABLE dead_letters; --"


def test_a_crafted_table_name_in_the_file_stays_a_name(tmp_path):
    # Before: the demo summary ran `SELECT count(*) FROM x; DROP TABLE dead_letters; --`.
    path = str(tmp_path / "crafted.duckdb")
    DuckDBWarehouse(path).ensure_tables(["dead_letters"])
    con = duckdb.connect(path)
    con.execute(f"CREATE TABLE {quote_ident(EVIL)} (a INTEGER)")
    con.execute(f"INSERT INTO {quote_ident(EVIL)} VALUES (1), (2)")
    con.close()
    summary = warehouse_summary(path)
    assert summary["tables"][EVIL] == 2  # counted as a table
    assert summary["tables"]["dead_letters"] == 0  # and dead_letters is still there


def test_quote_ident_doubles_embedded_quotes():
    assert quote_ident('a"b') == '"a""b"'


@pytest.mark.parametrize(
    "url",
    ["bigquery://p`; DROP TABLE x; --/churn", "bigquery://my-project/churn`x",
     "bigquery://My_Project/churn", "bigquery://abc/churn", "bigquery://my-project/chu rn"],
)  # fmt: skip
def test_bad_bigquery_ids_are_refused_before_any_sql(url):
    with pytest.raises(ValueError, match="--warehouse"):
        WarehouseUrl.parse(url)


def test_view_sql_refuses_a_bad_dataset_and_accepts_good_ids():
    spec = table("churn_alerts")
    with pytest.raises(ValueError, match="dataset"):
        current_view_sql(spec, "my-project", "churn`; DROP")
    assert "`example.com:my-project.churn_1.churn_alerts`" in current_view_sql(
        spec, "example.com:my-project", "churn_1"
    )
