"""DecodeAndValidate as a composite: every message is exactly one row or one dead letter."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from churnwatch import schemas
from churnwatch.wire import attributes_for, encode_binary
from tests.helpers import WRITER_SCHEMAS, feedback, message, v2_feedback_schema
from transforms.decode import DecodeAndValidate

READER = schemas.load(schemas.FEEDBACK_EVENT)


def test_valid_and_invalid_messages_are_split_by_stage():
    good = [message(feedback(f"fe-{i}"), message_id=f"m-{i}") for i in range(3)]
    truncated = PubsubMessage(good[0].data[:7], dict(good[0].attributes), message_id="m-trunc")
    out_of_range = message(feedback("fe-bad", nps_score=11), message_id="m-range")
    garbage_json = PubsubMessage(
        b"{nope", {"googclient_schemaencoding": "JSON"}, message_id="m-json"
    )

    with TestPipeline(runner="FnApiRunner") as p:
        valid, dead = (
            p
            | beam.Create([*good, truncated, out_of_range, garbage_json])
            | DecodeAndValidate("feedback", READER)
        )
        assert_that(
            valid | "Ids" >> beam.Map(lambda r: r["event_id"]),
            equal_to(["fe-0", "fe-1", "fe-2"]),
            label="ValidRows",
        )
        assert_that(
            dead | "Stages" >> beam.Map(lambda d: (d["message_id"], d["stage"], d["payload"])),
            equal_to(
                [
                    ("m-trunc", "DECODE", good[0].data[:7]),  # raw bytes kept as received
                    ("m-range", "SEMANTIC", out_of_range.data),
                    ("m-json", "DECODE", b"{nope"),
                ]
            ),
            label="DeadLetters",
        )


def test_rows_carry_ingest_metadata_and_event_time():
    record = feedback("fe-9")
    with TestPipeline(runner="FnApiRunner") as p:
        valid, _ = (
            p
            | beam.Create([message(record, message_id="m-9")])
            | DecodeAndValidate("feedback", READER)
        )

        class StampFn(beam.DoFn):
            def process(self, row, ts=beam.DoFn.TimestampParam):
                yield (row["message_id"], row["schema_revision"], int(ts.micros // 1000))

        assert_that(
            valid | beam.ParDo(StampFn()),
            equal_to([("m-9", READER.revision, record["occurred_at"])]),
        )


def test_newer_writer_revision_is_accepted_when_registered():
    v2 = v2_feedback_schema()
    record = {**feedback("fe-v2"), "language": "fr"}
    msg = PubsubMessage(encode_binary(v2, record), attributes_for(v2, record), message_id="m-v2")
    with TestPipeline(runner="FnApiRunner") as p:
        valid, dead = (
            p
            | beam.Create([msg])
            | DecodeAndValidate("feedback", READER, writer_schemas_dir=str(WRITER_SCHEMAS))
        )
        assert_that(
            valid | beam.Map(lambda r: (r["event_id"], r["schema_revision"])),
            equal_to([("fe-v2", schemas.schema_revision(v2))]),
            label="Accepted",
        )
        assert_that(
            dead | "CountDead" >> beam.combiners.Count.Globally(),
            equal_to([0]),
            label="NoDeadLetters",
        )
