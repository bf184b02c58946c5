"""PublishAlerts: ChurnAlert rows to the alerts Pub/Sub topic, for the notifier.

Message data is the Avro BINARY datum of ChurnAlert (the same wire format as every input),
with attributes naming the alert id (consumers dedupe by it: timers may fire twice and
Pub/Sub delivers at least once), type and owner.

The ``googclient_schema*`` attributes are Pub/Sub's own: on a topic with a schema (what
Terraform creates) Pub/Sub validates the datum and sets them, and keys starting with
``goog`` are not the publisher's to set. Only on the emulator, whose topics have no schemas,
do we stamp them ourselves (``stamp_schema_attributes``) so consumers see the same message.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage

from churnwatch import schemas
from churnwatch.wire import attributes_for, encode_binary


def alert_message(alert: dict, stamp_schema_attributes: bool = True) -> PubsubMessage:
    schema = schemas.load(schemas.CHURN_ALERT)
    attributes = attributes_for(schema, {}) if stamp_schema_attributes else {}
    attributes.update(
        alert_id=alert["alert_id"],
        alert_type=alert["alert_type"],
        owner=alert["owner"],
        occurred_at=str(alert["detected_at"]),
    )
    return PubsubMessage(encode_binary(schema, alert), attributes)


class PublishAlerts(beam.PTransform):
    def __init__(self, topic: str, stamp_schema_attributes: bool = True) -> None:
        super().__init__()
        self.topic = topic
        self.stamp_schema_attributes = stamp_schema_attributes

    def expand(self, alerts):
        return (
            alerts
            | "ToPubsubMessage"
            >> beam.Map(alert_message, stamp_schema_attributes=self.stamp_schema_attributes)
            | "WriteAlertsTopic" >> beam.io.WriteToPubSub(self.topic, with_attributes=True)
        )
