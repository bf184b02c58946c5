"""The HTML report: rendered from a real DuckDB file and screenshotted in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess

import matplotlib.image as mpimg
import pytest

from churnwatch.cli import main
from churnwatch.report import PLOTS
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from tests.test_views_samples import fill_sample


def screenshot(report, png, tmp_path) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "Chromium is required (.ci/run installs it: apt-get install chromium)"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'chromium-profile'}",
         f"--screenshot={png}", "--window-size=1280,2400", f"file://{report}"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def sample_db(tmp_path):
    path = tmp_path / "wh.duckdb"
    fill_sample(path).close()
    return path


def test_report_has_every_plot_and_renders_in_chromium(sample_db, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["report", "--warehouse", f"duckdb://{sample_db}", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out  # the command prints where the report is
    text = out.read_text()
    # Every view the plots read has rows in the sample, so all five panels are plots.
    imgs = re.findall(r"<img alt='([^']+)' src='data:image/png;base64,", text)
    assert imgs == [title for _, title, _ in PLOTS]
    assert "No data yet" not in text
    assert "src='http" not in text and "href=" not in text  # self-contained
    # Top open alerts: a1 (30000) first, 5 open alerts (nobody acted, nothing reconciled:
    # a1, a2, a3, a4, a6); survey cadence: 2 of 5 overdue.
    table = text[text.index("<table id='open-alerts'>") :]
    assert table.count("<tr><td>") == 5
    assert table.index("30,000") < table.index("800")
    assert re.search(r"id='survey-cadence'><b>2</b>of 5 active", text)

    png = tmp_path / "report.png"
    screenshot(out, png, tmp_path)
    image = mpimg.imread(png)
    assert image.shape[0] == 2400 and image.shape[1] == 1280
    # Not blank: plots and text make the pixels vary well beyond a flat page.
    assert image[..., :3].std() > 0.05


def test_report_on_an_empty_warehouse_says_no_data_yet(tmp_path):
    db = tmp_path / "empty.duckdb"
    DuckDBWarehouse(db).close()
    out = tmp_path / "report.html"
    assert main(["report", "--warehouse", f"duckdb://{db}", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.count("No data yet") == len(PLOTS)
    assert "<img" not in text
    assert "No open alerts" in text


def test_report_on_a_missing_warehouse_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "nope.duckdb"
    assert main(["report", "--warehouse", f"duckdb://{missing}"]) == 2
    assert "no DuckDB warehouse at" in capsys.readouterr().err
    assert not missing.exists()
