"""A reproducible simulated customer base, with ground truth, for demos, tests and evaluation.

Customers follow archetypes chosen so the detector is judged on more than customers drawn
from its own model:

=================  ==========================================================  =========
archetype          behaviour                                                   churns?
=================  ==========================================================  =========
loyal              steady purchases, occasional praise and survey answers      no
pauser             stops buying for 30-75 days, then comes back                no
burster            buys in bursts of several orders, long gaps between         no
complainer         complains now and then, keeps buying                        no
silent_churner     orders shrink and slow, may downgrade or ask about export,  yes, silent
                   surveys go unanswered, then cancels without complaining
vocal_churner      complains (low CSAT, detractor NPS), then cancels           yes, vocal
=================  ==========================================================  =========

Time is in simulated days; ``day_seconds`` maps a day onto event time, so a demo can live
a customer's year in minutes. Noise (malformed payloads, duplicates, late and
out-of-order delivery) is injected at given rates, and every message is labelled so
tests can count exactly what must end up where.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import fastavro

from churnwatch import schemas
from churnwatch.clock import now_ms
from churnwatch.wire import attributes_for, encode_binary, encode_json

ARCHETYPES: dict[str, float] = {
    "loyal": 0.30,
    "pauser": 0.12,
    "burster": 0.10,
    "complainer": 0.10,
    "silent_churner": 0.22,
    "vocal_churner": 0.16,
}
SEGMENTS = {"smb": (0.6, 80.0), "mid_market": (0.3, 600.0), "enterprise": (0.1, 4000.0)}
TEAMS = ("support_emea", "support_amer", "onboarding", "internal_it")
TOPICS = ("billing", "login", "performance", "mobile_app", "reporting", "integrations")
SPIKE_TOPIC = "checkout_bug"
FEEDBACK_CHANNELS = ("SURVEY", "SUPPORT_TICKET", "CHAT", "EMAIL", "REVIEW", "SOCIAL", "CALL")
COMPLAINT_CAUSES = ("PRODUCT_DEFECT", "SERVICE_FAILURE", "PRICE", "INFLATED_EXPECTATIONS", "MISUSE")

#: Labels: what each published message is, so tests can count where it must end up.
VALID, MALFORMED, DUPLICATE = "valid", "malformed", "duplicate"
MALFORMED_KINDS = (
    "truncated_avro",
    "garbage_json",
    "missing_required_json",
    "out_of_range_score",
    "foreign_schema",
    "empty",
)


@dataclass(frozen=True)
class SimConfig:
    customers: int = 300
    days: float = 180.0
    seed: int = 7
    day_seconds: float = 86400.0
    start_ms: int | None = None  # event time of day 0; default: `days` before now
    malformed_rate: float = 0.0
    duplicate_rate: float = 0.0
    late_rate: float = 0.0
    late_delay_days: float = 5.0
    out_of_order_rate: float = 0.0
    json_rate: float = 0.1
    spike: bool = True  # inject one ISSUE_SPIKE-worthy burst of reports on SPIKE_TOPIC
    lookback_days: float = 180.0  # "silent" = no negative feedback this long before churn

    def __post_init__(self) -> None:
        if self.customers <= 0 or self.days <= 0 or self.day_seconds <= 0:
            raise ValueError("customers, days and day_seconds must be positive")
        for name in (
            "malformed_rate",
            "duplicate_rate",
            "late_rate",
            "out_of_order_rate",
            "json_rate",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")


@dataclass
class Truth:
    """Ground truth for one customer."""

    customer_id: str
    archetype: str
    segment: str
    monthly_revenue: float
    signup_ms: int
    churned: bool
    silent: bool
    churn_at_ms: int | None = None
    quiet_since_ms: int | None = None
    # Leaving, as it happened (whether or not a cancellation ever arrives):
    left_at_ms: int | None = None  # last transaction of a customer who left
    at_risk_from_ms: int | None = None  # from here an alert is a fair early warning
    silent_leaver: bool = False  # left, and no negative feedback from lookback before on


@dataclass
class SimMessage:
    source: str  # feedback | customer
    data: bytes
    attributes: dict[str, str]
    publish_at_ms: int
    label: str = VALID
    event_id: str | None = None
    malformed_kind: str | None = None


@dataclass
class Simulation:
    config: SimConfig
    start_ms: int
    messages: list[SimMessage]
    truth: list[Truth]
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # clean records

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for m in self.messages:
            out[f"{m.source}_{m.label}"] = out.get(f"{m.source}_{m.label}", 0) + 1
        out["total"] = len(self.messages)
        return out


def event_record(record: str, **fields: Any) -> dict[str, Any]:
    """One event with every field of its schema (``record``): ``fields`` where given, None
    elsewhere, ``occurred_at`` 0 until :func:`build_simulation` stamps it. Every generator
    builds its records here, so a field added to the ``.avsc`` reaches them all."""
    rec: dict[str, Any] = dict.fromkeys(schemas.load(record).field_names)
    unknown = set(fields) - set(rec)
    if unknown:
        raise ValueError(f"{record} has no field(s) {sorted(unknown)}")
    rec["occurred_at"] = 0
    rec.update(fields)
    return rec


class _Life:
    """Generates one customer's events in simulated days."""

    def __init__(
        self, rng: random.Random, idx: int, archetype: str, cfg: SimConfig, start_ms: int
    ) -> None:
        self.rng, self.cfg, self.archetype, self.start_ms = rng, cfg, archetype, start_ms
        self.customer_id = f"C{idx:06d}"
        seg_names = list(SEGMENTS)
        self.segment = rng.choices(seg_names, weights=[SEGMENTS[s][0] for s in seg_names])[0]
        self.team = rng.choice(TEAMS)
        self.mrr = round(SEGMENTS[self.segment][1] * rng.lognormvariate(0, 0.4), 2)
        self.mean_gap = rng.uniform(4.0, 20.0)  # days between purchases
        self.order_size = self.mrr * rng.uniform(0.3, 1.2)
        self.signup_day = rng.uniform(0.0, cfg.days * 0.25)
        self.customer: list[tuple[float, dict[str, Any]]] = []
        self.feedback: list[tuple[float, dict[str, Any]]] = []

    # --- event builders -------------------------------------------------------------
    def _customer_event(self, day: float, type_: str, **kw: Any) -> None:
        rec = event_record(
            schemas.CUSTOMER_EVENT,
            event_id=f"ce-{uuid.UUID(int=self.rng.getrandbits(128)).hex[:20]}",
            customer_id=self.customer_id,
            type=type_,
            segment=self.segment,
            **kw,
        )
        self.customer.append((day, rec))

    def _feedback(self, day: float, kind: str, **kw: Any) -> None:
        rec = event_record(
            schemas.FEEDBACK_EVENT,
            event_id=f"fe-{uuid.UUID(int=self.rng.getrandbits(128)).hex[:20]}",
            customer_id=self.customer_id,
            channel=kw.pop("channel", None) or self.rng.choice(FEEDBACK_CHANNELS),
            kind=kind,
            segment=self.segment,
            team=self.team,
            **kw,
        )
        self.feedback.append((day, rec))

    def _purchase(self, day: float, scale: float = 1.0) -> None:
        amount = round(max(1.0, self.order_size * scale * self.rng.lognormvariate(0, 0.25)), 2)
        self._customer_event(day, "PURCHASE", amount=amount, currency="EUR")

    def _survey(self, day: float, nps_range: tuple[int, int], csat_range: tuple[int, int]) -> None:
        self._feedback(
            day,
            "SURVEY_RESPONSE",
            channel="SURVEY",
            nps_score=self.rng.randint(*nps_range),
            csat_score=self.rng.randint(*csat_range),
        )

    def _complaint(self, day: float) -> None:
        self._feedback(
            day,
            "COMPLAINT",
            channel=self.rng.choice(("SUPPORT_TICKET", "CHAT", "EMAIL", "CALL")),
            csat_score=self.rng.randint(1, 2),
            nps_score=self.rng.choice((None, self.rng.randint(0, 5))),
            topic=self.rng.choice(TOPICS),
            cause=self.rng.choice(COMPLAINT_CAUSES),
            text="not happy with the service",
        )

    # --- lives --------------------------------------------------------------------
    def _purchases_between(self, start: float, end: float, gap: float, scale=lambda d: 1.0):
        day = start + self.rng.expovariate(1.0 / gap)
        while day < end:
            self._purchase(day, scale(day))
            day += self.rng.expovariate(1.0 / gap)

    def _light_feedback(self, start: float, end: float, promoter: bool = True) -> None:
        day = start + self.rng.uniform(10, 60)
        while day < end:
            if promoter:
                self._survey(day, (7, 10), (4, 5))
            else:
                self._feedback(
                    day, self.rng.choice(("QUESTION", "SUGGESTION")), topic=self.rng.choice(TOPICS)
                )
            day += self.rng.uniform(30, 90)

    def live(self) -> Truth:
        _cfg, rng, start, end = self.cfg, self.rng, self.signup_day, self.cfg.days
        self._customer_event(start, "SIGNUP", monthly_revenue=self.mrr)
        truth = Truth(self.customer_id, self.archetype, self.segment, self.mrr, 0, False, False)
        a = self.archetype
        if a in ("loyal", "complainer"):
            self._purchases_between(start, end, self.mean_gap)
            self._light_feedback(start, end)
            if a == "complainer":
                day = start + rng.uniform(5, 40)
                while day < end:
                    self._complaint(day)
                    day += rng.uniform(20, 60)
        elif a == "pauser":
            pause_at = start + rng.uniform(0.3, 0.6) * (end - start)
            pause_len = rng.uniform(30, 75)
            self._purchases_between(start, pause_at, self.mean_gap)
            self._purchases_between(pause_at + pause_len, end, self.mean_gap)
            self._light_feedback(start, end)
        elif a == "burster":
            day = start + rng.uniform(0, 10)
            while day < end:
                for _ in range(rng.randint(2, 5)):
                    if day < end:
                        self._purchase(day)
                    day += rng.uniform(0.2, 2.0)
                day += rng.uniform(25, 50)
            self._light_feedback(start, end)
        elif a == "silent_churner":
            churn_day = start + rng.uniform(0.5, 0.95) * (end - start) + rng.uniform(0, 30)
            notice = rng.uniform(20, 50)
            quiet = max(start + 5.0, churn_day - notice)
            self._purchases_between(start, quiet, self.mean_gap)
            # slipping away: fewer, smaller orders before going quiet
            self._purchases_between(
                quiet - 2 * self.mean_gap, quiet, self.mean_gap * 1.8, scale=lambda d: 0.5
            )
            self._light_feedback(start, quiet - 10)
            if rng.random() < 0.5:
                self._customer_event(
                    rng.uniform(quiet, churn_day),
                    "DOWNGRADE",
                    monthly_revenue=round(self.mrr * 0.5, 2),
                    reason="fewer seats",
                )
            if rng.random() < 0.3:
                self._feedback(
                    rng.uniform(quiet, churn_day),
                    "QUESTION",
                    topic="data_export",
                    text="how do I export all my data?",
                )
            if churn_day < end:
                self._customer_event(
                    churn_day,
                    rng.choice(("CANCELLATION", "ACCOUNT_CLOSED")),
                    monthly_revenue=0.0,
                    reason=None,
                )
                truth.churned, truth.silent = True, True
                truth.churn_at_ms = self._ms(churn_day)
            truth.quiet_since_ms = self._ms(quiet)
            truth.at_risk_from_ms = self._ms(quiet - 2 * self.mean_gap)
            truth.left_at_ms = self._last_purchase_ms(quiet)
        elif a == "vocal_churner":
            churn_day = start + rng.uniform(0.4, 0.95) * (end - start) + rng.uniform(0, 20)
            self._purchases_between(start, churn_day - 5, self.mean_gap)
            truth.left_at_ms = self._last_purchase_ms(churn_day)
            truth.at_risk_from_ms = truth.left_at_ms
            for _ in range(rng.randint(1, 3)):
                self._complaint(churn_day - rng.uniform(3, 60))
            if rng.random() < 0.6:
                self._survey(churn_day - rng.uniform(1, 30), (0, 5), (1, 2))
            if churn_day < end:
                self._customer_event(
                    churn_day,
                    "CANCELLATION",
                    monthly_revenue=0.0,
                    reason=rng.choice(("too expensive", "bad support", "bugs")),
                )
                truth.churned = True
                truth.churn_at_ms = self._ms(churn_day)
        truth.signup_ms = self._ms(start)
        return truth

    def _ms(self, day: float) -> int:
        return _day_ms(self.cfg, self.start_ms, day)

    def _last_purchase_ms(self, until_day: float) -> int:
        days = [
            d for d, r in self.customer if r["type"] in ("SIGNUP", "PURCHASE") and d <= until_day
        ]
        return self._ms(max(days) if days else self.signup_day)


def _day_ms(cfg: SimConfig, start_ms: int, day: float) -> int:
    return int(start_ms + day * cfg.day_seconds * 1000)


def _malformed(
    rng: random.Random, kind: str, source: str, rec: dict[str, Any]
) -> tuple[bytes, dict]:
    schema = schemas.load(
        schemas.FEEDBACK_EVENT if source == "feedback" else schemas.CUSTOMER_EVENT
    )
    attrs = attributes_for(schema, rec)
    if kind == "truncated_avro":
        data = encode_binary(schema, rec)
        return data[: len(data) // 2], attrs
    if kind == "garbage_json":
        return b'{"event_id": "' + rec["event_id"].encode() + b'", oops', {
            **attrs,
            "googclient_schemaencoding": "JSON",
        }
    if kind == "missing_required_json":
        body = json.loads(encode_json(schema, rec))
        body.pop("customer_id")
        return json.dumps(body).encode(), {**attrs, "googclient_schemaencoding": "JSON"}
    if kind == "out_of_range_score":
        bad = dict(rec)
        if source == "feedback":
            bad["nps_score"] = rng.choice((11, 42))
        else:
            bad["amount"] = -abs(rec.get("amount") or 10.0)
        return encode_binary(schema, bad), attrs
    if kind == "foreign_schema":
        foreign = {
            "type": "record",
            "name": "ForeignOrder",
            "fields": [
                {"name": "sku", "type": "string"},
                {"name": "qty", "type": "int"},
                {"name": "price", "type": "double"},
            ],
        }
        data = encode_binary(foreign, {"sku": "SKU-1", "qty": -3, "price": 9.99})
        return data, {k: v for k, v in attrs.items() if k != "googclient_schemarevisionid"}
    if kind == "empty":
        return b"", attrs
    raise ValueError(kind)


def simulate(cfg: SimConfig, with_messages: bool = True) -> Simulation:
    """Generate customers, their events and the messages that carry them, deterministically."""
    rng = random.Random(cfg.seed)
    start_ms = (
        cfg.start_ms
        if cfg.start_ms is not None
        else now_ms() - int(cfg.days * cfg.day_seconds * 1000)
    )
    names = list(ARCHETYPES)
    truth: list[Truth] = []
    records: list[tuple[str, float, dict[str, Any]]] = []
    for idx in range(cfg.customers):
        archetype = rng.choices(names, weights=[ARCHETYPES[n] for n in names])[0]
        life = _Life(random.Random(rng.getrandbits(64)), idx, archetype, cfg, start_ms)
        truth.append(life.live())
        records += [("customer", d, r) for d, r in life.customer if d < cfg.days]
        records += [("feedback", d, r) for d, r in life.feedback if d < cfg.days]
    if cfg.spike and cfg.customers >= 20:
        spike_day = cfg.days * rng.uniform(0.55, 0.75)
        reporters = rng.sample(truth, k=max(8, cfg.customers // 8))
        for t in reporters:
            day = spike_day + rng.uniform(0, 2.0)
            rec = {
                "event_id": f"fe-{uuid.UUID(int=rng.getrandbits(128)).hex[:20]}",
                "customer_id": t.customer_id,
                "occurred_at": 0,
                "channel": "SUPPORT_TICKET",
                "kind": "COMPLAINT",
                "nps_score": None,
                "csat_score": rng.randint(1, 3),
                "topic": SPIKE_TOPIC,
                "cause": "PRODUCT_DEFECT",
                "text": "checkout fails",
                "segment": t.segment,
                "team": rng.choice(TEAMS),
            }
            records.append(("feedback", day, rec))
    return build_simulation(cfg, start_ms, truth, records, rng, with_messages)


def build_simulation(
    cfg: SimConfig,
    start_ms: int,
    truth: list[Truth],
    records: list[tuple[str, float, dict[str, Any]]],
    rng: random.Random,
    with_messages: bool = True,
) -> Simulation:
    """Stamp event times on ``(source, day, record)`` and wrap each record in a message
    (Avro binary or JSON), with noise injected at the configured rates.

    Every generator (this module's archetypes, ``churnwatch.renewal_world``) ends here, so
    their worlds travel the same wire and are labelled the same way. ``with_messages=False``
    keeps only the clean events and the truth (evaluation needs no wire bytes).
    """
    records = sorted(records, key=lambda r: r[1])
    messages: list[SimMessage] = []
    clean: dict[str, list[dict[str, Any]]] = {"feedback": [], "customer": []}
    for source, day, rec in records:
        rec["occurred_at"] = _day_ms(cfg, start_ms, day)
        clean[source].append(rec)
        if not with_messages:
            continue
        schema = schemas.load(
            schemas.FEEDBACK_EVENT if source == "feedback" else schemas.CUSTOMER_EVENT
        )
        publish_at = rec["occurred_at"]
        if rng.random() < cfg.malformed_rate:
            kind = rng.choice(MALFORMED_KINDS)
            data, attrs = _malformed(rng, kind, source, rec)
            clean[source].pop()
            messages.append(
                SimMessage(source, data, attrs, publish_at, MALFORMED, rec["event_id"], kind)
            )
            continue
        encoding = "JSON" if rng.random() < cfg.json_rate else "BINARY"
        data = encode_json(schema, rec) if encoding == "JSON" else encode_binary(schema, rec)
        attrs = attributes_for(schema, rec, encoding)
        if rng.random() < cfg.late_rate:
            publish_at += int(cfg.late_delay_days * cfg.day_seconds * 1000)
        elif rng.random() < cfg.out_of_order_rate:
            publish_at += int(rng.uniform(0.5, 2.0) * cfg.day_seconds * 1000)
        messages.append(SimMessage(source, data, attrs, publish_at, VALID, rec["event_id"]))
        if rng.random() < cfg.duplicate_rate:
            again = publish_at + int(rng.uniform(0.0, 1.0) * cfg.day_seconds * 1000)
            messages.append(
                SimMessage(source, data, dict(attrs), again, DUPLICATE, rec["event_id"])
            )
    messages.sort(key=lambda m: m.publish_at_ms)
    _truth_from_visible_events(truth, clean, cfg, start_ms)
    return Simulation(cfg, start_ms, messages, truth, clean)


def _truth_from_visible_events(
    truth: list[Truth], clean: dict[str, list[dict[str, Any]]], cfg: SimConfig, start_ms: int
) -> None:
    """Churned / silent as the pipeline can know them: from the events that arrive intact.

    A malformed cancellation never reaches the pipeline, and a silent churner who happened
    to report the spiking checkout bug shortly before leaving did complain: the definition
    (no complaint, NPS <= 6 or CSAT <= 2 within the lookback) is applied to what was sent.
    """
    churn_at: dict[str, int] = {}
    for rec in clean["customer"]:
        if rec["type"] in ("CANCELLATION", "ACCOUNT_CLOSED"):
            cid = rec["customer_id"]
            churn_at[cid] = min(churn_at.get(cid, rec["occurred_at"]), rec["occurred_at"])
    negative: dict[str, list[int]] = {}
    for rec in clean["feedback"]:
        nps, csat = rec.get("nps_score"), rec.get("csat_score")
        if (
            rec["kind"] == "COMPLAINT"
            or (nps is not None and nps <= 6)
            or (csat is not None and csat <= 2)
        ):
            negative.setdefault(rec["customer_id"], []).append(rec["occurred_at"])
    lookback_ms = cfg.lookback_days * cfg.day_seconds * 1000
    end_ms = _day_ms(cfg, start_ms, cfg.days)
    for t in truth:
        at = churn_at.get(t.customer_id)
        t.churned = at is not None
        t.churn_at_ms = at
        said = negative.get(t.customer_id, [])
        t.silent = at is not None and not any(at - lookback_ms <= n <= at for n in said)
        if t.left_at_ms is not None and t.left_at_ms >= end_ms:
            t.left_at_ms = t.at_risk_from_ms = None  # leaves after the data ends: a stayer
        if t.left_at_ms is not None:
            until = at if at is not None else end_ms
            t.silent_leaver = not any(t.left_at_ms - lookback_ms <= n <= until for n in said)


# --- files ------------------------------------------------------------------------
def write_message_log(messages: Iterable[SimMessage], path: str | Path) -> int:
    """Write messages as an Avro container file of LoggedMessage records."""
    schema = schemas.load("LoggedMessage").parsed_plain
    rows = (
        {
            "source": m.source,
            "data": m.data,
            "attributes": m.attributes,
            "message_id": f"log-{index}",  # stable per message, like a Pub/Sub message id
            "publish_at": m.publish_at_ms,
        }
        for index, m in enumerate(messages)
    )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fo:
        fastavro.writer(fo, schema, rows, codec="null")
    with open(path, "rb") as fo:
        return sum(1 for _ in fastavro.reader(fo))


def write_truth(truth: Iterable[Truth], path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fo:
        for t in truth:
            fo.write(json.dumps(asdict(t)) + "\n")


def read_truth(path: str | Path) -> list[Truth]:
    with open(path) as fo:
        return [Truth(**json.loads(line)) for line in fo if line.strip()]
