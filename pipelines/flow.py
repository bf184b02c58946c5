"""The Churnwatch flow as one composite: messages in, every output PCollection out.

Sources and sinks stay outside (``pipelines/streaming.py``, ``pipelines/backfill.py``),
so the same flow runs on Pub/Sub, files, ``Create`` and ``TestStream``.
"""

from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam

from churnwatch import schemas
from transforms.decode import DecodeAndValidate
from transforms.dedupe import DropDuplicates
from transforms.track_customers import TrackCustomers, TrackingSetup


@dataclass(frozen=True)
class FlowConfig:
    dedupe_ttl_seconds: float = 3600.0
    dedupe_shards: int = 64
    future_tolerance_seconds: float = 300.0
    writer_schemas_dir: str | None = None
    day_seconds: float = 86400.0
    tracking: TrackingSetup | None = None  # None: no churn detection (decode/dedupe only)

    def __post_init__(self) -> None:
        if self.dedupe_ttl_seconds <= 0 or self.dedupe_shards <= 0 or self.day_seconds <= 0:
            raise ValueError("dedupe_ttl_seconds, dedupe_shards and day_seconds must be positive")

    @classmethod
    def from_options(cls, options) -> FlowConfig:
        return cls(
            dedupe_ttl_seconds=options.dedupe_ttl_seconds,
            dedupe_shards=options.dedupe_shards,
            future_tolerance_seconds=options.future_tolerance_seconds,
            writer_schemas_dir=options.writer_schemas_dir,
            day_seconds=options.day_seconds,
            tracking=options.tracking_setup(),
        )


class ChurnwatchFlow(beam.PTransform):
    """``(feedback messages, customer messages)`` → dict of output PCollections.

    Outputs: ``feedback_events`` and ``customer_events`` (valid, first occurrence only),
    ``dead_letters`` (every rejected message, raw bytes kept) and, with a tracking setup,
    ``alerts`` (ChurnAlert rows) and ``churn_outcomes`` (every churn, silent or vocal).
    """

    def __init__(self, config: FlowConfig) -> None:
        super().__init__()
        self.config = config

    def expand(self, messages: tuple):
        c = self.config
        feedback_messages, customer_messages = messages
        feedback, feedback_dead = feedback_messages | "DecodeFeedback" >> DecodeAndValidate(
            "feedback",
            schemas.load(schemas.FEEDBACK_EVENT),
            c.writer_schemas_dir,
            c.future_tolerance_seconds,
        )
        customer, customer_dead = customer_messages | "DecodeCustomer" >> DecodeAndValidate(
            "customer",
            schemas.load(schemas.CUSTOMER_EVENT),
            c.writer_schemas_dir,
            c.future_tolerance_seconds,
        )
        feedback = feedback | "DropDuplicateFeedback" >> DropDuplicates(
            c.dedupe_ttl_seconds, c.dedupe_shards
        )
        customer = customer | "DropDuplicateCustomer" >> DropDuplicates(
            c.dedupe_ttl_seconds, c.dedupe_shards
        )
        dead_letters = (feedback_dead, customer_dead) | "AllDeadLetters" >> beam.Flatten()
        outputs = {
            "feedback_events": feedback,
            "customer_events": customer,
            "dead_letters": dead_letters,
        }
        if c.tracking is not None:
            tracked = (feedback, customer) | "TrackCustomers" >> TrackCustomers(c.tracking)
            outputs["alerts"] = tracked["alerts"]
            outputs["churn_outcomes"] = tracked["outcomes"]
        return outputs
