"""churnwatch report: a self-contained HTML report with plots, from a DuckDB warehouse."""

from __future__ import annotations

from pathlib import Path

HELP = (
    "write a self-contained HTML report (plots, alert funnel, worklists, alert timelines) "
    "from DuckDB, opened read-only"
)


def warehouse_path(url: str) -> Path:
    """``duckdb:///abs/path.duckdb`` or a plain path -> the file path."""
    return Path(url.removeprefix("duckdb://"))


def add_arguments(parser) -> None:
    parser.add_argument("--warehouse", required=True, help="duckdb:///path/to/file.duckdb")
    parser.add_argument("--out", type=Path, default=Path("report.html"), help="HTML file")
    parser.add_argument(
        "--day-seconds",
        type=float,
        default=None,
        help="seconds of event time per customer day (default: what the pipeline recorded, "
        "the length of its daily windows; 86400 for an empty warehouse)",
    )


def run(args) -> int:
    from churnwatch.report import write_report  # matplotlib import is slow

    if args.day_seconds is not None and args.day_seconds <= 0:
        raise ValueError("--day-seconds must be positive")
    out = write_report(warehouse_path(args.warehouse), args.out, args.day_seconds)
    print(f"report: {out.resolve()} ({out.stat().st_size / 1024:.0f} KiB)")
    return 0
