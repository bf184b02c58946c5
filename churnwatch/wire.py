"""Pub/Sub wire format: Avro BINARY (schemaless datum) by default, Avro JSON on request.

Producers mark JSON with the attribute ``googclient_schemaencoding=JSON`` (what Pub/Sub
topic schemas set) and name their writer schema revision in
``googclient_schemarevisionid``. A binary datum can only be read with the schema it was
written with, so unknown revisions are tried against the reader schema and rejected
unless the bytes are consumed exactly.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import fastavro
from fastavro import schemaless_reader, schemaless_writer

from churnwatch.schemas import RecordSchema, record_schema, schema_revision, strip_logical_types

ENCODING_ATTRIBUTE = "googclient_schemaencoding"
REVISION_ATTRIBUTE = "googclient_schemarevisionid"
EVENT_TIME_ATTRIBUTE = "occurred_at"  # epoch millis, for readers that stamp by attribute


class DecodeError(ValueError):
    """The payload is not Avro / JSON at all (stage DECODE)."""


class SchemaMismatch(ValueError):
    """The payload parses but does not fit the record schema (stage SCHEMA)."""


def encode_binary(schema: RecordSchema | dict, record: Mapping[str, Any]) -> bytes:
    parsed = schema.parsed_plain if isinstance(schema, RecordSchema) else _plain(schema)
    buf = io.BytesIO()
    schemaless_writer(buf, parsed, record)
    return buf.getvalue()


def encode_json(schema: RecordSchema | dict, record: Mapping[str, Any]) -> bytes:
    """Avro JSON encoding (unions wrapped as ``{"type": value}``), one datum."""
    parsed = schema.parsed_plain if isinstance(schema, RecordSchema) else _plain(schema)
    buf = io.StringIO()
    fastavro.json_writer(buf, parsed, [dict(record)])
    return buf.getvalue().strip().encode()


def attributes_for(
    schema: RecordSchema | dict, record: Mapping[str, Any], encoding: str = "BINARY"
) -> dict[str, str]:
    raw = schema.raw if isinstance(schema, RecordSchema) else schema
    attrs = {ENCODING_ATTRIBUTE: encoding, REVISION_ATTRIBUTE: schema_revision(raw)}
    if "occurred_at" in record:
        attrs[EVENT_TIME_ATTRIBUTE] = str(int(record["occurred_at"]))
    return attrs


def _plain(raw: dict) -> dict:
    return fastavro.parse_schema(strip_logical_types(raw))


class WriterSchemas:
    """Known writer revisions of one record, by revision id (CRC-64-AVRO fingerprint).

    The reader schema is always known. Extra revisions come from ``*.avsc`` files (for
    example a producer that already writes a newer revision with an added optional field);
    Avro resolution then maps them onto the reader schema.
    """

    def __init__(self, reader: RecordSchema, extra: Iterable[dict] = ()) -> None:
        self.reader = reader
        self._reader_plain = reader.parsed_plain
        self._writers: dict[str, dict] = {reader.revision: self._reader_plain}
        for raw in extra:
            if raw.get("name") == reader.name:
                self._writers[schema_revision(raw)] = _plain(raw)

    @classmethod
    def from_dir(cls, reader: RecordSchema, directory: str | Path | None) -> WriterSchemas:
        extra = []
        if directory:
            for path in sorted(Path(directory).glob("*.avsc")):
                extra.append(record_schema(json.loads(path.read_text())).raw)
        return cls(reader, extra)

    @property
    def revisions(self) -> tuple[str, ...]:
        return tuple(self._writers)

    def decode(self, data: bytes, attributes: Mapping[str, str] | None) -> tuple[dict, str]:
        """Return (record, writer revision). Raises DecodeError or SchemaMismatch."""
        attributes = attributes or {}
        revision = attributes.get(REVISION_ATTRIBUTE) or self.reader.revision
        writer = self._writers.get(revision)
        if attributes.get(ENCODING_ATTRIBUTE, "BINARY").upper() == "JSON":
            return self._decode_json(data, writer), revision
        if writer is None:
            # Unknown revision: only accept it if it is byte-compatible with the reader.
            writer = self._reader_plain
        return self._decode_binary(data, writer, revision), revision

    def _decode_binary(self, data: bytes, writer: dict, revision: str) -> dict:
        buf = io.BytesIO(data)
        try:
            if writer is self._reader_plain:
                record = schemaless_reader(buf, writer, None)
            else:
                record = schemaless_reader(buf, writer, self._reader_plain)
        except (EOFError, IndexError, StopIteration) as exc:
            raise DecodeError(f"truncated Avro datum ({len(data)} bytes): {exc!r}") from exc
        except (UnicodeDecodeError, ValueError, TypeError, KeyError, OverflowError) as exc:
            raise SchemaMismatch(f"not a {self.reader.name} datum: {exc!r}") from exc
        except Exception as exc:  # fastavro raises assorted internals on garbage
            raise DecodeError(f"undecodable Avro datum: {exc!r}") from exc
        if buf.tell() != len(data):
            raise SchemaMismatch(
                f"{len(data) - buf.tell()} trailing bytes after a {self.reader.name} datum: "
                f"written with unknown schema revision {revision!r}?"
            )
        return record

    def _decode_json(self, data: bytes, writer: dict | None) -> dict:
        try:
            text = data.decode("utf-8")
            json.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            raise DecodeError(f"not JSON: {exc}") from exc
        try:
            reader = fastavro.json_reader(
                io.StringIO(text), writer or self._reader_plain, self._reader_plain
            )
            return next(iter(reader))
        except StopIteration as exc:
            raise DecodeError("empty JSON payload") from exc
        except Exception as exc:
            raise SchemaMismatch(f"JSON does not fit {self.reader.name}: {exc!r}") from exc
