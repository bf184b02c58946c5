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


class _ToMessageBySource(beam.DoFn):
    """One call per record: the message, tagged with its source (no Partition + Map pair)."""

    def process(self, record: dict):
        yield beam.pvalue.TaggedOutput(record["source"], _to_message(record))


class ReadMessageLog(beam.PTransform):
    """Avro message-log files → ``(feedback messages, customer messages)``."""

    def __init__(self, file_pattern: str) -> None:
        super().__init__()
        self.file_pattern = file_pattern

    def expand(self, pbegin):
        records = pbegin | "ReadAvro" >> beam.io.ReadFromAvro(self.file_pattern)
        messages = records | "MessagesBySource" >> beam.ParDo(_ToMessageBySource()).with_outputs(
            *SOURCES
        )
        return tuple(messages[source] for source in SOURCES)
