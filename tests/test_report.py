"""The HTML report: rendered from a real DuckDB file, read back through headless Chromium.

Chromium loads the report, dumps the DOM it built and takes a screenshot; the tests check
what a lead sees there against the warehouse itself: the card numbers, the funnel, one
row per customer in "Top open alerts", the worklists, the timelines, and that the silent
churn series is really drawn (its colour's pixels, in the chart and on the screen).
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import matplotlib.image as mpimg
import numpy as np
import pytest

from churnwatch.cli import main
from churnwatch.report import PLOTS, SILENT_COLOR, VOCAL_COLOR
from churnwatch.warehouse.alert_events import AlertLedger
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from tests.helpers import duckdb_locked_by_another_process
from tests.test_views_samples import alert, customer_event, fill_sample, ms


def chromium(*args: str, tmp_path) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium")
    assert binary, "Chromium is required (.ci/run installs it: apt-get install chromium)"
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'chromium-profile'}", *args],
        check=True, capture_output=True, timeout=120, text=True,
    )  # fmt: skip


def screenshot(report, png, tmp_path, height: int = 2400) -> np.ndarray:
    chromium(f"--screenshot={png}", f"--window-size=1280,{height}", f"file://{report}",
             tmp_path=tmp_path)  # fmt: skip
    return mpimg.imread(png)


class Dom(HTMLParser):
    """What Chromium rendered: cards, tables (rows of cell text), sections, images."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.cards: dict[str, float] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self.sections: list[dict[str, str]] = []
        self.images: list[tuple[str, str]] = []  # (alt, src)
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "div" and a.get("class") == "card":
            self.cards[a["id"].removeprefix("card-")] = float(a["data-value"])
        elif tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag == "td" and self._table:
            self._cell = []
        elif tag == "section":
            self.sections.append(a)
        elif tag == "img":
            self.images.append((a.get("alt", ""), a.get("src", "")))

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None and self._table:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None


def color_pixels(image: np.ndarray, color: str, tolerance: int = 6) -> int:
    rgb = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
    pixels = image[..., :3]
    if pixels.dtype != np.uint8:
        pixels = np.round(pixels * 255)
    return int((np.abs(pixels.astype(int) - rgb).max(axis=-1) <= tolerance).sum())


@pytest.fixture
def sample_db(tmp_path):
    """The view sample, plus: two vocal churners, a spike on a topic with dollar signs (mathtext),
    a second open alert for c6, and lifecycle steps (a1 lost, a3 taken, a2 reconciled)."""
    path = tmp_path / "wh.duckdb"
    wh = fill_sample(path)
    wh.upsert("customer_events", [  # two vocal churners (no SILENT_CHURN alert); c3 is silent
        customer_event("ce-c8-cancel", "c8", ms(2026, 6, 22), "CANCELLATION"),
        customer_event("ce-c9-close", "c9", ms(2026, 6, 23), "ACCOUNT_CLOSED"),
    ])  # fmt: skip
    wh.upsert("churn_alerts", [
        alert("a7", "ISSUE_SPIKE", "product_quality_lead", ms(2026, 6, 29, 6), 0, 0,
              topic="price $5$ plan", affected=4),
        alert("a8", "SILENT_CHURN", "frontline_agent", ms(2026, 6, 27), 300, 100, "c6"),
    ])  # fmt: skip
    ledger = AlertLedger(wh)
    ledger.reconcile()  # a2 -> RECOVERED (c1 bought after it)
    ledger.act("a1", "ACKNOWLEDGED", "bob")
    ledger.act("a1", "LOST", "bob", "went to a competitor")
    ledger.act("a3", "ACKNOWLEDGED", "alice", "calling c6")
    wh.close()
    return path


def expected(db) -> dict:
    """The numbers straight from the warehouse tables (not the views the report reads)."""
    wh = DuckDBWarehouse(db)
    try:
        one = lambda sql: wh.query(sql)[0][0]  # noqa: E731
        return {
            "events": one("SELECT (SELECT count(*) FROM feedback_events)"
                          " + (SELECT count(*) FROM customer_events)"),
            "alerts": one("SELECT count(DISTINCT alert_id) FROM churn_alerts"),
            "acknowledged": one("SELECT count(DISTINCT alert_id) FROM alert_events"
                                " WHERE state = 'ACKNOWLEDGED'"),
            "lost": one("SELECT count(*) FROM alert_events WHERE state = 'LOST'"),
            "saved": one("SELECT count(*) FROM alert_events WHERE state = 'SAVED'"),
            "resolved": one("SELECT count(*) FROM alert_events"
                            " WHERE state NOT IN ('OPEN', 'ACKNOWLEDGED')"),
        }  # fmt: skip
    finally:
        wh.close()


def test_report_shows_the_warehouse_in_chromium(sample_db, tmp_path, capsys):
    before = hashlib.sha256(sample_db.read_bytes()).hexdigest()
    out = tmp_path / "report.html"
    assert main(["report", "--warehouse", f"duckdb://{sample_db}", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out  # the command prints where the report is
    assert hashlib.sha256(sample_db.read_bytes()).hexdigest() == before  # read-only
    text = out.read_text()
    assert "src='http" not in text and "href='http" not in text  # self-contained

    dom = Dom(chromium("--dump-dom", f"file://{out}", tmp_path=tmp_path).stdout)
    # Every plot has data in this sample; then one timeline per customer alert page.
    plots = [alt for alt, _ in dom.images[: len(PLOTS)]]
    assert plots == [title for _, title, _ in PLOTS]
    assert "No data yet" not in text

    # Cards equal the warehouse: 8 alerts; a1 and a3 acknowledged; a1 lost; a2 recovered.
    # Open: a3 (ACKNOWLEDGED), a8 (c6), a4, a6, a7 (recent spikes) = 5; a5 is 29 days old.
    want = expected(sample_db)
    assert (want["alerts"], want["acknowledged"], want["lost"], want["resolved"]) == (8, 2, 1, 2)
    assert dom.cards["events"] == want["events"] == 15
    assert dom.cards["alerts"] == want["alerts"]
    assert dom.cards["acknowledged"] == want["acknowledged"]
    assert dom.cards["lost"] == want["lost"] and dom.cards["saved"] == want["saved"] == 0
    assert dom.cards["open"] == want["alerts"] - want["resolved"] - 1 == 5
    assert dom.cards["open_revenue"] == 800  # c6 once: its largest alert (a3), not a3 + a8
    assert dom.cards["overdue"] == 2  # survey cadence: c2 and c4

    # Funnel: frontline_agent raised a2, a3 (AT_RISK) and a8 (SILENT_CHURN).
    funnel = {(r[0], r[1]): r[2:] for r in dom.tables["funnel"][1:]}
    assert funnel[("frontline_agent", "AT_RISK_SILENT")] == ["2", "1", "0", "0", "0", "1", "1"]
    assert funnel[("account_director", "SILENT_CHURN")] == ["1", "1", "0", "1", "0", "0", "0"]

    # Top open alerts: c6 has two open alerts (a3 800, a8 300) and is listed once.
    rows = dom.tables["open-alerts"][1:]
    subjects = [r[3] for r in rows]
    assert len(subjects) == len(set(subjects)) == 4
    c6 = next(r for r in rows if r[3] == "c6")
    assert (c6[5], c6[6], c6[8]) == ("ACKNOWLEDGED", "800", "2")
    assert "price $5$ plan" in subjects  # the dollar topic renders as text

    # Worklists: one per owner with open alerts, counts equal v_open_alerts'.
    worklists = {s["data-owner"]: int(s["data-open"]) for s in dom.sections
                 if s.get("class") == "worklist"}  # fmt: skip
    assert worklists == {"frontline_agent": 2, "product_quality_lead": 3}
    # frontline_agent's two open alerts are both c6's: one row, taken by alice.
    rows = dom.tables["worklist-frontline_agent"][1:]
    assert [(r[2], r[3], r[4], r[6]) for r in rows] == [("c6", "ACKNOWLEDGED", "alice", "2")]

    # A page per customer alert with its timeline: open ones first, then a1 and a2.
    pages = [s["id"] for s in dom.sections if s.get("class") == "alert-page"]
    assert pages[0] == "alert-a3" and {"alert-a1", "alert-a2"} <= set(pages)
    assert sum(alt.startswith("timeline of") for alt, _ in dom.images) == len(pages)
    assert [r[1:3] for r in dom.tables["steps-a1"][1:]] == [["ACKNOWLEDGED", "bob"],
                                                            ["LOST", "bob"]]  # fmt: skip

    # The silent series is drawn: its colour in the chart and in the rendered page.
    silent_png = dict(dom.images)["Silent vs vocal churn"].split(",", 1)[1]
    chart = mpimg.imread(io.BytesIO(base64.b64decode(silent_png)), format="png")
    assert color_pixels(chart, SILENT_COLOR) > 300
    assert color_pixels(chart, VOCAL_COLOR) > 300
    shot = screenshot(out, tmp_path / "report.png", tmp_path)
    assert shot.shape[:2] == (2400, 1280)
    assert color_pixels(shot, SILENT_COLOR) > 300 and color_pixels(shot, VOCAL_COLOR) > 300


def test_report_on_an_empty_warehouse_says_no_data_yet(tmp_path):
    db = tmp_path / "empty.duckdb"
    DuckDBWarehouse(db).close()
    out = tmp_path / "report.html"
    assert main(["report", "--warehouse", f"duckdb://{db}", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.count("No data yet") == len(PLOTS)
    assert "<img" not in text
    assert "No open alerts" in text
    assert re.search(r"id='card-alerts' data-value='0'", text)


def test_report_of_an_older_warehouse_without_alert_events(tmp_path):
    """Read-only: a file from before the lifecycle gets empty stand-in tables, not a crash."""
    db = tmp_path / "old.duckdb"
    wh = fill_sample(db)  # writes the pipeline's tables only: no alert_events
    assert not wh.query("SELECT 1 FROM duckdb_tables() WHERE table_name = 'alert_events'")
    wh.close()
    out = tmp_path / "report.html"
    assert main(["report", "--warehouse", f"duckdb://{db}", "--out", str(out)]) == 0
    assert "id='card-open' data-value='5'" in out.read_text()


def test_report_on_a_missing_warehouse_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "nope.duckdb"
    assert main(["report", "--warehouse", f"duckdb://{missing}"]) == 2
    assert "no DuckDB warehouse at" in capsys.readouterr().err
    assert not missing.exists()


def test_report_on_a_locked_warehouse_says_so(sample_db, tmp_path):
    with duckdb_locked_by_another_process(sample_db):
        done = subprocess.run(
            [sys.executable, "-m", "churnwatch.cli", "report", "--warehouse",
             f"duckdb://{sample_db}", "--out", str(tmp_path / "r.html")],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 2
    assert "is locked by another process" in done.stderr
    assert not (tmp_path / "r.html").exists()
