"""A second, independently written customer base: the world the detector is NOT tuned on.

``churnwatch.simulate`` draws customers from six archetypes, and silent churners there
drop out after slowing down, close to how BG/NBD thinks. A detector tuned on it can learn
its quirks. This generator tells a different story on purpose:

* **Purchases are a renewal process** with customer-specific regularity: gamma gaps whose
  shape ranges from bursty (< 1) through Poisson-like (~1) to metronome (10-20), with a
  yearly season and holiday pauses of 2-10 weeks that every kind of customer takes.
* **Leaving is a hazard in tenure**, not a coin flipped after each purchase: higher in
  the first three months, scaled by a per-customer frailty.
* **Silent leavers fade** (gaps stretch, orders shrink over 1-3 months) **or stop at
  once**; afterwards they cancel 20-120 days later, or never (they just vanish). Some
  downgrade or ask about exporting data; their survey answers stop, gradually.
* **Vocal leavers** complain before they go; **noisy complainers stay** anyway; stayers
  answer surveys, ask questions, praise.

The output goes through ``simulate.build_simulation``, so it is the same wire format,
ground truth (``Truth``) and noise as the first generator's.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from typing import Any

from churnwatch import schemas
from churnwatch.clock import now_ms
from churnwatch.simulate import (
    COMPLAINT_CAUSES,
    FEEDBACK_CHANNELS,
    SEGMENTS,
    TEAMS,
    TOPICS,
    SimConfig,
    Simulation,
    Truth,
    build_simulation,
    event_record,
)

KINDS = {"bursty": 0.25, "steady": 0.45, "metronome": 0.30}


@dataclass(frozen=True)
class RenewalConfig:
    """Knobs of the renewal world (rates per customer)."""

    monthly_hazard: float = 0.012  # leaving, per month of tenure, before frailty
    silent_share: float = 0.7  # of leavers
    kinds: tuple[tuple[str, float], ...] = tuple(KINDS.items())
    holiday_rate_per_year: float = 0.8
    noisy_complainer_share: float = 0.12  # of stayers
    cancel_never_share: float = 0.35  # silent leavers who never cancel

    def __post_init__(self) -> None:
        if not 0 < self.monthly_hazard < 1 or not 0 <= self.silent_share <= 1:
            raise ValueError("monthly_hazard within (0, 1), silent_share within [0, 1]")


REGULAR = RenewalConfig(kinds=(("bursty", 0.1), ("steady", 0.3), ("metronome", 0.6)))


class _Customer:
    def __init__(
        self, rng: random.Random, idx: int, cfg: SimConfig, world: RenewalConfig, start_ms: int
    ) -> None:
        self.rng, self.cfg, self.world, self._start_ms = rng, cfg, world, start_ms
        self.id = f"R{idx:06d}"
        names = list(SEGMENTS)
        self.segment = rng.choices(names, weights=[SEGMENTS[n][0] for n in names])[0]
        self.team = rng.choice(TEAMS)
        self.mrr = round(SEGMENTS[self.segment][1] * rng.lognormvariate(0, 0.5), 2)
        kinds = [k for k, _ in world.kinds]
        self.kind = rng.choices(kinds, weights=[w for _, w in world.kinds])[0]
        self.shape = {
            "bursty": rng.uniform(0.35, 0.8),
            "steady": rng.uniform(1.5, 4.0),
            "metronome": rng.uniform(10.0, 20.0),
        }[self.kind]
        self.mean_gap = min(60.0, max(3.0, rng.lognormvariate(math.log(12.0), 0.6)))
        self.order = self.mrr * rng.uniform(0.2, 0.9)
        self.season_phase = rng.random()
        self.season_amp = rng.choice((0.0, 0.2, 0.5))
        self.signup = rng.uniform(-0.3, 0.6) * cfg.days  # some were customers before day 0
        self.customer: list[tuple[float, dict[str, Any]]] = []
        self.feedback: list[tuple[float, dict[str, Any]]] = []

    # --- events -------------------------------------------------------------------
    def _id(self, prefix: str) -> str:
        return f"{prefix}-{uuid.UUID(int=self.rng.getrandbits(128)).hex[:20]}"

    def _life_event(self, day: float, type_: str, **kw: Any) -> None:
        rec = event_record(
            schemas.CUSTOMER_EVENT,
            event_id=self._id("rce"),
            customer_id=self.id,
            type=type_,
            segment=self.segment,
            **kw,
        )
        self.customer.append((day, rec))

    def _say(self, day: float, kind: str, **kw: Any) -> None:
        rec = event_record(
            schemas.FEEDBACK_EVENT,
            event_id=self._id("rfe"),
            customer_id=self.id,
            channel=kw.pop("channel", None) or self.rng.choice(FEEDBACK_CHANNELS),
            kind=kind,
            segment=self.segment,
            team=self.team,
            **kw,
        )
        self.feedback.append((day, rec))

    def _complain(self, day: float) -> None:
        self._say(
            day,
            "COMPLAINT",
            channel=self.rng.choice(("SUPPORT_TICKET", "EMAIL", "CALL", "CHAT")),
            csat_score=self.rng.randint(1, 2),
            topic=self.rng.choice(TOPICS),
            cause=self.rng.choice(COMPLAINT_CAUSES),
            text="this keeps failing",
        )

    # --- processes ----------------------------------------------------------------
    def _holidays(self, start: float, end: float) -> list[tuple[float, float]]:
        spans, day = [], start
        rate = self.world.holiday_rate_per_year / 365.0
        while True:
            day += self.rng.expovariate(rate)
            if day >= end:
                return spans
            length = self.rng.uniform(14, 70)
            spans.append((day, day + length))
            day += length

    def _gap(self, day: float, stretch: float) -> float:
        season = 1.0 + self.season_amp * math.sin(2 * math.pi * (day / 365.0 + self.season_phase))
        mean = self.mean_gap * stretch / max(season, 0.2)
        return self.rng.gammavariate(self.shape, mean / self.shape)

    def _purchases(self, start: float, stop: float, fade_from: float | None) -> None:
        holidays = self._holidays(start, stop)
        day = start + self.rng.uniform(0, self.mean_gap)
        while day < stop:
            if any(a <= day < b for a, b in holidays):
                day = next(b for a, b in holidays if a <= day < b) + self.rng.uniform(0, 3)
                continue
            progress = 0.0
            if fade_from is not None and day > fade_from:
                progress = min(1.0, (day - fade_from) / max(stop - fade_from, 1.0))
            scale = (1 - 0.5 * progress) * self.rng.lognormvariate(0, 0.3)
            amount = round(max(1.0, self.order * scale), 2)
            self._life_event(day, "PURCHASE", amount=amount, currency="EUR")
            day += max(0.2, self._gap(day, 1.0 + 2.0 * progress))

    def _surveys(self, start: float, end: float, fade_from: float | None, nps=(7, 10)) -> None:
        day = start + self.rng.uniform(20, 90)
        answer = self.rng.uniform(0.4, 0.9)
        while day < end:
            p = answer if fade_from is None or day < fade_from else answer * 0.2
            if self.rng.random() < p:
                self._say(
                    day,
                    "SURVEY_RESPONSE",
                    channel="SURVEY",
                    nps_score=self.rng.randint(*nps),
                    csat_score=self.rng.randint(3, 5),
                )
            elif self.rng.random() < 0.3:
                self._say(day, self.rng.choice(("QUESTION", "PRAISE", "SUGGESTION")))
            day += self.rng.uniform(45, 120)

    def _leaving_day(self) -> float:
        """Tenure hazard by thinning: 1.8x in the first 90 days, x frailty."""
        frailty = self.rng.lognormvariate(0, 0.7)
        base = self.world.monthly_hazard / 30.44 * frailty
        top = base * 1.8
        tenure = 0.0
        while True:
            tenure += self.rng.expovariate(top)
            rate = base * (1.8 if tenure < 90 else 1.0)
            if self.rng.random() < rate / top:
                return self.signup + tenure
            if self.signup + tenure > self.cfg.days + 200:
                return math.inf

    def live(self) -> Truth:
        rng, end = self.rng, self.cfg.days + 150  # lives go on past the data's end
        truth = Truth(self.id, f"renewal_{self.kind}", self.segment, self.mrr, 0, False, False)
        self._life_event(self.signup, "SIGNUP", monthly_revenue=self.mrr)
        leave = self._leaving_day()
        if leave == math.inf or leave > end:
            self._purchases(self.signup, end, None)
            self._surveys(self.signup, end, None)
            if rng.random() < self.world.noisy_complainer_share:
                day = self.signup + rng.uniform(10, 60)
                while day < end:
                    self._complain(day)
                    day += rng.uniform(30, 100)
            truth.signup_ms = self._ms(self.signup)
            return truth
        silent = rng.random() < self.world.silent_share
        fades = silent and rng.random() < 0.55
        fade_from = leave - rng.uniform(30, 90) if fades else None
        self._purchases(self.signup, leave, fade_from)
        self._surveys(self.signup, leave + 60, fade_from if fades else leave)
        bought = [d for d, r in self.customer if r["type"] in ("SIGNUP", "PURCHASE")]
        last = max(bought)
        truth.left_at_ms = self._ms(last)
        truth.at_risk_from_ms = self._ms(min(fade_from if fades else last, last))
        cancel_at: float | None
        if silent:
            if rng.random() < 0.25:
                self._life_event(
                    last + rng.uniform(0, 40),
                    "DOWNGRADE",
                    monthly_revenue=round(self.mrr * rng.uniform(0.3, 0.7), 2),
                    reason="fewer seats",
                )
            if rng.random() < 0.15:
                self._say(
                    last + rng.uniform(0, 40),
                    "QUESTION",
                    topic="data_export",
                    text="can we get a full export of our account?",
                )
            never = rng.random() < self.world.cancel_never_share
            cancel_at = None if never else last + rng.uniform(20, 120)
        else:
            for _ in range(rng.randint(1, 3)):
                self._complain(last - rng.uniform(0, 60))
            cancel_at = last + rng.uniform(0, 30) if rng.random() < 0.8 else None
        if cancel_at is not None:
            self._life_event(
                cancel_at,
                rng.choice(("CANCELLATION", "ACCOUNT_CLOSED")),
                monthly_revenue=0.0,
            )
        truth.signup_ms = self._ms(self.signup)
        return truth

    def _ms(self, day: float) -> int:
        return int(self._start_ms + day * self.cfg.day_seconds * 1000)


def simulate_renewal(
    cfg: SimConfig, world: RenewalConfig = RenewalConfig(), with_messages: bool = True
) -> Simulation:
    """Generate the renewal world deterministically from ``cfg.seed``."""
    rng = random.Random(f"renewal-{cfg.seed}")
    start_ms = (
        cfg.start_ms
        if cfg.start_ms is not None
        else now_ms() - int(cfg.days * cfg.day_seconds * 1000)
    )
    truth: list[Truth] = []
    records: list[tuple[str, float, dict[str, Any]]] = []
    for idx in range(cfg.customers):
        life = _Customer(random.Random(rng.getrandbits(64)), idx, cfg, world, start_ms)
        truth.append(life.live())
        for source, events in (("customer", life.customer), ("feedback", life.feedback)):
            records += [(source, d, r) for d, r in events if 0 <= d < cfg.days]
    return build_simulation(cfg, start_ms, truth, records, rng, with_messages)
