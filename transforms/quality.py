"""ValidateWindows: an expectation suite on every event-time window of valid rows.

A broken producer (scores out of range, a field it stopped filling, duplicate ids) is
noticed within one window instead of at month end::

    rows ─ key by suite ─ fixed windows (QualityConfig.window_seconds; late panes)
         ─ GroupByKey (one batch per suite and window)
         ─ _ValidateWindowFn: one GX validation per batch
              ├─> results: QualityResult rows (one per expectation) -> quality_results
              └─> alerts: one DATA_QUALITY ChurnAlert per failing suite and window,
                          routed by the policy (data_engineer_on_call)

Great Expectations stays out of the per-element path: it is imported in ``setup()`` and
its context, suite and validation definition are built once per process (cached in
``_RUNNERS``); per window it costs one validation of a DataFrame. Ids are deterministic
(suite, window, pane; alerts: suite and window), so replays and late panes of an alerted
window do not add rows or alerts.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms import trigger, window
from apache_beam.utils.timestamp import Duration

from churnwatch import schemas
from churnwatch.clock import now_ms
from churnwatch.quality import results
from churnwatch.quality.config import QualityConfig
from churnwatch.quality.suites import SuiteSpec, build_suite
from churnwatch.routing import RoutingPolicy

RESULTS, ALERTS = "results", "alerts"

_RUNNERS: dict[tuple, Any] = {}
_RUNNERS_LOCK = threading.Lock()


def shared_runner(suites: dict[str, SuiteSpec]):
    """One :class:`~churnwatch.quality.gx_runner.SuiteRunner` per process and suite set."""
    key = tuple(sorted((name, repr(spec)) for name, spec in suites.items()))
    with _RUNNERS_LOCK:
        runner = _RUNNERS.get(key)
        if runner is None:
            from churnwatch.quality.gx_runner import SuiteRunner  # imports GX: seconds

            runner = _RUNNERS[key] = SuiteRunner(suites)
        return runner


def frame(columns: tuple[str, ...], rows: list[dict[str, Any]]):
    """A DataFrame with exactly the table's columns (missing keys become nulls)."""
    import pandas as pd

    return pd.DataFrame.from_records(
        [tuple(row.get(c) for c in columns) for row in rows], columns=list(columns)
    )


class _ValidateWindowFn(beam.DoFn):
    def __init__(self, suite: SuiteSpec, config: QualityConfig, policy: RoutingPolicy) -> None:
        self.suite = suite
        self.config = config
        self.policy = policy
        self.columns = schemas.table(suite.table).column_names

    def setup(self) -> None:
        self.runner = shared_runner({self.suite.name: self.suite})
        self.windows = Metrics.counter("quality", f"{self.suite.name}_windows")
        self.failed = Metrics.counter("quality", f"{self.suite.name}_failed_windows")
        self.cost = Metrics.distribution("quality", f"{self.suite.name}_validate_ms")

    def process(self, element, win=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        _, rows = element
        rows = list(rows)
        start, end = win.start.micros // 1000, win.end.micros // 1000
        began = time.perf_counter()
        outcomes = self.runner.validate(
            self.suite.name, frame(self.columns, rows), now_ms(), self.config.tolerance_ms
        )
        self.cost.update(int((time.perf_counter() - began) * 1000))
        self.windows.inc()
        checked_at = now_ms()
        run_id = results.stream_run_id(self.suite.name, start, end, pane.index)
        for row in results.result_rows(outcomes, run_id, results.STREAM, checked_at, (start, end)):
            yield beam.pvalue.TaggedOutput(RESULTS, row)
        alert = results.quality_alert(
            self.suite.name, (start, end), outcomes, self.policy, checked_at
        )
        if alert is not None:
            self.failed.inc()
            yield beam.pvalue.TaggedOutput(ALERTS, alert)


class ValidateWindows(beam.PTransform):
    """Rows of one table → ``{"results": QualityResult rows, "alerts": ChurnAlert rows}``.

    Element timestamps must be the rows' event time (as DecodeAndValidate sets them).
    """

    def __init__(
        self, table: str, config: QualityConfig, policy: RoutingPolicy | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.policy = policy or RoutingPolicy.load()
        owners = tuple(self.policy.owners)
        self.suite = build_suite(schemas.table(table), config.rules, owners)

    def expand(self, rows):
        c = self.config
        if rows.is_bounded:  # batch: one pane per window, when the input is exhausted
            windowing: dict[str, Any] = {}
        else:  # late rows: the whole window again (accumulating), as the aggregates do.
            # Not AfterProcessingTime: pending processing-time timers hold up (and, under
            # load, stall) a local drain.
            windowing = {
                "trigger": trigger.AfterWatermark(late=trigger.AfterCount(1)),
                "accumulation_mode": trigger.AccumulationMode.ACCUMULATING,
                "allowed_lateness": Duration(seconds=c.lateness_seconds),
            }
        name = self.suite.name
        out = (
            rows
            | "KeyBySuite" >> beam.Map(lambda row, s=name: (s, row))
            | "QualityWindows"
            >> beam.WindowInto(window.FixedWindows(c.window_seconds), **windowing)
            | "BatchPerWindow" >> beam.GroupByKey()
            | "Validate"
            >> beam.ParDo(_ValidateWindowFn(self.suite, c, self.policy)).with_outputs(
                RESULTS, ALERTS
            )
        )
        return {
            # Rows carry their window in their columns; sinks need no windowing.
            RESULTS: out[RESULTS] | "UnwindowResults" >> beam.WindowInto(window.GlobalWindows()),
            ALERTS: out[ALERTS] | "UnwindowAlerts" >> beam.WindowInto(window.GlobalWindows()),
        }
