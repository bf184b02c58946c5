"""AttachAnnualRevenue: put each customer's current annual revenue on the rows that need it.

Revenue lost (aggregates) and revenue of customers hit by an issue spike both need a
customer's recurring revenue, which only earlier customer events carry (a cancellation
itself reports ``monthly_revenue = 0``). A compact lookup ``customer_id -> monthly revenue``
is kept per shard of the customer id (per-key state costs ~1 ms a key in the Python SDK,
see transforms/dedupe.py); nothing else about the customer is kept.

Only rows that matter go through the state: customer events that carry
``monthly_revenue`` or end the relationship, and feedback rows selected by the caller
(problem reports). Purchases and other feedback never touch it.

Outputs (tagged):

* ``churn``: CANCELLATION / ACCOUNT_CLOSED rows with ``annual_revenue`` = 12 x the last
  non-zero monthly revenue seen before the churn (0.0 if none was ever seen);
* ``reports``: the selected feedback rows with ``annual_revenue`` of their customer.

Order is arrival order, not event time: a report that arrives before the customer's
signup gets 0.0. Rows are copied, never mutated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

from churnwatch.aggregation import CHURN_TYPES
from transforms.sharding import shard_of

CHURN, REPORTS = "churn", "reports"
MONTHS_PER_YEAR = 12


def revenue_relevant(row: dict[str, Any]) -> bool:
    """Customer events that change the lookup or need its value."""
    return row.get("monthly_revenue") is not None or row.get("type") in CHURN_TYPES


class _RevenueShardFn(beam.DoFn):
    REVENUE = ReadModifyWriteStateSpec("monthly_revenue", PickleCoder())

    def process(
        self,
        element: tuple[int, tuple[str, dict[str, Any]]],
        revenue_state=beam.DoFn.StateParam(REVENUE),
    ):
        _, (source, row) = element
        revenue: dict[str, float] = revenue_state.read() or {}
        customer = row["customer_id"]
        if source == "feedback":
            yield beam.pvalue.TaggedOutput(
                REPORTS, {**row, "annual_revenue": MONTHS_PER_YEAR * revenue.get(customer, 0.0)}
            )
            return
        if row.get("type") in CHURN_TYPES:
            yield beam.pvalue.TaggedOutput(
                CHURN, {**row, "annual_revenue": MONTHS_PER_YEAR * revenue.get(customer, 0.0)}
            )
            return  # keep the last paying revenue: a late renewal row must not reset it
        monthly = row.get("monthly_revenue")
        if monthly:
            revenue[customer] = float(monthly)
            revenue_state.write(revenue)


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
