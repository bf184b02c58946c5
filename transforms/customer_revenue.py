"""AttachAnnualRevenue: put a customer's annual revenue, as of the row's event time, on it.

Revenue lost (aggregates) and revenue of customers hit by an issue spike both need a
customer's recurring revenue, which only earlier customer events carry (a cancellation
itself reports ``monthly_revenue = 0``). Per shard of the customer id (per-key state costs
~1 ms a key in the Python SDK, see transforms/sharding.py) the state keeps, per customer,
the few latest ``(occurred_at, monthly_revenue)`` changes; a row is answered from them as
of its own ``occurred_at``, so out-of-order revenue events are placed correctly.

Rows are answered on arrival, not held back: a row read before any revenue event of its
customer gets 0.0. In real time revenue events precede a customer's reports and churn by
days; a bulk replay that reads the feedback stream ahead of the customer stream can
under-count. (Holding rows on an event-time timer would fix that on Dataflow, but the
Python DirectRunner does not hold the output watermark for timers, so released rows
arrive behind the watermark and windows downstream drop them at a drain.)

Only rows that matter touch the state: customer events that carry ``monthly_revenue``
or end the relationship, and feedback rows the caller selects (problem reports).

Outputs (tagged), each row copied with ``annual_revenue``:

* ``churn``: CANCELLATION / ACCOUNT_CLOSED rows; 12 x the last non-zero monthly revenue
  at or before the churn (what leaves with the customer);
* ``reports``: the selected feedback rows; 12 x the monthly revenue at that time.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

import apache_beam as beam
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

from churnwatch.aggregation import CHURN_TYPES
from transforms.sharding import SHARD_STATE_CODER, read_shard_state, shard_of, write_shard_state

CHURN, REPORTS = "churn", "reports"
MONTHS_PER_YEAR = 12
KEEP_CHANGES = 8  # revenue changes kept per customer (late rows look a little back)


def revenue_relevant(row: dict[str, Any]) -> bool:
    """Customer events that change the lookup or need its value."""
    return row.get("monthly_revenue") is not None or row.get("type") in CHURN_TYPES


def monthly_revenue_at(
    changes: list[tuple[int, float]], at_ms: int, last_paying: bool = False
) -> float:
    """Monthly revenue in effect at ``at_ms`` from time-sorted ``(ms, revenue)`` changes.

    ``last_paying``: skip zeros (a churn's own ``monthly_revenue = 0``), giving what the
    customer paid before leaving. Unknown -> 0.0.
    """
    i = bisect.bisect_right(changes, (at_ms, float("inf")))
    for _, monthly in reversed(changes[:i]):
        if monthly or not last_paying:
            return float(monthly)
    return 0.0


class _RevenueShardFn(beam.DoFn):
    # {customer_id: [(occurred_at ms, monthly revenue), ...] time-sorted, last few}
    CHANGES = ReadModifyWriteStateSpec("revenue_changes", SHARD_STATE_CODER)

    def process(
        self,
        element: tuple[int, tuple[str, dict[str, Any]]],
        state=beam.DoFn.StateParam(CHANGES),
    ):
        _, (source, row) = element
        customer, at = row["customer_id"], row["occurred_at"]
        changes = read_shard_state(state, {})
        if source == "customer" and row.get("monthly_revenue") is not None:
            history = changes.setdefault(customer, [])
            bisect.insort(history, (at, float(row["monthly_revenue"])))
            del history[:-KEEP_CHANGES]
            write_shard_state(state, changes)
        tag = REPORTS if source == "feedback" else CHURN if row.get("type") in CHURN_TYPES else None
        if tag is not None:
            monthly = monthly_revenue_at(changes.get(customer, []), at, last_paying=tag == CHURN)
            annual = round(MONTHS_PER_YEAR * monthly, 2)
            yield beam.pvalue.TaggedOutput(tag, {**row, "annual_revenue": annual})


class AttachAnnualRevenue(beam.PTransform):
    """``{"feedback": rows, "customer": rows}`` → ``{"churn": rows, "reports": rows}``."""

    def __init__(self, is_report: Callable[[dict[str, Any]], bool], num_shards: int = 64):
        super().__init__()
        if num_shards <= 0:
            raise ValueError("num_shards must be positive")
        self.is_report = is_report
        self.num_shards = num_shards

    def expand(self, inputs: dict):
        shards, is_report = self.num_shards, self.is_report

        def keyed(source: str):
            return beam.Map(lambda row: (shard_of(row["customer_id"], shards), (source, row)))

        reports = (
            inputs["feedback"]
            | "SelectReports" >> beam.Filter(is_report)
            | "KeyReports" >> keyed("feedback")
        )
        customer = (
            inputs["customer"]
            | "SelectRevenueEvents" >> beam.Filter(revenue_relevant)
            | "KeyRevenueEvents" >> keyed("customer")
        )
        out = (
            (reports, customer)
            | "Merge" >> beam.Flatten()
            | "LookupRevenue" >> beam.ParDo(_RevenueShardFn()).with_outputs(CHURN, REPORTS)
        )
        return {CHURN: out[CHURN], REPORTS: out[REPORTS]}
