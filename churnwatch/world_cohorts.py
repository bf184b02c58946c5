"""A B2B subscription business with cohorts and contracts: a world the detector was not tuned on.

The story
---------
Companies buy a plan, billed by the month or by the year, and on top of it buy usage-driven
add-ons. About 30% of the customer base already existed before day 0 (their history before
day 0 is not seen); the rest join in monthly cohorts that grow over the period, fewer joining
in quiet months. Each account has:

* a **plan**: ``RENEWAL`` events every month or every year (``amount`` is the invoice,
  ``monthly_revenue`` the recurring revenue after it); annual renewals sometimes expand;
* **add-ons**: ``PURCHASE`` events whose rate follows company size (small companies buy a
  few times a year, enterprises several times a week), office hours and working days, and
  the industry's calendar (schools are quiet in August, public bodies in December, retail
  peaks before Christmas);
* **budget freezes**: now and then add-ons stop for three to nine weeks and come back, while
  the subscription keeps renewing.

Leaving is decided at contract boundaries and by shocks:

* *champion loss* (the person who brought the tool in leaves the company): add-on usage
  falls to almost nothing within two weeks;
* *competitor trial*: add-on purchases shrink over one to three months;
* *contract end*: no visible shock; monthly customers stop add-ons days before a renewal and
  let it lapse (more often in their first months), annual customers stop add-ons months
  before the renewal date.

A shock does not always end in leaving: a new champion is found, the trial is dropped, and
usage recovers. A monthly leaver lets the next ``RENEWAL`` lapse; an annual leaver does not
renew. Either may send ``CANCELLATION`` / ``ACCOUNT_CLOSED`` days to weeks later, or never.

Signals before leaving, each with moderate probability, and all of them also present (less
often) among customers who stay: a ``DOWNGRADE``; a ``QUESTION`` about exporting data or
cancelling; survey answers that stop; an NPS that drops but stays passive (7). Vocal leavers
(about a third) complain with low CSAT before they go; noisy complainers complain and stay;
happy customers answer quarterly surveys (NPS 7-10) and send praise, suggestions and
questions. Around 12-20% of customers leave per year, roughly two thirds of them silently.

``truth.left_at_ms`` is the event time of a leaver's last purchase or renewal;
``truth.at_risk_from_ms`` is when their behaviour started to change (the shock, the decision
to stop add-ons, the first complaint), or ``left_at_ms`` when they stop at once. Archetypes:
``steady``, ``seasonal``, ``freezer``, ``shaken_stayer``, ``noisy_complainer`` (stay) and
``[vocal_]{champion_loss,competitor,contract_end}_leaver``.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from churnwatch import schemas
from churnwatch.clock import now_ms
from churnwatch.simulate import (
    COMPLAINT_CAUSES,
    SEGMENTS,
    TEAMS,
    TOPICS,
    SimConfig,
    Simulation,
    Truth,
    build_simulation,
    event_record,
)

MONTH = 365.25 / 12
YEAR = 365.25
PRE_EXISTING_SHARE = 0.30
ANNUAL_SHARE = {"smb": 0.2, "mid_market": 0.55, "enterprise": 0.9}
ANNUAL_DISCOUNT = 0.85  # an annual invoice is 12 months at this fraction of the price
#: median days between add-on purchases, by company size
ADDON_GAP_DAYS = {"smb": 60.0, "mid_market": 14.0, "enterprise": 3.5}
#: industry: (share, {calendar month: add-on activity factor})
INDUSTRIES: dict[str, tuple[float, dict[int, float]]] = {
    "software": (0.25, {12: 0.6}),
    "retail": (0.15, {1: 0.6, 11: 1.4, 12: 1.5}),
    "manufacturing": (0.18, {8: 0.25, 12: 0.4}),
    "education": (0.12, {7: 0.4, 8: 0.15, 12: 0.3}),
    "public_sector": (0.10, {8: 0.6, 12: 0.2}),
    "finance": (0.12, {12: 0.5}),
    "healthcare": (0.08, {}),
}
CURRENCIES = {"EUR": 0.6, "USD": 0.3, "GBP": 0.1}
# Shocks per customer-year, and how often they end in leaving.
CHAMPION_RATE, COMPETITOR_RATE, FREEZE_RATE = 0.07, 0.09, 0.25
LEAVE_AFTER_CHAMPION = {"smb": 0.7, "mid_market": 0.6, "enterprise": 0.4}
LEAVE_AFTER_COMPETITOR = 0.65
# Leaving at a contract boundary without a shock.
MONTHLY_LAPSE_EARLY, MONTHLY_LAPSE, EARLY_TENURE = 0.025, 0.006, 120.0
ANNUAL_LAPSE_FIRST, ANNUAL_LAPSE = 0.10, 0.06
VOCAL_SHARE, NOISY_COMPLAINER_SHARE = 0.30, 0.08
# Noise among everyone, per customer-year.
NOISE_DOWNGRADE_RATE, NOISE_EXPORT_RATE, BACKGROUND_COMPLAINT_RATE = 0.05, 0.06, 0.08
SURVEY_EVERY = 91.0  # quarterly NPS campaign
EXPORT_QUESTIONS = (
    ("data_export", "how do we export all our data?"),
    ("data_export", "can we get a full export of our account before the contract ends?"),
    ("billing", "what is the notice period to cancel our plan?"),
    ("billing", "how do we cancel the subscription?"),
)
NOISE_EXPORT_QUESTIONS = (
    ("data_export", "how do I export this report to CSV?"),
    ("data_export", "can the monthly export run automatically?"),
)
LEAVE_REASONS = ("too expensive", "poor support", "missing features", "moved to a competitor")
QUIET_REASONS = (None, None, "not renewing", "budget", "company restructuring")
_AVG_WEEK_HOUR = ((5 + 2 * 0.08) / 7) * ((11 + 13 * 0.04) / 24)  # mean of the calendar factors


@lru_cache(maxsize=8192)
def _calendar_month(epoch_day: int) -> int:
    return (date(1970, 1, 1) + timedelta(days=epoch_day)).month


@dataclass
class _Dip:
    """Add-on activity falls to ``floor`` over ``ramp`` days from ``start``, stays there
    until ``until`` and recovers over ``recover`` days (``until`` = inf: never)."""

    start: float
    ramp: float
    floor: float
    until: float = math.inf
    recover: float = 1.0

    def factor(self, day: float) -> float:
        if day < self.start:
            return 1.0
        if day < self.start + self.ramp:
            return 1.0 - (1.0 - self.floor) * (day - self.start) / self.ramp
        if day < self.until:
            return self.floor
        if day < self.until + self.recover:
            return self.floor + (1.0 - self.floor) * (day - self.until) / self.recover
        return 1.0


@dataclass
class _Departure:
    cause: str  # champion_loss | competitor | contract_end
    decision: float  # day behaviour starts to change
    lapse: float  # contract boundary that is not renewed


@dataclass
class _Account:
    """One company's life, generated in simulated days (negative days: unseen history)."""

    rng: random.Random
    idx: int
    cfg: SimConfig
    start_ms: int
    signup: float
    survey_offset: float
    customer: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    feedback: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = self.rng
        self.customer_id = f"K{self.idx:06d}"
        segs = list(SEGMENTS)
        self.segment = rng.choices(segs, weights=[SEGMENTS[s][0] for s in segs])[0]
        inds = list(INDUSTRIES)
        self.industry = rng.choices(inds, weights=[INDUSTRIES[i][0] for i in inds])[0]
        self.season = INDUSTRIES[self.industry][1]
        self.currency = rng.choices(list(CURRENCIES), weights=list(CURRENCIES.values()))[0]
        self.team = rng.choice(TEAMS)
        self.annual = rng.random() < ANNUAL_SHARE[self.segment]
        self.period = YEAR if self.annual else MONTH
        self.mrr = round(SEGMENTS[self.segment][1] * rng.lognormvariate(0, 0.5), 2)
        self.addon_gap = ADDON_GAP_DAYS[self.segment] * rng.lognormvariate(0, 0.6)
        self.addon_size = self.mrr * rng.uniform(0.08, 0.5)
        self.vocal = rng.random() < VOCAL_SHARE
        self.noisy = rng.random() < NOISY_COMPLAINER_SHARE
        self.responder = rng.random() < 0.55
        self.answer_p = rng.uniform(0.45, 0.9) if self.responder else rng.uniform(0.0, 0.12)
        self.fatigue_at = rng.uniform(0, self.cfg.days) if rng.random() < 0.12 else math.inf
        self.nps_base = rng.choices((7, 8, 9, 10), weights=(0.15, 0.3, 0.35, 0.2))[0]
        self.chatter_gap = rng.uniform(45, 220)  # days between praise/suggestion/question
        self.epoch0 = self.start_ms / 86_400_000
        self.horizon = self.cfg.days
        self.history_from = max(self.signup, -self.period - 5)
        self.boundaries = self._boundaries()
        self.dips: list[_Dip] = []
        self.shaken = False
        self.departure: _Departure | None = None

    # --- calendar ---------------------------------------------------------------------
    def _activity(self, day: float) -> float:
        e = self.epoch0 + day
        n = math.floor(e)
        hour = (e - n) * 24
        f = 0.08 if (n + 3) % 7 >= 5 else 1.0  # 1970-01-01 was a Thursday
        f *= 1.0 if 8 <= hour < 19 else 0.04
        f *= self.season.get(_calendar_month(n), 1.0)
        for dip in self.dips:
            f *= dip.factor(day)
        return f

    def _workday(self, day: float) -> float:
        """The same or next working day, at an office hour."""
        n = math.floor(self.epoch0 + day)
        while (n + 3) % 7 >= 5:
            n += 1
        return n + self.rng.uniform(8.5, 18.0) / 24 - self.epoch0

    def _boundaries(self) -> list[float]:
        k = max(1, math.ceil((self.history_from - self.signup) / self.period))
        out = []
        while self.signup + k * self.period < self.horizon + 2 * YEAR:
            out.append(self.signup + k * self.period)
            k += 1
        return out

    def _next_boundary(self, day: float) -> float:
        return next(b for b in self.boundaries if b >= day)

    # --- record builders --------------------------------------------------------------
    def _eid(self, prefix: str) -> str:
        return f"{prefix}-{uuid.UUID(int=self.rng.getrandbits(128)).hex[:20]}"

    def _event(self, day: float, type_: str, **kw: Any) -> None:
        rec = event_record(
            schemas.CUSTOMER_EVENT,
            event_id=self._eid("ce"),
            customer_id=self.customer_id,
            type=type_,
            segment=self.segment,
            **kw,
        )
        self.customer.append((day, rec))

    def _say(self, day: float, kind: str, channel: str, **kw: Any) -> None:
        rec = event_record(
            schemas.FEEDBACK_EVENT,
            event_id=self._eid("fe"),
            customer_id=self.customer_id,
            channel=channel,
            kind=kind,
            segment=self.segment,
            team=self.team,
            **kw,
        )
        self.feedback.append((day, rec))

    def _complaint(self, day: float, csat: tuple[int, int] = (1, 2), nps: bool = True) -> None:
        rng = self.rng
        cause = rng.choice(COMPLAINT_CAUSES)
        self._say(
            self._workday(day),
            "COMPLAINT",
            rng.choice(("SUPPORT_TICKET", "CHAT", "EMAIL", "CALL")),
            csat_score=rng.randint(*csat),
            nps_score=rng.randint(0, 5) if nps and rng.random() < 0.3 else None,
            topic=rng.choice(TOPICS),
            cause=cause,
            text=rng.choice(
                (
                    "this keeps breaking and nobody gets back to us",
                    "the invoice is higher than what we agreed",
                    "support took a week to answer",
                    "the integration you promised still does not work",
                )
            ),
        )

    # --- fate -------------------------------------------------------------------------
    def _poisson_times(self, rate_per_year: float, start: float, end: float) -> list[float]:
        out, day = [], start
        while True:
            day += self.rng.expovariate(rate_per_year / YEAR)
            if day >= end:
                return out
            out.append(day)

    def decide(self) -> None:
        """Draw shocks, freezes and contract-boundary decisions; keep the first departure."""
        rng = self.rng
        hazard_from = max(self.signup + 20.0, 0.0)
        for start in self._poisson_times(FREEZE_RATE, max(self.history_from, -60.0), self.horizon):
            until = start + rng.uniform(21, 63)
            self.dips.append(_Dip(start, 1.0, 0.02, until, 3.0))
        shocks = [
            (d, "champion_loss")
            for d in self._poisson_times(CHAMPION_RATE, hazard_from, self.horizon)
        ]
        shocks += [
            (d, "competitor")
            for d in self._poisson_times(COMPETITOR_RATE, hazard_from, self.horizon)
        ]
        candidates: list[tuple[_Departure, _Dip]] = []
        recovered: list[tuple[float, _Dip]] = []
        for day, cause in sorted(shocks):
            if cause == "champion_loss":
                ramp, floor = rng.uniform(5, 14), rng.uniform(0.0, 0.06)
                p_leave = LEAVE_AFTER_CHAMPION[self.segment]
            else:
                ramp, floor = rng.uniform(30, 90), rng.uniform(0.05, 0.2)
                p_leave = LEAVE_AFTER_COMPETITOR
            if not self.noisy and rng.random() < p_leave:
                lapse = self._next_boundary(day + ramp)
                candidates.append((_Departure(cause, day, lapse), _Dip(day, ramp, floor)))
                break
            hold = day + ramp + rng.uniform(15, 60)
            recovered.append((day, _Dip(day, ramp, max(floor, 0.1), hold, rng.uniform(14, 40))))
        if not self.noisy:
            for b in self.boundaries:
                if b < hazard_from:
                    continue
                if self.annual:
                    first = b - self.signup < YEAR + 1
                    p = ANNUAL_LAPSE_FIRST if first else ANNUAL_LAPSE
                else:
                    p = MONTHLY_LAPSE_EARLY if b - self.signup < EARLY_TENURE else MONTHLY_LAPSE
                if rng.random() < p:
                    if self.annual:
                        decision = max(b - rng.uniform(60, 150), hazard_from)
                        dip = _Dip(decision, rng.uniform(3, 20), 0.0)
                    else:
                        # decided some days before the renewal: add-ons stop at once
                        decision = max(b - rng.uniform(3, 25), hazard_from)
                        dip = _Dip(decision, 0.01, 0.0)
                    candidates.append((_Departure("contract_end", decision, b), dip))
                    break
        if candidates:
            departure, dip = min(candidates, key=lambda c: c[0].decision)
            if departure.decision < self.horizon:
                self.departure = departure
                self.dips.append(dip)
        cut = self.departure.decision if self.departure else math.inf
        for day, dip in recovered:
            if day < cut:
                self.dips.append(dip)
                self.shaken = self.shaken or 0 <= day < self.horizon

    # --- life -------------------------------------------------------------------------
    def live(self) -> Truth:
        self.decide()
        dep = self.departure
        end = min(dep.lapse, self.horizon) if dep else self.horizon
        at_risk = dep.decision if dep else math.inf
        self._billing(end, at_risk)
        self._addons(max(self.history_from, -120.0), end)
        self._surveys(end, at_risk)
        self._chatter(end, at_risk)
        self._noise(end, at_risk)
        first_complaint = self._leaver_signals() if dep else math.inf
        truth = Truth(
            self.customer_id,
            self._archetype(),
            self.segment,
            self.mrr,
            self._ms(self.signup),
            churned=False,
            silent=False,
        )
        if dep:
            bought = [
                d
                for d, r in self.customer
                if r["type"] in ("SIGNUP", "PURCHASE", "RENEWAL") and d <= dep.lapse
            ]
            left = max(bought) if bought else self.signup
            risk = min(dep.decision, left, first_complaint)
            truth.left_at_ms, truth.at_risk_from_ms = self._ms(left), self._ms(risk)
            truth.quiet_since_ms = self._ms(left)
        return truth

    def _archetype(self) -> str:
        if self.departure:
            return f"{'vocal_' if self.vocal else ''}{self.departure.cause}_leaver"
        if self.noisy:
            return "noisy_complainer"
        if self.shaken:
            return "shaken_stayer"
        if any(0 <= d.start < self.horizon for d in self.dips):
            return "freezer"
        if any(f <= 0.5 for f in self.season.values()):
            return "seasonal"
        return "steady"

    def _billing(self, end: float, at_risk: float) -> None:
        """SIGNUP, RENEWALs up to (not including) a lapse, and DOWNGRADEs, in time order."""
        rng = self.rng
        downgrades = self._poisson_times(NOISE_DOWNGRADE_RATE, max(self.signup, 0.0), end)
        if self.departure and rng.random() < 0.35:
            lo = max(at_risk, self.signup)
            downgrades.append(rng.uniform(lo, max(lo, end - 1.0)))
        points = [(b, "RENEWAL") for b in self.boundaries if self.history_from <= b < end]
        points += [(d, "DOWNGRADE") for d in downgrades]
        if self.signup >= 0:
            self._invoice(self.signup, "SIGNUP")
        for day, kind in sorted(points):
            if kind == "DOWNGRADE":
                self.mrr = round(self.mrr * rng.uniform(0.5, 0.85), 2)
                self._event(
                    self._workday(day),
                    "DOWNGRADE",
                    monthly_revenue=self.mrr,
                    reason=rng.choice(("fewer seats", "smaller plan", None)),
                )
                continue
            p_expand = 0.25 if self.annual else 0.02
            if day < at_risk and rng.random() < p_expand:
                self.mrr = round(self.mrr * rng.uniform(1.1, 1.4), 2)
            self._invoice(day + rng.uniform(0.05, 0.15), "RENEWAL")

    def _invoice(self, day: float, type_: str) -> None:
        amount = self.mrr * 12 * ANNUAL_DISCOUNT if self.annual else self.mrr
        self._event(
            day,
            type_,
            amount=round(amount, 2),
            currency=self.currency,
            monthly_revenue=self.mrr,
        )

    def _addons(self, start: float, end: float) -> None:
        rng = self.rng
        rate = 1.0 / (self.addon_gap * _AVG_WEEK_HOUR)
        bound = rate * 1.5
        day = max(start, self.signup)
        while True:
            day += rng.expovariate(bound)
            if day >= end:
                return
            if rng.random() * bound < rate * self._activity(day):
                amount = max(5.0, self.addon_size * rng.lognormvariate(0, 0.4))
                self._event(day, "PURCHASE", amount=round(amount, 2), currency=self.currency)

    def _surveys(self, end: float, at_risk: float) -> None:
        """Quarterly NPS campaigns: answers stop, or turn passive, once a leaver is at risk."""
        rng = self.rng
        stops = self.departure is not None and rng.random() < 0.6
        campaign = self.survey_offset - SURVEY_EVERY * 2
        while campaign < end:
            campaign += SURVEY_EVERY
            if campaign < max(self.signup + 14, 0.0) or campaign >= end:
                continue
            p = self.answer_p * (0.3 if campaign >= self.fatigue_at else 1.0)
            risky = campaign >= at_risk
            if risky and stops:
                p *= 0.1
            if rng.random() >= p:
                continue
            day = self._workday(campaign + rng.expovariate(1 / 3.0))
            if self.noisy:
                nps, csat = rng.randint(4, 8), rng.randint(2, 4)
            elif risky and self.vocal and rng.random() < 0.6:
                nps, csat = rng.randint(0, 5), rng.randint(1, 2)
            elif risky:
                nps, csat = rng.choice((7, 7, 7, 8)), rng.randint(3, 4)
            else:
                nps = min(10, max(7, self.nps_base + rng.choice((-1, 0, 0, 1))))
                csat = rng.choice((3, 4, 4, 5, 5))
            self._say(day, "SURVEY_RESPONSE", "SURVEY", nps_score=nps, csat_score=csat)

    def _chatter(self, end: float, at_risk: float) -> None:
        """Praise, suggestions and questions; leavers go quieter once at risk."""
        rng = self.rng
        day = max(self.signup, 0.0)
        while True:
            gap = self.chatter_gap * (3.0 if day >= at_risk else 1.0)
            day += rng.expovariate(1.0 / gap)
            if day >= end:
                return
            kind = rng.choices(("PRAISE", "SUGGESTION", "QUESTION"), weights=(0.35, 0.3, 0.35))[0]
            topic = rng.choice(TOPICS)
            if kind == "PRAISE":
                channel = rng.choice(("REVIEW", "SOCIAL", "EMAIL", "CHAT"))
                text, csat = f"great work on {topic}", rng.choice((None, 5))
            elif kind == "SUGGESTION":
                channel = rng.choice(("EMAIL", "CHAT", "CALL"))
                text, csat = f"it would help if {topic} could do more", None
            else:
                channel = rng.choice(("SUPPORT_TICKET", "CHAT", "EMAIL"))
                text, csat = f"how does {topic} work for our team?", rng.choice((None, 4, 5))
            self._say(self._workday(day), kind, channel, topic=topic, text=text, csat_score=csat)

    def _noise(self, end: float, at_risk: float) -> None:
        """What leavers do, done by everyone now and then: export questions, complaints,
        freeze questions; and the noisy complainers' steady stream of complaints."""
        rng = self.rng
        start = max(self.signup, 0.0)
        for day in self._poisson_times(NOISE_EXPORT_RATE, start, end):
            topic, text = rng.choice(NOISE_EXPORT_QUESTIONS + EXPORT_QUESTIONS[:1])
            self._say(self._workday(day), "QUESTION", "EMAIL", topic=topic, text=text)
        for day in self._poisson_times(BACKGROUND_COMPLAINT_RATE, start, min(end, at_risk)):
            self._complaint(day, csat=(2, 3), nps=False)
        for dip in self.dips:
            if dip.until < math.inf and start <= dip.start < end and rng.random() < 0.25:
                self._say(
                    self._workday(dip.start + rng.uniform(0, 7)),
                    "QUESTION",
                    "EMAIL",
                    topic="billing",
                    text="can we pause add-ons during our budget freeze?",
                )
        if self.noisy:
            day = start + rng.uniform(5, 40)
            while day < end:
                self._complaint(day, csat=(1, 3))
                day += rng.uniform(25, 100)

    def _leaver_signals(self) -> float:
        """Export/cancel questions, complaints of vocal leavers and the cancellation that
        may (or may not) follow the lapse. Returns the day of the first complaint."""
        rng, dep = self.rng, self.departure
        assert dep is not None
        lo = max(dep.decision, self.signup, 0.0)
        hi = max(lo, dep.lapse)
        if rng.random() < 0.35:
            topic, text = rng.choice(EXPORT_QUESTIONS)
            day = self._workday(rng.uniform(lo, hi))
            self._say(day, "QUESTION", rng.choice(("EMAIL", "CHAT")), topic=topic, text=text)
        first = math.inf
        if self.vocal:
            for _ in range(rng.randint(1, 3)):
                day = rng.uniform(max(lo - 30, self.signup, 0.0), hi + 5)
                self._complaint(day)
                first = min(first, day)
        explicit = rng.random() < (0.85 if self.vocal else 0.55)
        if explicit:
            if self.annual:
                day = dep.lapse + rng.uniform(-30, 30)
            else:
                day = dep.lapse + rng.uniform(2, 35)
            day = self._workday(max(day, lo + 1))
            reason = rng.choice(LEAVE_REASONS) if self.vocal else rng.choice(QUIET_REASONS)
            type_ = rng.choices(("CANCELLATION", "ACCOUNT_CLOSED"), weights=(0.7, 0.3))[0]
            self._event(day, type_, monthly_revenue=0.0, reason=reason)
            if type_ == "CANCELLATION" and rng.random() < 0.2:
                self._event(day + rng.uniform(7, 45), "ACCOUNT_CLOSED", monthly_revenue=0.0)
        return first

    def _ms(self, day: float) -> int:
        return int(self.start_ms + day * self.cfg.day_seconds * 1000)


def _signup_days(rng: random.Random, cfg: SimConfig, start_ms: int) -> list[float]:
    """Pre-existing customers (tenure up to three years) and monthly cohorts that grow over
    the period, with fewer companies joining in August and December."""
    months = max(1, math.ceil(cfg.days / MONTH))
    epoch0 = start_ms / 86_400_000
    weights = []
    for m in range(months):
        share = min(1.0, (cfg.days - m * MONTH) / MONTH)
        month = _calendar_month(math.floor(epoch0 + (m + 0.5) * MONTH))
        weights.append(share * (1 + 0.6 * m / months) * (0.6 if month in (8, 12) else 1.0))
    out = []
    for _ in range(cfg.customers):
        if rng.random() < PRE_EXISTING_SHARE:
            out.append(-rng.uniform(20, 3 * YEAR))
        else:
            m = rng.choices(range(months), weights=weights)[0]
            out.append(min(cfg.days * 0.999, m * MONTH + rng.uniform(0, MONTH)))
    return out


def simulate_cohorts(cfg: SimConfig, with_messages: bool = True) -> Simulation:
    """Generate the cohorts-and-contracts world deterministically from ``cfg.seed``."""
    rng = random.Random(f"cohorts-{cfg.seed}")
    start_ms = (
        cfg.start_ms
        if cfg.start_ms is not None
        else now_ms() - int(cfg.days * cfg.day_seconds * 1000)
    )
    survey_offset = rng.uniform(0, SURVEY_EVERY)
    truth: list[Truth] = []
    records: list[tuple[str, float, dict[str, Any]]] = []
    for idx, signup in enumerate(_signup_days(rng, cfg, start_ms)):
        account = _Account(
            random.Random(rng.getrandbits(64)), idx, cfg, start_ms, signup, survey_offset
        )
        truth.append(account.live())
        records += [("customer", d, r) for d, r in account.customer if 0 <= d < cfg.days]
        records += [("feedback", d, r) for d, r in account.feedback if 0 <= d < cfg.days]
    return build_simulation(cfg, start_ms, truth, records, rng, with_messages)
