"""Self-contained HTML report from the warehouse views: plots as inline base64 PNGs.

One file, no external assets, so it can be mailed or opened from disk. Every panel reads
one view from :mod:`churnwatch.warehouse.views`; a panel whose view has no rows shows a
"no data yet" box instead of a plot, so a fresh warehouse gives a report, not a crash.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display here; must precede pyplot
import matplotlib.pyplot as plt

from churnwatch.warehouse.duckdb_store import DuckDBWarehouse
from churnwatch.warehouse.views import SURVEY_CADENCE_DAYS, create_views, nps_trend_sql

TOP_ALERTS = 15
DAY_SECONDS = 86400.0


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    png: bytes | None  # None: no data yet
    note: str = ""


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _rows(wh: DuckDBWarehouse, sql: str) -> list[tuple]:
    return wh.query(sql)


def _nps_csat(wh: DuckDBWarehouse, day_seconds: float = DAY_SECONDS) -> bytes | None:
    if day_seconds == DAY_SECONDS:
        rows = _rows(wh, "SELECT day, nps, csat_mean FROM v_nps_trend")
        xlabel = "UTC day"
    else:  # compressed simulated time (demo): one bucket per simulated day, numbered
        bucket = f"time_bucket(INTERVAL {int(day_seconds * 1000)} MILLISECONDS, occurred_at)"
        rows = _rows(wh, f"SELECT day, nps, csat_mean FROM ({nps_trend_sql(bucket)})")
        if rows:
            first = rows[0][0]
            rows = [((r[0] - first).total_seconds() / day_seconds, *r[1:]) for r in rows]
        xlabel = f"simulated day (1 day = {day_seconds:g} s of event time)"
    if not rows:
        return None
    days = [r[0] for r in rows]
    fig, ax = plt.subplots(figsize=(10, 3.4))
    ax.plot(days, [r[1] for r in rows], color="#1f77b4", marker=".", label="NPS")
    ax.set_ylabel("NPS (-100..100)")
    ax.set_xlabel(xlabel)
    ax.axhline(0, color="#999", linewidth=0.8)
    ax2 = ax.twinx()
    ax2.plot(days, [r[2] for r in rows], color="#ff7f0e", marker=".", label="CSAT mean")
    ax2.set_ylabel("CSAT (1-5)")
    ax2.set_ylim(1, 5)
    lines = ax.get_lines()[:1] + ax2.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="lower left")
    if day_seconds == DAY_SECONDS:
        fig.autofmt_xdate()
    return _png(fig)


def _silent_vocal(wh: DuckDBWarehouse) -> bytes | None:
    rows = _rows(
        wh,
        "SELECT day, silent_churned, vocal_churned FROM v_silent_churn_share "
        "WHERE churned_customers > 0",
    )
    if not rows:
        return None
    days = [r[0] for r in rows]
    silent = [r[1] for r in rows]
    vocal = [r[2] for r in rows]
    fig, ax = plt.subplots(figsize=(10, 3.4))
    ax.bar(days, silent, color="#d62728", label=f"silent ({sum(silent)})")
    ax.bar(days, vocal, bottom=silent, color="#7f7f7f", label=f"vocal ({sum(vocal)})")
    ax.set_ylabel("churned customers per day")
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    return _png(fig)


def _barh(labels: list[str], values: list[float], xlabel: str, color: str) -> bytes:
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(labels) + 1.2))
    ax.barh(labels[::-1], values[::-1], color=color)
    ax.set_xlabel(xlabel)
    for y, v in enumerate(values[::-1]):
        ax.text(v, y, f" {v:,.0f}", va="center")
    return _png(fig)


def _revenue_at_risk(wh: DuckDBWarehouse) -> bytes | None:
    rows = _rows(
        wh,
        "SELECT owner, open_revenue_at_risk FROM v_revenue_at_risk_by_owner WHERE open_alerts > 0",
    )
    if not rows:
        return None
    return _barh([r[0] for r in rows], [r[1] for r in rows], "open revenue at risk", "#9467bd")


def _spiking_topics(wh: DuckDBWarehouse) -> bytes | None:
    rows = _rows(wh, "SELECT topic, spikes FROM v_top_spiking_topics LIMIT 10")
    if not rows:
        return None
    return _barh([r[0] for r in rows], [r[1] for r in rows], "ISSUE_SPIKE alerts", "#e377c2")


def _alerts_by_owner(wh: DuckDBWarehouse) -> bytes | None:
    rows = _rows(
        wh, "SELECT owner, alert_type, count(*) FROM churn_alerts GROUP BY 1, 2 ORDER BY 1, 2"
    )
    if not rows:
        return None
    owners = sorted({r[0] for r in rows})
    types = sorted({r[1] for r in rows})
    counts = {(r[0], r[1]): r[2] for r in rows}
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(owners) + 1.6))
    left = [0] * len(owners)
    for t in types:
        values = [counts.get((o, t), 0) for o in owners]
        ax.barh(owners, values, left=left, label=t)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlabel("alerts")
    ax.legend(loc="lower right", fontsize="small")
    return _png(fig)


#: key, title, builder: the plots the report shows, in order.
PLOTS: tuple[tuple[str, str, Callable[[DuckDBWarehouse], bytes | None]], ...] = (
    ("nps_csat", "NPS and CSAT over time", _nps_csat),
    ("silent_vocal", "Silent vs vocal churn", _silent_vocal),
    ("revenue_at_risk", "Revenue at risk by owner (open alerts)", _revenue_at_risk),
    ("spiking_topics", "Top spiking topics", _spiking_topics),
    ("alerts_by_owner", "Alerts by owner", _alerts_by_owner),
)

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{margin-bottom:0}.sub{color:#666;margin-top:4px}
.cards{display:flex;gap:16px;margin:16px 0}.card{border:1px solid #ddd;border-radius:8px;
padding:12px 16px;min-width:150px}.card b{font-size:1.6em;display:block}
figure{margin:16px 0;border:1px solid #eee;border-radius:8px;padding:8px}
figure img{max-width:100%}.empty{color:#888;background:#f6f6f6;padding:40px;text-align:center}
table{border-collapse:collapse;font-size:0.9em}td,th{border-bottom:1px solid #eee;
padding:4px 8px;text-align:left}td.num{text-align:right}
"""


def build_panels(wh: DuckDBWarehouse, day_seconds: float = DAY_SECONDS) -> list[Panel]:
    panels = []
    for key, title, build in PLOTS:
        png = _nps_csat(wh, day_seconds) if key == "nps_csat" else build(wh)
        panels.append(Panel(key, title, png))
    return panels


def render_html(wh: DuckDBWarehouse, source: str, day_seconds: float = DAY_SECONDS) -> str:
    """The whole report as one HTML string (views are created first).

    ``day_seconds`` below 86400 is for simulated, compressed time (the demo): the NPS/CSAT
    plot then buckets by simulated day instead of UTC day.
    """
    create_views(wh)
    panels = build_panels(wh, day_seconds)
    as_of = wh.query("SELECT as_of FROM v_as_of")[0][0]
    counts = dict(
        zip(
            ("events", "alerts", "open", "overdue", "active"),
            wh.query(
                "SELECT (SELECT count(*) FROM feedback_events)"
                " + (SELECT count(*) FROM customer_events),"
                " (SELECT count(*) FROM churn_alerts), (SELECT count(*) FROM v_open_alerts),"
                " (SELECT count(*) FILTER (WHERE overdue) FROM v_survey_cadence),"
                " (SELECT count(*) FROM v_survey_cadence)"
            )[0],
            strict=True,
        )
    )
    top = wh.query(
        "SELECT alert_type, severity, owner, coalesce(customer_id, topic, ''), detected_at,"
        f" revenue_at_risk, above_authority FROM v_open_alerts LIMIT {TOP_ALERTS}"
    )
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<title>Churnwatch report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Churnwatch report</h1>",
        f"<p class='sub'>warehouse {esc(source)} &middot; data as of "
        f"{as_of:%Y-%m-%d %H:%M:%S} UTC &middot; generated "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC</p>",
        "<div class='cards'>",
        f"<div class='card'><b>{counts['events']:,}</b>events stored</div>",
        f"<div class='card'><b>{counts['alerts']:,}</b>alerts raised</div>",
        f"<div class='card'><b>{counts['open']:,}</b>open alerts</div>",
        f"<div class='card' id='survey-cadence'><b>{counts['overdue']:,}</b>of "
        f"{counts['active']:,} active customers without a survey answer in "
        f"{SURVEY_CADENCE_DAYS} days (see v_survey_cadence)</div>",
        "</div>",
    ]
    for p in panels:
        parts.append(f"<figure class='plot' data-plot='{p.key}'><h2>{esc(p.title)}</h2>")
        if p.png is None:
            parts.append("<div class='empty'>No data yet</div>")
        else:
            data = base64.b64encode(p.png).decode()
            parts.append(f"<img alt='{esc(p.title)}' src='data:image/png;base64,{data}'>")
        parts.append("</figure>")
    parts.append("<h2>Top open alerts</h2>")
    if not top:
        parts.append("<div class='empty'>No open alerts</div>")
    else:
        parts.append(
            "<table id='open-alerts'><tr><th>type</th><th>severity</th><th>owner</th>"
            "<th>customer / topic</th><th>detected</th><th>revenue at risk</th>"
            "<th>above authority</th></tr>"
        )
        for t, sev, owner, subject, detected, revenue, above in top:
            parts.append(
                f"<tr><td>{esc(t)}</td><td>{esc(sev)}</td><td>{esc(owner)}</td>"
                f"<td>{esc(subject)}</td><td>{esc(str(detected))}</td>"
                f"<td class='num'>{revenue:,.0f}</td><td>{'yes' if above else ''}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    warehouse_path: str | Path, out: str | Path, day_seconds: float = DAY_SECONDS
) -> Path:
    """Render the report for one DuckDB file and write it; returns the output path."""
    wh = DuckDBWarehouse.shared(warehouse_path)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(wh, str(warehouse_path), day_seconds))
    return out
