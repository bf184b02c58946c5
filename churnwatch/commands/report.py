"""churnwatch report: a self-contained HTML report with plots, from a DuckDB warehouse."""

from __future__ import annotations

from pathlib import Path

HELP = "write a self-contained HTML report (plots, open alerts, survey cadence) from DuckDB"


def warehouse_path(url: str) -> Path:
    """``duckdb:///abs/path.duckdb`` or a plain path -> the file path."""
    path = Path(url.removeprefix("duckdb://"))
    if not path.exists():
        raise FileNotFoundError(f"no DuckDB warehouse at {path}")
    return path


def add_arguments(parser) -> None:
    parser.add_argument("--warehouse", required=True, help="duckdb:///path/to/file.duckdb")
    parser.add_argument("--out", type=Path, default=Path("report.html"), help="HTML file")
    parser.add_argument(
        "--day-seconds",
        type=float,
        default=86400.0,
        help="seconds of event time per day (simulated data: the demo's value)",
    )


def run(args) -> int:
    from churnwatch.report import write_report  # matplotlib import is slow

    out = write_report(warehouse_path(args.warehouse), args.out, args.day_seconds)
    print(f"report: {out.resolve()} ({out.stat().st_size / 1024:.0f} KiB)")
    return 0
