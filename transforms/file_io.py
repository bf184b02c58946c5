"""ReadMessageLog: Pub/Sub-shaped messages from Avro files, for backfill and benchmarks.

The files hold ``LoggedMessage`` records (schemas/message_log.avsc): the payload bytes as a
producer would publish them, plus attributes. Replaying them through the same flow as the
stream exercises the same decode, validation and dedupe code on bounded input.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage

SOURCES = ("feedback", "customer")


def _to_message(record: dict) -> PubsubMessage:
    return PubsubMessage(
        record["data"],
        record.get("attributes") or {},
        message_id=record.get("message_id"),
        publish_time=record.get("publish_at"),
    )


class ReadMessageLog(beam.PTransform):
    """Avro message-log files → ``(feedback messages, customer messages)``."""

    def __init__(self, file_pattern: str) -> None:
        super().__init__()
        self.file_pattern = file_pattern

    def expand(self, pbegin):
        records = pbegin | "ReadAvro" >> beam.io.ReadFromAvro(self.file_pattern)
        feedback, customer = records | "SplitBySource" >> beam.Partition(
            lambda record, _n: SOURCES.index(record["source"]), len(SOURCES)
        )
        return (
            feedback | "FeedbackMessages" >> beam.Map(_to_message),
            customer | "CustomerMessages" >> beam.Map(_to_message),
        )
