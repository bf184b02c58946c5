"""churnwatch quality on a real DuckDB file: checkpoints, kept results, Data Docs, exit code."""

from __future__ import annotations

from churnwatch.cli import main
from churnwatch.schemas import tables
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from tests.helpers import customer, feedback


def seed(path, bad: bool) -> None:
    wh = DuckDBWarehouse(path)
    try:
        wh.ensure_tables()
        rows = [{**feedback(f"fe-{i}", f"C{i:06d}"), "schema_revision": "abc"} for i in range(30)]
        customers = [
            {**customer(f"ce-{i}", f"C{i:06d}"), "schema_revision": "abc"} for i in range(10)
        ]
        customers[0].update(type="CANCELLATION", amount=None, currency=None, monthly_revenue=0.0)
        if bad:
            rows[3]["nps_score"] = 11  # e.g. loaded by a tool that skipped the pipeline
            customers[0]["monthly_revenue"] = None
        wh.upsert("feedback_events", rows)
        wh.upsert("customer_events", customers)
    finally:
        wh.close()


def test_good_warehouse_passes_and_results_and_docs_are_written(tmp_path, capsys):
    db = tmp_path / "wh.duckdb"
    seed(db, bad=False)
    docs = tmp_path / "docs"
    argv = ["quality", f"--warehouse=duckdb://{db}", f"--docs-dir={docs}"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "feedback_events" in out and "FAILED" not in out
    index = (docs / "index.html").read_text()
    assert "feedback_events" in index and "customer_events" in index
    wh = DuckDBWarehouse(db)
    try:
        runs = wh.query(
            "SELECT count(DISTINCT run_id), count(DISTINCT suite), bool_and(success),"
            " min(source) FROM quality_results"
        )
        assert runs == [(1, len(tables()), True, "WAREHOUSE")]  # one run, every table's suite
    finally:
        wh.close()


def test_failing_expectations_are_named_kept_and_fail_the_exit_code(tmp_path, capsys):
    db = tmp_path / "wh.duckdb"
    seed(db, bad=True)
    docs = tmp_path / "docs"
    argv = ["quality", f"--warehouse=duckdb://{db}", f"--docs-dir={docs}"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    failed_lines = {line for line in out.splitlines() if line.startswith("FAILED")}
    assert failed_lines == {
        "FAILED feedback_events: nps_score.between",
        "FAILED customer_events: cancellation_revenue.not_null",
    }
    assert main([*argv, "--no-fail", "--tables=feedback_events"]) == 0  # a second run, kept
    wh = DuckDBWarehouse(db)
    try:
        failures = wh.query(
            "SELECT suite, expectation_id, unexpected_count, observed_value FROM quality_results"
            " WHERE NOT success ORDER BY checked_at, suite"
        )
        assert [f[:3] for f in failures] == [
            ("customer_events", "cancellation_revenue.not_null", 1),
            ("feedback_events", "nps_score.between", 1),
            ("feedback_events", "nps_score.between", 1),
        ]
        assert '"partial_unexpected_list": [11]' in failures[1][3]
        assert wh.query("SELECT count(DISTINCT run_id) FROM quality_results") == [(2,)]
    finally:
        wh.close()
    assert list((docs / "validations").rglob("*.html"))  # validation pages in Data Docs


def test_unknown_table_is_a_clear_error(tmp_path, capsys):
    db = tmp_path / "wh.duckdb"
    seed(db, bad=False)
    assert main(["quality", f"--warehouse=duckdb://{db}", "--tables=nope"]) == 2
    assert "unknown ['nope']" in capsys.readouterr().err
