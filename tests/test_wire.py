"""Wire format: Avro binary and JSON, writer-schema resolution, and clear failures."""

from __future__ import annotations

import json

import pytest

from churnwatch import schemas
from churnwatch.wire import (
    ENCODING_ATTRIBUTE,
    REVISION_ATTRIBUTE,
    DecodeError,
    SchemaMismatch,
    WriterSchemas,
    attributes_for,
    encode_binary,
    encode_json,
)
from tests.helpers import feedback, v2_feedback_schema

READER = schemas.load(schemas.FEEDBACK_EVENT)


@pytest.fixture
def writers() -> WriterSchemas:
    return WriterSchemas(READER, [v2_feedback_schema()])


@pytest.mark.parametrize("encoding", ["BINARY", "JSON"])
def test_round_trip_in_both_encodings(writers, encoding):
    record = feedback(nps_score=3, topic="billing", cause="PRICE")
    data = encode_json(READER, record) if encoding == "JSON" else encode_binary(READER, record)
    decoded, revision = writers.decode(data, attributes_for(READER, record, encoding))
    assert decoded == record
    assert revision == READER.revision


def test_newer_revision_with_added_optional_field_is_resolved(writers):
    v2 = v2_feedback_schema()
    record = {**feedback(), "language": "de"}
    data = encode_binary(v2, record)
    decoded, revision = writers.decode(data, attributes_for(v2, record))
    assert revision == schemas.schema_revision(v2)
    assert "language" not in decoded  # the reader schema does not know it (yet)
    assert decoded == feedback(occurred_at=record["occurred_at"])


def test_unknown_newer_revision_is_rejected_not_misread():
    v2 = v2_feedback_schema()
    record = {**feedback(), "language": "de"}
    only_reader = WriterSchemas(READER)  # the v2 revision was never registered
    with pytest.raises(SchemaMismatch, match="unknown writer schema revision"):
        only_reader.decode(encode_binary(v2, record), attributes_for(v2, record))
    # Without a revision attribute the reader revision is assumed; the extra bytes show.
    with pytest.raises(SchemaMismatch, match="trailing bytes"):
        only_reader.decode(encode_binary(v2, record), {})


def test_truncated_binary_is_a_decode_error(writers):
    data = encode_binary(READER, feedback())
    with pytest.raises(DecodeError, match="truncated"):
        writers.decode(data[: len(data) // 2], {})


def test_empty_payload_is_a_decode_error(writers):
    with pytest.raises(DecodeError):
        writers.decode(b"", {})


def test_garbage_json_is_a_decode_error(writers):
    with pytest.raises(DecodeError, match="not JSON"):
        writers.decode(b'{"event_id": oops', {ENCODING_ATTRIBUTE: "JSON"})


def test_json_missing_a_required_field_is_a_schema_error(writers):
    body = json.loads(encode_json(READER, feedback()))
    del body["customer_id"]
    with pytest.raises(SchemaMismatch):
        writers.decode(json.dumps(body).encode(), {ENCODING_ATTRIBUTE: "JSON"})


def test_json_with_an_unknown_enum_symbol_is_a_schema_error(writers):
    body = json.loads(encode_json(READER, feedback()))
    body["channel"] = "PIGEON"
    with pytest.raises(SchemaMismatch):
        writers.decode(json.dumps(body).encode(), {ENCODING_ATTRIBUTE: "JSON"})


def test_a_foreign_record_is_rejected(writers):
    foreign = {
        "type": "record",
        "name": "ForeignOrder",
        "fields": [
            {"name": "sku", "type": "string"},
            {"name": "qty", "type": "int"},
            {"name": "price", "type": "double"},
        ],
    }
    data = encode_binary(foreign, {"sku": "SKU-1", "qty": -3, "price": 9.99})
    with pytest.raises((DecodeError, SchemaMismatch)):
        writers.decode(data, {REVISION_ATTRIBUTE: "0000000000000000"})
