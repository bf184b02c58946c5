"""ComputeAggregates: feedback and churn counts per event-time window and dimension.

Inputs (a dict of PCollections; element timestamps must be the rows' ``occurred_at``):

* ``feedback``: FeedbackEvent rows (required);
* ``customer``: CustomerEvent rows (required); CANCELLATION / ACCOUNT_CLOSED count as churned;
* ``churn_revenue`` (optional): churn events with ``annual_revenue`` attached
  (transforms/customer_revenue.py) -> ``revenue_lost``;
* ``outcomes`` (optional): churn outcomes from the per-customer detector, one dict per
  churned customer ``{customer_id, occurred_at (ms), silent: bool, revenue_lost: float,
  segment, team?}``. They are the only source of ``silent_churned`` / ``vocal_churned``
  (the classification needs a 180-day lookback that a window cannot see); without them
  both stay 0. An outcome also counts its customer as churned and its ``revenue_lost``
  (the larger of the two sources per customer) into ``revenue_lost``. Outcomes are
  re-stamped to their ``occurred_at``: the detector emits them stamped with the start of
  its shard batch (transforms/sharding.py), which can be earlier.

Output: FeedbackAggregate row dicts (schemas/feedback_aggregate.avsc), one per
(window kind, window, dimension, value) **per pane**. Panes accumulate, so every pane is
the full row so far, and the warehouse keeps one row per window key (upsert, the highest
``updated_at`` wins: the latest pane written, also after a warm start rebuilt the window)::

    event time ──[ window ]──────────── watermark passes end ────── + allowed lateness ──>
    panes:       EARLY EARLY ...        ON_TIME                  LATE  LATE ...  (dropped after)
                 (every early_firing_seconds of wall clock while events arrive)
                                        (one per late event, updating the same row)

Events later than the allowed lateness are still stored as rows (feedback_events,
customer_events); they only miss the aggregate of a window that is closed for good.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.transforms import trigger, window
from apache_beam.utils.timestamp import Duration, Timestamp
from apache_beam.utils.windowed_value import PaneInfoTiming, WindowedValue

from churnwatch.aggregation import (
    CUSTOMER_DIMENSIONS,
    FEEDBACK_DIMENSIONS,
    AggregateConfig,
    Tally,
    dimension_keys,
)
from churnwatch.clock import now_ms
from transforms.warm_start import KeepWindowsFrom

FEEDBACK, CUSTOMER, CHURN_REVENUE, OUTCOME = "f", "c", "r", "o"
_ADD = {
    FEEDBACK: Tally.add_feedback,
    CUSTOMER: Tally.add_customer,
    CHURN_REVENUE: Tally.add_churn_revenue,
    OUTCOME: Tally.add_outcome,
}
# Only what the tally reads travels through the shuffle.
_KEEP = {
    FEEDBACK: ("kind", "nps_score", "csat_score"),
    CUSTOMER: ("customer_id", "type"),
    CHURN_REVENUE: ("customer_id", "annual_revenue"),
    OUTCOME: ("customer_id", "silent", "revenue_lost"),
}


def contributions(source: str, row: dict[str, Any]) -> list[tuple[tuple[str, str], tuple]]:
    """``[((dimension, value), (source, slim row)), ...]``: one per dimension of the row."""
    if source == FEEDBACK:
        dims = FEEDBACK_DIMENSIONS
    elif source == OUTCOME and row.get("team"):
        dims = (*CUSTOMER_DIMENSIONS, "team")
    else:
        dims = CUSTOMER_DIMENSIONS
    slim = {k: row.get(k) for k in _KEEP[source]}
    return [(key, (source, slim)) for key in dimension_keys(row, dims)]


class TallyFn(beam.CombineFn):
    """Combines contributions into the measures of one aggregate row."""

    def create_accumulator(self) -> Tally:
        return Tally()

    def add_input(self, tally: Tally, item: tuple[str, dict[str, Any]]) -> Tally:
        source, row = item
        return _ADD[source](tally, row)

    def merge_accumulators(self, tallies) -> Tally:
        tallies = iter(tallies)
        merged = next(tallies, None) or Tally()
        for other in tallies:
            merged.merge(other)
        return merged

    def extract_output(self, tally: Tally) -> dict[str, Any]:
        return tally.measures()


class PartialTallyFn(TallyFn):
    """Like :class:`TallyFn`, but hands on the tally itself (a partial, to merge later)."""

    def extract_output(self, tally: Tally) -> Tally:
        return tally


class MergeTalliesFn(TallyFn):
    """Partial tallies (one per period) → the measures of the window that spans them."""

    def add_input(self, tally: Tally, item: Tally) -> Tally:
        tally.merge(item)
        return tally


class _PartialTalliesFn(beam.DoFn):
    """A bundle's contributions → one partial Tally per (key, window), for every window kind.

    Why: a streaming runner's GroupAlsoByWindow stores every input of an accumulating
    window until the window expires (allowed lateness) and runs the trigger per input;
    the DirectRunner also copies a key's stored inputs per bundle. One partial per key,
    window and bundle gives the same panes (a trigger decides once per window and
    bundle; a pane is the merge of everything added so far) from far fewer inputs. A
    partial carries the earliest timestamp of its contributions (the windows emit at
    their end, so the timestamp only orders data).

    Each contribution is added once, to its period's tally (one day), not once per
    window (1 fixed + 7 sliding); at the end of the bundle each period's tally is merged
    into the windows that cover it, as the windows' own WindowFns assign them. Exact
    when every window kind is a whole number of periods
    (``ComputeAggregates._periods_tile_windows``): all of a period's timestamps then
    fall in the same windows. Outputs are tagged by kind, already windowed
    (:class:`_AssignedWindows` keeps the window).
    """

    def __init__(self, windowfns: dict[str, window.WindowFn]) -> None:
        self.windowfns = windowfns
        sliding = windowfns["SLIDING"]
        self.period_us = sliding.period.micros
        self.offset_us = sliding.offset.micros

    def start_bundle(self) -> None:
        self.periods: dict[tuple, list] = {}

    def process(
        self,
        item: tuple[tuple[str, str], tuple[str, dict[str, Any]]],
        timestamp=beam.DoFn.TimestampParam,
    ):
        key, (source, row) = item
        micros = timestamp.micros
        period = micros - (micros - self.offset_us) % self.period_us
        entry = self.periods.get((key, period))
        if entry is None:
            entry = self.periods[(key, period)] = [micros, Tally()]
        elif micros < entry[0]:
            entry[0] = micros
        _ADD[source](entry[1], row)

    def finish_bundle(self):
        partials: dict[tuple, list] = {}
        windows_of: dict[tuple, list] = {}
        for (key, period), (earliest, tally) in self.periods.items():
            for kind, windowfn in self.windowfns.items():
                if (kind, period) not in windows_of:
                    at = window.WindowFn.AssignContext(Timestamp(micros=period))
                    windows_of[(kind, period)] = windowfn.assign(at)
                for win in windows_of[(kind, period)]:
                    entry = partials.get((kind, key, win))
                    if entry is None:
                        partials[(kind, key, win)] = [earliest, Tally().merge(tally)]
                    else:
                        entry[0] = min(entry[0], earliest)
                        entry[1].merge(tally)
        for (kind, key, win), (earliest, tally) in partials.items():
            yield beam.pvalue.TaggedOutput(
                kind, WindowedValue((key, tally), Timestamp(micros=earliest), [win])
            )
        self.periods = {}


class _AssignedWindows(window.NonMergingWindowFn):
    """Keeps the window an element already has (assigned by :class:`_PartialTalliesFn`).

    WindowInto with it gives a PCollection the windowing strategy (trigger, lateness)
    of ``windowfn`` without re-assigning windows from timestamps.
    """

    def __init__(self, windowfn: window.WindowFn) -> None:
        self.windowfn = windowfn

    def assign(self, context: window.WindowFn.AssignContext):
        return [context.window]

    def get_window_coder(self):
        return self.windowfn.get_window_coder()

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.windowfn == other.windowfn

    def __hash__(self) -> int:
        return hash((type(self), self.windowfn))


class _ToAggregateRowFn(beam.DoFn):
    """Window bounds and pane from Beam, measures from the combiner: one warehouse row."""

    def __init__(self, window_kind: str) -> None:
        self.window_kind = window_kind

    def process(
        self,
        element: tuple[tuple[str, str], dict[str, Any]],
        win=beam.DoFn.WindowParam,
        pane=beam.DoFn.PaneInfoParam,
    ):
        (dimension, value), measures = element
        yield {
            "window_kind": self.window_kind,
            "window_start": win.start.micros // 1000,
            "window_end": win.end.micros // 1000,
            "dimension": dimension,
            "dimension_value": value,
            **measures,
            "pane_index": pane.index,
            "pane_timing": PaneInfoTiming.to_string(pane.timing),
            "updated_at": now_ms(),
        }


class ComputeAggregates(beam.PTransform):
    """``{"feedback", "customer"[, "churn_revenue"][, "outcomes"]}`` → FeedbackAggregate rows.

    FIXED windows of ``fixed_days`` and SLIDING windows of ``sliding_days`` every
    ``sliding_period_days``; both with early, on-time and late panes (see module doc).
    ``precombine_periods`` (when the windows are whole numbers of periods): tally each
    period once and merge periods into windows, per bundle on a stream
    (:class:`_PartialTalliesFn`), once per key on bounded input; same rows either way
    (tests/test_aggregates.py compares them).
    """

    def __init__(
        self,
        config: AggregateConfig,
        precombine_periods: bool = True,
        windows_from_ms: int | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.precombine_periods = precombine_periods
        # warm start (churnwatch/warm_start.py): windows starting earlier are not this run's
        self.windows_from_ms = windows_from_ms

    def _trigger_args(self, bounded: bool) -> dict[str, Any]:
        c = self.config
        if bounded:
            # Bounded input (backfill, batch runners): the watermark jumps to +inf once all
            # input is in, so each window gets exactly one, final, on-time pane and nothing
            # is late. The default trigger says that, and lets the runner pre-combine
            # (combiner lifting), which a custom trigger forbids: 20x faster here.
            return {}
        early = (
            None
            if c.early_firing_seconds is None
            else trigger.AfterProcessingTime(int(c.early_firing_seconds))
        )
        return {
            "trigger": trigger.AfterWatermark(early=early, late=trigger.AfterCount(1)),
            "accumulation_mode": trigger.AccumulationMode.ACCUMULATING,
            "allowed_lateness": Duration(seconds=c.lateness_seconds),
        }

    def expand(self, inputs: dict):
        c = self.config
        sources = {
            "feedback": FEEDBACK,
            "customer": CUSTOMER,
            "churn_revenue": CHURN_REVENUE,
            "outcomes": OUTCOME,
        }
        unknown = set(inputs) - set(sources)
        if unknown or not {"feedback", "customer"} <= set(inputs):
            raise ValueError(f"inputs must hold feedback and customer (got {sorted(inputs)})")
        given = {name: pc for name, pc in inputs.items() if pc is not None}
        if "outcomes" in given:
            given["outcomes"] = given["outcomes"] | "StampOutcomes" >> beam.Map(
                lambda row: window.TimestampedValue(row, row["occurred_at"] / 1000)
            )
        parts = [
            pc
            | f"Contributions_{name}"
            >> beam.FlatMap(lambda row, s=sources[name]: contributions(s, row))
            for name, pc in given.items()
        ]
        keyed = parts | "AllContributions" >> beam.Flatten()
        if keyed.is_bounded and self.precombine_periods and self._periods_tile_windows():
            return self._bounded_from_periods(keyed)
        windowings = {
            "FIXED": window.FixedWindows(c.seconds(c.fixed_days)),
            "SLIDING": window.SlidingWindows(
                c.seconds(c.sliding_days), c.seconds(c.sliding_period_days)
            ),
        }
        trigger_args = self._trigger_args(keyed.is_bounded)
        # Unbounded: the trigger machinery sees one partial tally per key, window and
        # bundle (_PartialTalliesFn) instead of every contribution.
        partials = None
        if not keyed.is_bounded and self.precombine_periods and self._periods_tile_windows():
            partials = keyed | "PartialTallies" >> beam.ParDo(
                _PartialTalliesFn(windowings)
            ).with_outputs(*windowings)
        rows = []
        for kind, windowfn in windowings.items():
            label = kind.capitalize()
            if partials is None:
                windowed = keyed | f"Window{label}" >> beam.WindowInto(windowfn, **trigger_args)
                tally_fn: beam.CombineFn = TallyFn()
            else:
                windowed = partials[kind] | f"Window{label}" >> beam.WindowInto(
                    _AssignedWindows(windowfn), **trigger_args
                )
                tally_fn = MergeTalliesFn()
            if self.windows_from_ms is not None:
                windowed = windowed | f"OnlyWindowsFrom{label}" >> beam.ParDo(
                    KeepWindowsFrom(self.windows_from_ms)
                )
            rows.append(
                windowed
                | f"Tally{label}" >> beam.CombinePerKey(tally_fn)
                | f"Row{label}" >> beam.ParDo(_ToAggregateRowFn(kind))
                # Rows carry their window in their columns; the sink needs no windowing,
                # and Flatten needs both kinds in one windowing.
                | f"Unwindow{label}" >> beam.WindowInto(window.GlobalWindows())
            )
        return rows | "AllAggregates" >> beam.Flatten()

    def _periods_tile_windows(self) -> bool:
        """Both window kinds are whole numbers of sliding periods."""
        c = self.config
        return all(
            abs(days / c.sliding_period_days - round(days / c.sliding_period_days)) < 1e-9
            for days in (c.fixed_days, c.sliding_days)
        )

    def _bounded_from_periods(self, keyed):
        """Bounded input: tally each period once, then merge period tallies into windows.

        On bounded input every window has one, final pane, so Beam's windowing machinery
        (a trigger timer per key and window) buys nothing. Here windows are keys in the
        global window: a contribution is added to the tally of its period (one day) once,
        instead of once per window (1 fixed + 7 sliding), and each window merges the
        period tallies it covers. Exact, because tallies are sums and sets and both window
        kinds are whole numbers of periods, aligned as Beam aligns them (offset 0);
        ``tests/test_aggregates.py`` checks the rows equal the windowed path's.
        """
        c = self.config
        period_us = round(c.seconds(c.sliding_period_days) * 1e6)
        sizes_us = {
            "FIXED": round(c.seconds(c.fixed_days) * 1e6),
            "SLIDING": round(c.seconds(c.sliding_days) * 1e6),
        }
        return (
            keyed
            | "KeyByPeriod" >> beam.ParDo(_KeyByPeriodFn(period_us))
            | "TallyPeriods" >> beam.CombinePerKey(PartialTallyFn())
            | "PeriodsToWindows"
            >> beam.FlatMap(
                _period_windows,
                period_us,
                sizes_us,
                None if self.windows_from_ms is None else self.windows_from_ms * 1000,
            )
            | "MergePeriods" >> beam.CombinePerKey(MergeTalliesFn())
            | "BoundedRows" >> beam.Map(_bounded_row)
        )


class _KeyByPeriodFn(beam.DoFn):
    def __init__(self, period_us: int) -> None:
        self.period_us = period_us

    def process(self, item, timestamp=beam.DoFn.TimestampParam):
        key, contribution = item
        micros = timestamp.micros
        yield (key, micros - micros % self.period_us), contribution


def _period_windows(item, period_us: int, sizes_us: dict[str, int], from_us: int | None):
    """A period's tally → ``((kind, start, end, dimension, value), tally)`` per window
    (windows starting before ``from_us`` left out, as :class:`KeepWindowsFrom` does)."""
    (key, period_start), tally = item
    for kind, size in sizes_us.items():
        if kind == "FIXED":
            starts = [period_start - period_start % size]
        else:  # every sliding window that covers the period
            starts = [period_start - k * period_us for k in range(size // period_us)]
        for start in starts:
            if from_us is None or start >= from_us:
                yield (kind, start, start + size, *key), tally


def _bounded_row(item) -> dict[str, Any]:
    (kind, start_us, end_us, dimension, value), measures = item
    return {
        "window_kind": kind,
        "window_start": start_us // 1000,
        "window_end": end_us // 1000,
        "dimension": dimension,
        "dimension_value": value,
        **measures,
        "pane_index": 0,
        "pane_timing": "ON_TIME",  # the one, final pane of a bounded window
        "updated_at": now_ms(),
    }
