"""PublishAlerts: ChurnAlert rows to the alerts Pub/Sub topic, for the notifier.

Message data is the Avro BINARY datum of ChurnAlert (the same wire format as every input),
with attributes naming the schema revision, the alert id (consumers dedupe by it: timers
may fire twice and Pub/Sub delivers at least once), type and owner.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage

from churnwatch import schemas
from churnwatch.wire import attributes_for, encode_binary


def alert_message(alert: dict) -> PubsubMessage:
    schema = schemas.load(schemas.CHURN_ALERT)
    attributes = attributes_for(schema, {})
    attributes.update(
        alert_id=alert["alert_id"],
        alert_type=alert["alert_type"],
        owner=alert["owner"],
        occurred_at=str(alert["detected_at"]),
    )
    return PubsubMessage(encode_binary(schema, alert), attributes)


class PublishAlerts(beam.PTransform):
    def __init__(self, topic: str) -> None:
        super().__init__()
        self.topic = topic

    def expand(self, alerts):
        return (
            alerts
            | "ToPubsubMessage" >> beam.Map(alert_message)
            | "WriteAlertsTopic" >> beam.io.WriteToPubSub(self.topic, with_attributes=True)
        )
