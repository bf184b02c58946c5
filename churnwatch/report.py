"""Self-contained HTML report from the warehouse views: plots as inline base64 PNGs.

One file, no external assets, so it can be mailed or opened from disk. What a support
lead reads, top to bottom:

* cards: events, alerts raised, open / acknowledged / saved / lost, open revenue at risk;
* plots on the run's customer days (``v_customer_day``: a demo's 0.5 s day is a day):
  NPS/CSAT, silent vs vocal churn, the alert funnel, revenue at risk and alerts by owner,
  spiking topics;
* the funnel table, the top open alerts (one row per customer), each owner's worklist;
* a section per alert with the customer's timeline (lifecycle events, feedback, the alert
  and the BG/NBD probability of being alive over time) so a lead sees *why*.

The warehouse is opened read-only and the views are created as temporary views, so the
report can run beside a reader and never changes the file; a file another process holds
for writing is reported as locked. A panel whose view has no rows shows "No data yet".
Text from the data (topics, owners) is escaped for matplotlib, whose mathtext would
otherwise read ``$5 plan$`` as a formula and crash.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display here; must precede pyplot
import matplotlib.pyplot as plt

from churnwatch.customer import Customer, event_order, fold
from churnwatch.model.packaged import load_model
from churnwatch.model.risk import RiskModel
from churnwatch.warehouse.duckdb_store import DuckDBWarehouse, open_existing
from churnwatch.warehouse.views import SURVEY_CADENCE_DAYS, create_views

TOP_ALERTS = 15
#: Alerts that get a timeline section: the top open ones, then the latest a person touched.
TIMELINES = 12
WORKLIST_ROWS = 10
DAY_SECONDS = 86400.0
#: Series colours; not in matplotlib's default cycle, so tests can find them in pixels.
SILENT_COLOR = "#e6194b"
VOCAL_COLOR = "#4363d8"
TRANSACTIONS = ("SIGNUP", "PURCHASE", "RENEWAL")


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    png: bytes | None  # None: no data yet
    note: str = ""


@dataclass(frozen=True)
class CustomerDay:
    """The report's day: seconds per customer day and day 0, to turn times into day numbers."""

    seconds: float
    first_day: datetime | None
    recorded_in: str

    def number(self, moment: datetime) -> float:
        if self.first_day is None:
            return 0.0
        return (moment - self.first_day).total_seconds() / self.seconds

    @property
    def label(self) -> str:
        if self.seconds == DAY_SECONDS:
            return "customer day"
        return f"customer day (1 day = {self.seconds:g} s of event time)"


def mathtext_safe(text: object) -> str:
    """Data text for a matplotlib label: ``$`` escaped so mathtext leaves it alone."""
    return str(text).replace("$", r"\$")


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _nps_csat(wh: DuckDBWarehouse, day: CustomerDay) -> bytes | None:
    rows = wh.query("SELECT day, nps, csat_mean FROM v_nps_trend")
    if not rows:
        return None
    days = [day.number(r[0]) for r in rows]
    fig, ax = plt.subplots(figsize=(10, 3.4))
    ax.plot(days, [r[1] for r in rows], color="#1f77b4", marker=".", label="NPS")
    ax.set_ylabel("NPS (-100..100)")
    ax.set_xlabel(day.label)
    ax.axhline(0, color="#999", linewidth=0.8)
    ax2 = ax.twinx()
    ax2.plot(days, [r[2] for r in rows], color="#ff7f0e", marker=".", label="CSAT mean")
    ax2.set_ylabel("CSAT (1-5)")
    ax2.set_ylim(1, 5)
    lines = ax.get_lines()[:1] + ax2.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="lower left")
    return _png(fig)


def _silent_vocal(wh: DuckDBWarehouse, day: CustomerDay) -> bytes | None:
    """Silent and vocal churn per customer day, side by side, with running totals.

    Side by side (not stacked) so neither series hides the other on a day with both;
    the running totals on the right axis keep a thin series visible over 150 days.
    """
    rows = wh.query(
        "SELECT day, silent_churned, vocal_churned FROM v_silent_churn_share "
        "WHERE churned_customers > 0 ORDER BY day"
    )
    if not rows:
        return None
    days = [day.number(r[0]) for r in rows]
    silent = [r[1] for r in rows]
    vocal = [r[2] for r in rows]
    width = 0.42
    fig, ax = plt.subplots(figsize=(10, 3.6))
    ax.bar(
        [d - width / 2 for d in days],
        silent,
        width,
        color=SILENT_COLOR,
        label=f"silent ({sum(silent)})",
    )
    ax.bar(
        [d + width / 2 for d in days],
        vocal,
        width,
        color=VOCAL_COLOR,
        label=f"vocal ({sum(vocal)})",
    )
    ax.set_ylabel("churned customers per day")
    ax.set_xlabel(day.label)
    totals = ax.twinx()
    running_s, running_v, acc_s, acc_v = [], [], 0, 0
    for s, v in zip(silent, vocal, strict=True):
        acc_s, acc_v = acc_s + s, acc_v + v
        running_s.append(acc_s)
        running_v.append(acc_v)
    totals.step(
        days,
        running_s,
        where="post",
        color=SILENT_COLOR,
        linewidth=1.6,
        label="silent, running total",
    )
    totals.step(
        days,
        running_v,
        where="post",
        color=VOCAL_COLOR,
        linewidth=1.6,
        linestyle="--",
        label="vocal, running total",
    )
    totals.set_ylabel("running total")
    totals.set_ylim(0, max(acc_s, acc_v, 1) * 1.1)
    handles = ax.get_legend_handles_labels()[0] + totals.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="upper left", fontsize="small")
    return _png(fig)


def _barh(labels: list[str], values: list[float], xlabel: str, color: str) -> bytes:
    labels = [mathtext_safe(label) for label in labels]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(labels) + 1.2))
    ax.barh(labels[::-1], values[::-1], color=color)
    ax.set_xlabel(xlabel)
    for y, v in enumerate(values[::-1]):
        ax.text(v, y, f" {v:,.0f}", va="center")
    return _png(fig)


FUNNEL_STEPS = ("raised", "acknowledged", "saved", "lost", "recovered", "not_a_risk")


def _funnel_totals(wh: DuckDBWarehouse) -> dict[str, int]:
    row = wh.query(
        "SELECT "
        + ", ".join(f"coalesce(sum({s}), 0)" for s in FUNNEL_STEPS)
        + " FROM v_alert_funnel"
    )[0]
    return dict(zip(FUNNEL_STEPS, (int(v) for v in row), strict=True))


def _funnel(wh: DuckDBWarehouse, _day: CustomerDay) -> bytes | None:
    totals = _funnel_totals(wh)
    if not totals["raised"]:
        return None
    labels = ["raised", "acknowledged", "saved", "lost", "recovered", "not a risk"]
    colors = ["#7f7f7f", "#17becf", "#2ca02c", "#8c564b", "#bcbd22", "#9edae5"]
    return _bars(labels, list(totals.values()), colors)


def _bars(labels: list[str], values: list[int], colors: list[str]) -> bytes:
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.bar(labels, values, color=colors)
    for x, v in enumerate(values):
        ax.text(x, v, f"{v:,}", ha="center", va="bottom")
    ax.set_ylabel("alerts")
    return _png(fig)


def _revenue_at_risk(wh: DuckDBWarehouse, _day: CustomerDay) -> bytes | None:
    rows = wh.query(
        "SELECT owner, open_revenue_at_risk FROM v_revenue_at_risk_by_owner WHERE open_alerts > 0",
    )
    if not rows:
        return None
    return _barh([r[0] for r in rows], [r[1] for r in rows], "open revenue at risk", "#9467bd")


def _spiking_topics(wh: DuckDBWarehouse, _day: CustomerDay) -> bytes | None:
    rows = wh.query("SELECT topic, spikes FROM v_top_spiking_topics LIMIT 10")
    if not rows:
        return None
    return _barh([r[0] for r in rows], [r[1] for r in rows], "ISSUE_SPIKE alerts", "#e377c2")


def _alerts_by_owner(wh: DuckDBWarehouse, _day: CustomerDay) -> bytes | None:
    rows = wh.query(
        "SELECT owner, alert_type, count(*) FROM current_alerts GROUP BY 1, 2 ORDER BY 1, 2"
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
        ax.barh([mathtext_safe(o) for o in owners], values, left=left, label=mathtext_safe(t))
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlabel("alerts")
    ax.legend(loc="lower right", fontsize="small")
    return _png(fig)


#: key, title, builder: the plots the report shows, in order.
PLOTS: tuple[tuple[str, str, Callable[[DuckDBWarehouse, CustomerDay], bytes | None]], ...] = (
    ("silent_vocal", "Silent vs vocal churn", _silent_vocal),
    ("funnel", "Alert funnel", _funnel),
    ("nps_csat", "NPS and CSAT over time", _nps_csat),
    ("revenue_at_risk", "Revenue at risk by owner (open alerts)", _revenue_at_risk),
    ("spiking_topics", "Top spiking topics", _spiking_topics),
    ("alerts_by_owner", "Alerts by owner", _alerts_by_owner),
)

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{margin-bottom:0}.sub{color:#666;margin-top:4px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}.card{border:1px solid #ddd;
border-radius:8px;padding:10px 14px;min-width:120px}.card b{font-size:1.5em;display:block}
figure{margin:16px 0;border:1px solid #eee;border-radius:8px;padding:8px}
figure img{max-width:100%}.empty{color:#888;background:#f6f6f6;padding:40px;text-align:center}
table{border-collapse:collapse;font-size:0.9em;margin-bottom:12px}td,th{border-bottom:1px solid
#eee;padding:4px 8px;text-align:left}td.num{text-align:right}
section.alert-page{border-top:2px solid #ddd;margin-top:24px}.state{font-weight:bold}
"""


def customer_day(wh: DuckDBWarehouse, day_seconds: float | None = None) -> CustomerDay:
    """The warehouse's customer day (``v_customer_day``), or ``day_seconds`` if given."""
    seconds, recorded_in, first = wh.query(
        "SELECT day_seconds, recorded_in, first_day FROM v_customer_day"
    )[0]
    if day_seconds is not None and day_seconds != seconds:
        return CustomerDay(float(day_seconds), first, "--day-seconds")
    return CustomerDay(float(seconds), first, recorded_in)


def build_panels(wh: DuckDBWarehouse, day: CustomerDay) -> list[Panel]:
    return [Panel(key, title, build(wh, day)) for key, title, build in PLOTS]


def risk_curve(
    rows: list[dict], until_ms: int, day_ms: float, model: RiskModel, points: int = 150
) -> list[tuple[int, float]]:
    """``(time ms, risk)`` of one customer from the first transaction to ``until_ms``.

    The customer's stored events (customer and feedback rows, times in ms) are folded in
    event order into the same :class:`~churnwatch.customer.Customer` the detector keeps,
    and the packaged risk model scores it at evenly spaced times: the risk the stream would
    have seen had it read every stored event on time. Stops at a churn event.
    """
    ordered = sorted(rows, key=event_order)
    starts = [r["occurred_at"] for r in ordered if r.get("type") in TRANSACTIONS]
    if not starts or until_ms <= min(starts):
        return []
    first = min(starts)
    customer, i, out = Customer(), 0, []
    for k in range(points + 1):
        t = int(first + (until_ms - first) * k / points)
        while i < len(ordered) and ordered[i]["occurred_at"] <= t:
            fold(customer, ordered[i], day_ms)
            i += 1
        if customer.churned_ms is not None:
            break
        out.append((t, float(model.risk(customer, t, day_ms))))
    return out


def _event_rows(wh: DuckDBWarehouse, table: str, customer_id: str) -> list[dict]:
    """A customer's rows of one event table as dicts, timestamps as epoch ms."""
    names = [r[0] for r in wh.query(f"DESCRIBE {table}")]
    out = []
    for row in wh.query(f"SELECT * FROM {table} WHERE customer_id = ?", [customer_id]):
        record = dict(zip(names, row, strict=True))
        for key, value in record.items():
            if isinstance(value, datetime):
                record[key] = int(value.replace(tzinfo=UTC).timestamp() * 1000)
        out.append(record)
    return out


def _timeline(wh: DuckDBWarehouse, alert: dict, day: CustomerDay, as_of: datetime) -> bytes:
    """Events, feedback and alerts of one customer above, risk over time below (customer days)."""
    customer = alert["customer_id"]
    events = wh.query(
        "SELECT occurred_at, type FROM customer_events WHERE customer_id = ? ORDER BY 1",
        [customer],
    )
    feedback = wh.query(
        "SELECT occurred_at, kind, nps_score, topic FROM feedback_events WHERE customer_id = ?"
        " ORDER BY 1",
        [customer],
    )
    alerts = wh.query(
        "SELECT detected_at, alert_type, risk, alert_id FROM current_alerts"
        " WHERE customer_id = ? ORDER BY 1",
        [customer],
    )
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 3.6), sharex=True, gridspec_kw={"height_ratios": [1.1, 1]}
    )
    lanes = {"lifecycle": 2, "feedback": 1, "alerts": 0}
    styles = {
        "SIGNUP": ("#2ca02c", "^"),
        "PURCHASE": ("#2ca02c", "o"),
        "RENEWAL": ("#2ca02c", "s"),
        "DOWNGRADE": ("#ff7f0e", "v"),
        "CANCELLATION": ("#d62728", "X"),
        "ACCOUNT_CLOSED": ("#d62728", "X"),
    }
    for kind, (color, marker) in styles.items():
        xs = [day.number(t) for t, k in events if k == kind]
        if xs:
            top.scatter(
                xs,
                [lanes["lifecycle"]] * len(xs),
                color=color,
                marker=marker,
                s=46,
                label=kind.lower(),
                zorder=3,
            )
    complaints = [day.number(t) for t, k, _, _ in feedback if k == "COMPLAINT"]
    other = [day.number(t) for t, k, _, _ in feedback if k != "COMPLAINT"]
    if complaints:
        top.scatter(
            complaints,
            [lanes["feedback"]] * len(complaints),
            color="#d62728",
            marker="D",
            s=36,
            label="complaint",
            zorder=3,
        )
    if other:
        top.scatter(
            other,
            [lanes["feedback"]] * len(other),
            color="#1f77b4",
            marker="D",
            s=30,
            label="other feedback",
            zorder=3,
        )
    for t, _, nps, _ in feedback:
        if nps is not None:
            top.annotate(
                f"NPS {nps}",
                (day.number(t), lanes["feedback"]),
                fontsize=7,
                xytext=(3, 5),
                textcoords="offset points",
            )
    for t, kind, _, alert_id in alerts:
        x = day.number(t)
        this = alert_id == alert["alert_id"]
        for ax in (top, bottom):
            ax.axvline(
                x, color="#9467bd", linewidth=2 if this else 0.8, linestyle="-" if this else ":"
            )
        top.annotate(
            mathtext_safe(kind.lower()),
            (x, lanes["alerts"]),
            fontsize=7,
            xytext=(3, 0),
            textcoords="offset points",
            color="#9467bd",
        )
    top.set_yticks(list(lanes.values()), list(lanes))
    top.set_ylim(-0.6, 2.6)
    top.legend(loc="upper left", fontsize="x-small", ncol=4)
    stored = _event_rows(wh, "customer_events", customer)
    stored += _event_rows(wh, "feedback_events", customer)
    until = int(as_of.replace(tzinfo=UTC).timestamp() * 1000)
    curve = risk_curve(stored, until, day.seconds * 1000, load_model())
    if curve:
        when = [datetime.fromtimestamp(t / 1000, UTC).replace(tzinfo=None) for t, _ in curve]
        bottom.plot(
            [day.number(w) for w in when],
            [r for _, r in curve],
            color="#555",
            label="risk from every stored event (packaged risk model)",
        )
    points = [(day.number(t), r) for t, _, r, _ in alerts if r is not None]
    if points:
        bottom.scatter(
            [p[0] for p in points],
            [p[1] for p in points],
            color="#9467bd",
            zorder=3,
            label="risk the detector computed for an alert",
        )
    bottom.set_ylim(0, 1.05)
    bottom.set_ylabel("risk of leaving")
    bottom.set_xlabel(day.label)
    bottom.legend(loc="lower left", fontsize="x-small")
    return _png(fig)


def _cell(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _table(table_id: str, header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    """Cells are HTML already (escaped by the caller); numbers right-aligned by class."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(rows_cells) + "</tr>\n" for rows_cells in rows)
    return f"<table id='{table_id}'><tr>{head}</tr>\n{body}</table>"


def _td(value: object, num: bool = False) -> str:
    return f"<td class='num'>{value}</td>" if num else f"<td>{value}</td>"


def _alert_link(alert_id: str, subject: str, pages: set[str]) -> str:
    if alert_id in pages:
        return f"<a href='#alert-{_cell(alert_id)}'>{_cell(subject)}</a>"
    return _cell(subject)


def _cards(wh: DuckDBWarehouse) -> dict[str, tuple[str, float]]:
    """key -> (label, value): the numbers at the top, each one query on the views."""
    events, alerts, open_, acked, saved, lost, revenue, overdue, active = wh.query(
        "SELECT (SELECT count(*) FROM feedback_events) + (SELECT count(*) FROM customer_events),"
        " (SELECT count(*) FROM current_alerts),"
        " (SELECT count(*) FROM v_open_alerts),"
        " (SELECT count(acknowledged_at) FROM current_alerts),"
        " (SELECT count(*) FILTER (WHERE state = 'SAVED') FROM current_alerts),"
        " (SELECT count(*) FILTER (WHERE state = 'LOST') FROM current_alerts),"
        " (SELECT coalesce(sum(open_revenue_at_risk), 0) FROM v_revenue_at_risk_by_owner),"
        " (SELECT count(*) FILTER (WHERE overdue) FROM v_survey_cadence),"
        " (SELECT count(*) FROM v_survey_cadence)"
    )[0]
    return {
        "events": ("events stored", events),
        "alerts": ("alerts raised", alerts),
        "open": ("open alerts (OPEN or ACKNOWLEDGED)", open_),
        "acknowledged": ("acknowledged by a person", acked),
        "saved": ("saved", saved),
        "lost": ("lost", lost),
        "open_revenue": ("open revenue at risk (each customer once)", revenue),
        "overdue": (
            f"of {active:,} active customers without a survey answer in "
            f"{SURVEY_CADENCE_DAYS} days (see v_survey_cadence)",
            overdue,
        ),
    }


OPEN_COLUMNS = (
    "alert_id",
    "alert_type",
    "severity",
    "owner",
    "customer_id",
    "topic",
    "detected_at",
    "revenue_at_risk",
    "above_authority",
    "state",
    "acknowledged_by",
)


def top_open_alerts(
    wh: DuckDBWarehouse, limit: int = TOP_ALERTS, owner: str | None = None
) -> list[dict]:
    """The open alerts with the most revenue at risk, one row per customer.

    A customer with several open alerts (an AT_RISK and a SILENT_CHURN, say) is listed
    once, with their highest-revenue alert and how many others are open; topic and data
    alerts are their own rows. ``owner``: only that owner's alerts (a worklist).
    """
    where = "WHERE owner = ? " if owner else ""
    rows = wh.query(
        f"SELECT {', '.join(OPEN_COLUMNS)}, count(*) OVER w AS alerts_for_subject "
        f"FROM v_open_alerts {where}"
        "WINDOW w AS (PARTITION BY coalesce(customer_id, alert_id)) "
        "QUALIFY row_number() OVER (PARTITION BY coalesce(customer_id, alert_id) "
        "ORDER BY revenue_at_risk DESC, detected_at DESC, alert_id) = 1 "
        f"ORDER BY revenue_at_risk DESC, alert_id LIMIT {int(limit)}",
        [owner] if owner else [],
    )
    return [dict(zip((*OPEN_COLUMNS, "alerts_for_subject"), r, strict=True)) for r in rows]


def _page_alerts(wh: DuckDBWarehouse, top: list[dict]) -> list[dict]:
    """Alerts that get a timeline: customer alerts of the top list, then recent steps."""
    chosen = [a["alert_id"] for a in top if a["customer_id"]][:TIMELINES]
    if len(chosen) < TIMELINES:
        recent = wh.query(
            "SELECT alert_id FROM current_alerts WHERE customer_id IS NOT NULL AND steps > 0"
            f" ORDER BY state_at DESC, alert_id LIMIT {TIMELINES}"
        )
        chosen += [r[0] for r in recent if r[0] not in chosen][: TIMELINES - len(chosen)]
    if not chosen:
        return []
    marks = ", ".join("?" for _ in chosen)
    columns = (
        "alert_id",
        "alert_type",
        "severity",
        "owner",
        "customer_id",
        "detected_at",
        "revenue_at_risk",
        "authority_limit",
        "risk",
        "state",
    )
    rows = wh.query(
        f"SELECT {', '.join(columns)} FROM current_alerts WHERE alert_id IN ({marks})", chosen
    )
    by_id = {r[0]: dict(zip(columns, r, strict=True)) for r in rows}
    return [by_id[i] for i in chosen if i in by_id]


def _alert_page(wh: DuckDBWarehouse, alert: dict, day: CustomerDay, as_of: datetime) -> str:
    reasons = wh.query(
        "SELECT reason_codes FROM churn_alerts WHERE alert_id = ? ORDER BY processed_at DESC"
        " LIMIT 1",
        [alert["alert_id"]],
    )
    steps = wh.query(
        "SELECT seq, state, actor, source, occurred_at, note FROM alert_events"
        " WHERE alert_id = ? ORDER BY seq",
        [alert["alert_id"]],
    )
    png = base64.b64encode(_timeline(wh, alert, day, as_of)).decode()
    p = alert["risk"]
    parts = [
        f"<section class='alert-page' id='alert-{_cell(alert['alert_id'])}' "
        f"data-customer='{_cell(alert['customer_id'])}'>",
        f"<h3>{_cell(alert['alert_type'])} &middot; {_cell(alert['customer_id'])} &middot; "
        f"<span class='state'>{_cell(alert['state'])}</span></h3>",
        f"<p>owner {_cell(alert['owner'])} &middot; severity {_cell(alert['severity'])} "
        f"&middot; revenue at risk {alert['revenue_at_risk']:,.0f} (authority "
        f"{alert['authority_limit']:,.0f}) &middot; detected on customer day "
        f"{day.number(alert['detected_at']):.0f}"
        + (f" &middot; risk {p:.2f}" if p is not None else "")
        + f" &middot; why: {_cell(', '.join(reasons[0][0]) if reasons else '')}</p>",
        f"<img alt='timeline of {_cell(alert['customer_id'])}' src='data:image/png;base64,{png}'>",
    ]
    if steps:
        parts.append(
            _table(
                f"steps-{_cell(alert['alert_id'])}",
                ("step", "state", "who", "source", "when", "note"),
                (
                    (
                        _td(seq),
                        _td(_cell(state)),
                        _td(_cell(actor)),
                        _td(_cell(source)),
                        _td(_cell(f"{when:%Y-%m-%d %H:%M:%S}")),
                        _td(_cell(note)),
                    )
                    for seq, state, actor, source, when, note in steps
                ),
            )
        )
    else:
        parts.append("<p>Nobody has acted on this alert yet.</p>")
    parts.append("</section>")
    return "\n".join(parts)


def render_html(wh: DuckDBWarehouse, source: str, day_seconds: float | None = None) -> str:
    """The whole report as one HTML string; the views must exist (see :func:`write_report`).

    ``day_seconds`` overrides the warehouse's customer day (``v_customer_day``) for the
    day axes; by default the report uses what the pipeline recorded.
    """
    day = customer_day(wh, day_seconds)
    panels = build_panels(wh, day)
    as_of = wh.query("SELECT as_of FROM v_as_of")[0][0]
    cards = _cards(wh)
    top = top_open_alerts(wh)
    pages = _page_alerts(wh, top)
    page_ids = {a["alert_id"] for a in pages}
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<title>Churnwatch report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Churnwatch report</h1>",
        f"<p class='sub'>warehouse {esc(source)} &middot; data as of "
        f"{as_of:%Y-%m-%d %H:%M:%S} UTC &middot; 1 customer day = {day.seconds:g} s "
        f"({esc(day.recorded_in)}) &middot; generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC</p>",
        "<div class='cards'>",
    ]
    for key, (label, value) in cards.items():
        parts.append(
            f"<div class='card' id='card-{key}' data-value='{value:g}'><b>{value:,.0f}</b>"
            f"{esc(label)}</div>"
        )
    parts.append("</div>")
    for p in panels:
        parts.append(f"<figure class='plot' data-plot='{p.key}'><h2>{esc(p.title)}</h2>")
        if p.png is None:
            parts.append("<div class='empty'>No data yet</div>")
        else:
            data = base64.b64encode(p.png).decode()
            parts.append(f"<img alt='{esc(p.title)}' src='data:image/png;base64,{data}'>")
        parts.append("</figure>")

    parts.append("<h2>Alert funnel by owner and type</h2>")
    funnel = wh.query("SELECT * FROM v_alert_funnel")
    if not funnel:
        parts.append("<div class='empty'>No alerts yet</div>")
    else:
        parts.append(
            _table(
                "funnel",
                (
                    "owner",
                    "type",
                    "raised",
                    "acknowledged",
                    "saved",
                    "lost",
                    "not a risk",
                    "recovered",
                    "still open",
                ),
                (
                    [_td(_cell(r[0])), _td(_cell(r[1]))] + [_td(f"{v:,}", True) for v in r[2:]]
                    for r in funnel
                ),
            )
        )

    parts.append("<h2>Top open alerts</h2>")
    if not top:
        parts.append("<div class='empty'>No open alerts</div>")
    else:
        parts.append(
            _table(
                "open-alerts",
                (
                    "type",
                    "severity",
                    "owner",
                    "customer / topic",
                    "detected (day)",
                    "state",
                    "revenue at risk",
                    "above authority",
                    "open alerts for them",
                ),
                (
                    (
                        _td(_cell(a["alert_type"])),
                        _td(_cell(a["severity"])),
                        _td(_cell(a["owner"])),
                        _td(
                            _alert_link(
                                a["alert_id"], a["customer_id"] or a["topic"] or "", page_ids
                            )
                        ),
                        _td(f"{day.number(a['detected_at']):.0f}", True),
                        _td(_cell(a["state"])),
                        _td(f"{a['revenue_at_risk']:,.0f}", True),
                        _td("yes" if a["above_authority"] else ""),
                        _td(a["alerts_for_subject"], True),
                    )
                    for a in top
                ),
            )
        )

    parts.append("<h2>Worklists</h2>")
    owners = wh.query(
        "SELECT owner, open_alerts, open_revenue_at_risk FROM v_revenue_at_risk_by_owner"
        " WHERE open_alerts > 0"
    )
    if not owners:
        parts.append("<div class='empty'>Nothing open</div>")
    for owner, count, revenue in owners:
        rows = top_open_alerts(wh, WORKLIST_ROWS, owner)
        parts.append(
            f"<section class='worklist' data-owner='{_cell(owner)}' data-open='{count}'>"
            f"<h3>{_cell(owner)}: {count:,} open alerts, {revenue:,.0f} at risk</h3>"
        )
        parts.append(
            _table(
                f"worklist-{_cell(owner)}",
                (
                    "alert",
                    "type",
                    "customer / topic",
                    "state",
                    "taken by",
                    "revenue at risk",
                    "open alerts for them",
                ),
                (
                    (
                        _td(_cell(a["alert_id"][:12])),
                        _td(_cell(a["alert_type"])),
                        _td(
                            _alert_link(
                                a["alert_id"], a["customer_id"] or a["topic"] or "", page_ids
                            )
                        ),
                        _td(_cell(a["state"])),
                        _td(_cell(a["acknowledged_by"])),
                        _td(f"{a['revenue_at_risk']:,.0f}", True),
                        _td(a["alerts_for_subject"], True),
                    )
                    for a in rows
                ),
            )
        )
        listed = sum(a["alerts_for_subject"] for a in rows)
        if count > listed:
            parts.append(
                f"<p>...and {count - listed:,} more alerts: churnwatch alerts list "
                f"--owner {_cell(owner)}</p>"
            )
        parts.append("</section>")

    parts.append("<h2>Why: alert timelines</h2>")
    if not pages:
        parts.append("<div class='empty'>No customer alerts yet</div>")
    for alert in pages:
        parts.append(_alert_page(wh, alert, day, as_of))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    warehouse_path: str | Path, out: str | Path, day_seconds: float | None = None
) -> Path:
    """Render the report for one DuckDB file (opened read-only) and write it.

    Raises :class:`~churnwatch.warehouse.duckdb_store.WarehouseUnavailable` (a
    ``RuntimeError``) when the file is missing or another process holds it for writing.
    """
    wh = open_existing(warehouse_path, read_only=True)
    try:
        create_views(wh, temporary=True)
        text = render_html(wh, str(warehouse_path), day_seconds)
    finally:
        wh.close()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out
