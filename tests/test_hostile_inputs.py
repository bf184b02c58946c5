"""Hostile messages: each one becomes exactly one dead letter with its stage and a reason.

The table below is the contract (and the closing note of issue 16 quotes it): one row per
hostile input, the stage it is rejected in and a piece of the reason a reader sees.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import apache_beam as beam
import pytest
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from churnwatch import schemas
from churnwatch.wire import (
    ENCODING_ATTRIBUTE,
    REVISION_ATTRIBUTE,
    WriterSchemas,
    attributes_for,
    encode_binary,
    encode_json,
    load_writer_dir,
)
from tests.helpers import customer, feedback
from transforms.decode import DecodeAndValidate
from transforms.pubsub_local import event_timestamp

FEEDBACK = schemas.load(schemas.FEEDBACK_EVENT)
CUSTOMER = schemas.load(schemas.CUSTOMER_EVENT)
JSON_ATTRS = {ENCODING_ATTRIBUTE: "JSON"}


def _json(record: dict, schema=FEEDBACK, **overrides) -> bytes:
    """Avro JSON of a valid record, then fields overwritten with raw JSON values."""
    doc = json.loads(encode_json(schema, record))
    doc.update(overrides)
    return json.dumps(doc).encode()


def _json_text(record: dict, field: str, raw_value: str, schema=FEEDBACK) -> bytes:
    """Like :func:`_json` but with a literal JSON token (NaN, 1e999) json.dumps cannot write."""
    doc = json.loads(encode_json(schema, record))
    doc[field] = "__HOLE__"
    return json.dumps(doc).replace('"__HOLE__"', raw_value).encode()


def _bad_enum_index() -> bytes:
    """A binary datum whose channel index (50) is past the 7 symbols the reader knows."""
    wider = copy.deepcopy(FEEDBACK.raw)
    wider["fields"][3]["type"]["symbols"] = [f"S{i}" for i in range(60)]
    return encode_binary(wider, {**feedback(), "channel": "S50"})


def _duplicate_keys() -> bytes:
    text = encode_json(FEEDBACK, feedback()).decode()
    return ('{"event_id": "fe-evil", ' + text[1:]).encode()


# (case, source, payload, attributes, stage, reason excerpt)
HOSTILE = [
    ("nested JSON", "feedback", b"[" * 100_000 + b"]" * 100_000, JSON_ATTRS,
     "DECODE", "JSON nested deeper than 8 levels"),
    ("customer_id: 12345", "feedback", _json(feedback(), customer_id=12345), JSON_ATTRS,
     "SCHEMA", "customer_id=12345 is a JSON integer, not an Avro string"),
    ("event_id: 7", "feedback", _json(feedback(), event_id=7), JSON_ATTRS,
     "SCHEMA", "event_id=7 is a JSON integer, not an Avro string"),
    ('nps_score: "nine"', "feedback", _json(feedback(), nps_score="nine"), JSON_ATTRS,
     "SCHEMA", "nps_score='nine' is a JSON string, not an Avro int"),
    ('occurred_at: "yesterday"', "feedback", _json(feedback(), occurred_at="yesterday"),
     JSON_ATTRS, "SCHEMA", "occurred_at='yesterday' is a JSON string, not an Avro long"),
    ("nps_score: 5.7 (an int)", "feedback", _json(feedback(), nps_score={"int": 5.7}),
     JSON_ATTRS, "SCHEMA", "nps_score=5.7 is a JSON number with a fraction, not an Avro int"),
    ("occurred_at: 2**70", "feedback", _json(feedback(), occurred_at=2**70), JSON_ATTRS,
     "SCHEMA", "does not fit an Avro long"),
    ("duplicate JSON key", "feedback", _duplicate_keys(), JSON_ATTRS,
     "DECODE", "duplicate JSON key 'event_id'"),
    ("amount: NaN", "customer", _json_text(customer(), "amount", "NaN", CUSTOMER), JSON_ATTRS,
     "DECODE", "non-finite JSON number NaN"),
    ("amount: Infinity", "customer", _json_text(customer(), "amount", "Infinity", CUSTOMER),
     JSON_ATTRS, "DECODE", "non-finite JSON number Infinity"),
    ("amount: 1e999", "customer", _json_text(customer(), "amount", "1e999", CUSTOMER),
     JSON_ATTRS, "SCHEMA", "amount is not a finite number"),
    ("amount: 1e308", "customer", _json(customer(), CUSTOMER, amount={"double": 1e308}), JSON_ATTRS,
     "SEMANTIC", "amount=1e+308 above maximum 1000000000"),
    ("binary amount +inf", "customer",
     encode_binary(CUSTOMER, customer(amount=float("inf"))), {},
     "SEMANTIC", "amount=inf is not a finite number"),
    ("encoding XML", "feedback", encode_binary(FEEDBACK, feedback()),
     {ENCODING_ATTRIBUTE: "XML"}, "DECODE", "unknown googclient_schemaencoding 'XML'"),
    ("enum index 50 of 7", "feedback", _bad_enum_index(), {},
     "SCHEMA", "enum or union index out of range"),
    ("10 MB event_id", "feedback", encode_binary(FEEDBACK, feedback("e" * 10_000_000)), {},
     "SEMANTIC", "event_id is 10,000,000 characters long (max_length 128)"),
    ("20k chars of text", "feedback", encode_binary(FEEDBACK, feedback(text="x" * 20_000)), {},
     "SEMANTIC", "text is 20,000 characters long (max_length 10000)"),
    ("unknown revision", "feedback", encode_binary(FEEDBACK, feedback()),
     {REVISION_ATTRIBUTE: "a1b2c3d4"}, "SCHEMA", "unknown writer schema revision 'a1b2c3d4'"),
    ("JSON not UTF-8", "feedback", b'{"event_id": "\xff"}', JSON_ATTRS,
     "DECODE", "not UTF-8"),
    ("JSON array", "feedback", b"[1, 2]", JSON_ATTRS,
     "SCHEMA", "JSON list where a FeedbackEvent object belongs"),
]  # fmt: skip


def test_every_hostile_message_is_one_dead_letter_with_stage_and_reason():
    messages = {
        source: [
            PubsubMessage(payload, attrs, message_id=case)
            for case, src, payload, attrs, _, _ in HOSTILE
            if src == source
        ]
        for source in ("feedback", "customer")
    }
    expected = [(case, stage) for case, _, _, _, stage, _ in HOSTILE]
    excerpts = {case: excerpt for case, _, _, _, _, excerpt in HOSTILE}

    with TestPipeline(runner="FnApiRunner") as p:
        outs = {}
        for source, reader in (("feedback", FEEDBACK), ("customer", CUSTOMER)):
            outs[source] = (
                p
                | f"Create{source}" >> beam.Create(messages[source])
                | f"Decode{source}" >> DecodeAndValidate(source, reader)
            )
        valid = (outs["feedback"][0], outs["customer"][0]) | "Valid" >> beam.Flatten()
        dead = (outs["feedback"][1], outs["customer"][1]) | "Dead" >> beam.Flatten()
        assert_that(valid, equal_to([]), label="NoRows")

        def check(letter):
            # The reason names the problem; raw bytes are kept as received.
            case = letter["message_id"]
            assert excerpts[case] in letter["error"], (case, letter["error"])
            assert len(letter["error"]) <= 2_000
            return case, letter["stage"]

        assert_that(dead | beam.Map(check), equal_to(expected), label="OneDeadLetterEach")


def test_nanosecond_event_time_attribute_falls_back_and_the_row_keeps_its_own_time():
    record = feedback("fe-ns")
    attrs = {**attributes_for(FEEDBACK, record), "occurred_at": str(record["occurred_at"] * 10**6)}
    published = datetime(2026, 1, 2, tzinfo=UTC)
    msg = PubsubMessage(encode_binary(FEEDBACK, record), attrs, "m-ns", published)
    assert event_timestamp(msg).micros == int(published.timestamp() * 1e6)  # no OverflowError
    garbage = PubsubMessage(b"", {"occurred_at": "yesterday"}, "m-g", published)
    assert event_timestamp(garbage).micros == int(published.timestamp() * 1e6)

    class Stamp(beam.DoFn):
        def process(self, row, ts=beam.DoFn.TimestampParam):
            yield row["event_id"], int(ts.micros // 1000)

    with TestPipeline(runner="FnApiRunner") as p:
        valid, _ = p | beam.Create([msg]) | DecodeAndValidate("feedback", FEEDBACK)
        assert_that(valid | beam.ParDo(Stamp()), equal_to([("fe-ns", record["occurred_at"])]))


def test_a_pubsub_revision_id_maps_to_the_avsc_it_was_committed_from(tmp_path):
    committed = {**FEEDBACK.raw, "churnwatch.pubsub_revisions": ["a1b2c3d4"]}
    (tmp_path / "feedback_event.avsc").write_text(json.dumps(committed))
    writers = WriterSchemas(FEEDBACK, load_writer_dir(tmp_path))
    record = feedback("fe-pubsub")
    decoded, revision = writers.decode(
        encode_binary(FEEDBACK, record), {REVISION_ATTRIBUTE: "a1b2c3d4"}
    )
    assert decoded == record
    assert revision == FEEDBACK.revision  # rows record our fingerprint, not the alias


def test_a_broken_writer_schema_names_its_file_and_a_missing_folder_is_refused(tmp_path):
    (tmp_path / "feedback_event_v3.avsc").write_text('{"type": "record", "name": "X"')
    with pytest.raises(ValueError, match=r"feedback_event_v3\.avsc"):
        load_writer_dir(tmp_path)
    with pytest.raises(ValueError, match="is not a directory"):
        load_writer_dir(tmp_path / "nope")


def test_options_refuse_a_missing_writer_schemas_dir(tmp_path):
    from pipelines.options import ChurnwatchOptions

    options = ChurnwatchOptions(
        [
            "--feedback_subscription=projects/churnwatch-test/subscriptions/fb",
            "--customer_subscription=projects/churnwatch-test/subscriptions/cu",
            f"--writer_schemas_dir={tmp_path / 'missing'}",
        ]
    )
    with pytest.raises(ValueError, match="is not a directory"):
        options.validate_churnwatch()
