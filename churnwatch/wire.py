"""Pub/Sub wire format: Avro BINARY (schemaless datum) by default, Avro JSON on request.

Producers mark JSON with the attribute ``googclient_schemaencoding=JSON`` (what Pub/Sub
topic schemas set) and name their writer schema revision in
``googclient_schemarevisionid``. A binary datum can only be read with the schema it was
written with, so a message naming a revision we do not know is rejected, never guessed.

Revision ids are the CRC-64-AVRO fingerprint of an ``.avsc`` (what our producers stamp)
or a real Pub/Sub schema revision id (what a topic with a schema stamps, e.g.
``a1b2c3d4``), listed under ``churnwatch.pubsub_revisions`` in the ``.avsc`` it was
committed from (see the README, "Schema revisions on real Pub/Sub").

JSON is parsed strictly before Avro sees it: duplicate keys, ``NaN`` / ``Infinity`` /
overflowing numbers and nesting beyond :data:`MAX_JSON_DEPTH` are rejected, and every
value is type-checked against the writer schema (fastavro's JSON reader would store
``"nine"`` as an int or ``5.7`` as a long).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import fastavro
from fastavro import schemaless_reader, schemaless_writer

from churnwatch.schemas import RecordSchema, record_schema, schema_revision, strip_logical_types

ENCODING_ATTRIBUTE = "googclient_schemaencoding"
REVISION_ATTRIBUTE = "googclient_schemarevisionid"
EVENT_TIME_ATTRIBUTE = "occurred_at"  # epoch millis, for readers that stamp by attribute
ENCODINGS = ("BINARY", "JSON")
#: ``.avsc`` attribute listing the Pub/Sub schema revision ids that file was committed as.
PUBSUB_REVISIONS = "churnwatch.pubsub_revisions"
#: Our records are flat; Avro JSON wraps a union in one object. Anything deeper is hostile.
MAX_JSON_DEPTH = 8
#: Longest excerpt of a bad value quoted in a dead letter's reason.
QUOTE_CHARS = 60


def quote(value: Any) -> str:
    """``repr`` of a value, cut to :data:`QUOTE_CHARS` (a 10 MB id must not become a reason)."""
    text = repr(value)
    if len(text) <= QUOTE_CHARS:
        return text
    return f"{text[:QUOTE_CHARS]}... ({len(text):,} chars)"


class DecodeError(ValueError):
    """The payload is not Avro / JSON at all (stage DECODE)."""


class SchemaMismatch(ValueError):
    """The payload parses but does not fit the record schema (stage SCHEMA)."""


class UnknownRevision(SchemaMismatch):
    """The message names a writer revision that is not registered (stage SCHEMA)."""


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
    Avro resolution then maps them onto the reader schema. Each file may also list the
    real Pub/Sub revision ids it was committed as (:data:`PUBSUB_REVISIONS`).
    """

    def __init__(self, reader: RecordSchema, extra: Iterable[dict] = ()) -> None:
        self.reader = reader
        self._reader_plain = reader.parsed_plain
        self._writers: dict[str, dict] = {reader.revision: self._reader_plain}
        self._aliases: dict[str, str] = {}  # Pub/Sub revision id -> fingerprint
        self._add_aliases(reader.raw, reader.revision)
        for raw in extra:
            if raw.get("name") == reader.name:
                revision = schema_revision(raw)
                self._writers.setdefault(revision, _plain(raw))
                self._add_aliases(raw, revision)

    def _add_aliases(self, raw: dict, revision: str) -> None:
        for pubsub_id in raw.get(PUBSUB_REVISIONS, ()):
            self._aliases[str(pubsub_id)] = revision

    @classmethod
    def from_dir(cls, reader: RecordSchema, directory: str | Path | None) -> WriterSchemas:
        return cls(reader, load_writer_dir(directory)) if directory else cls(reader)

    @property
    def revisions(self) -> tuple[str, ...]:
        return tuple(self._writers) + tuple(self._aliases)

    def resolve(self, attributes: Mapping[str, str]) -> str:
        """Our revision (fingerprint) for a message's revision attribute; absent = reader."""
        named = attributes.get(REVISION_ATTRIBUTE)
        if not named:
            return self.reader.revision
        revision = self._aliases.get(named, named)
        if revision not in self._writers:
            raise UnknownRevision(
                f"unknown writer schema revision {quote(named)} in {REVISION_ATTRIBUTE}; "
                f"known for {self.reader.name}: {', '.join(self.revisions)} "
                "(register the writer's .avsc with --writer_schemas_dir)"
            )
        return revision

    def decode(self, data: bytes, attributes: Mapping[str, str] | None) -> tuple[dict, str]:
        """Return (record, writer revision). Raises DecodeError or SchemaMismatch."""
        attributes = attributes or {}
        encoding = attributes.get(ENCODING_ATTRIBUTE, "BINARY")
        if encoding.upper() not in ENCODINGS:
            raise DecodeError(
                f"unknown {ENCODING_ATTRIBUTE} {quote(encoding)}: expected BINARY or JSON"
            )
        revision = self.resolve(attributes)
        writer = self._writers[revision]
        if encoding.upper() == "JSON":
            return self._decode_json(data, writer), revision
        return self._decode_binary(data, writer, revision), revision

    def _decode_binary(self, data: bytes, writer: dict, revision: str) -> dict:
        buf = io.BytesIO(data)
        try:
            if writer is self._reader_plain:
                record = schemaless_reader(buf, writer, None)
            else:
                record = schemaless_reader(buf, writer, self._reader_plain)
        except (EOFError, StopIteration) as exc:
            raise DecodeError(f"truncated Avro datum ({len(data)} bytes): {exc}") from exc
        except IndexError as exc:
            # fastavro indexes enum symbols and union branches straight from the datum
            raise SchemaMismatch(
                f"enum or union index out of range in a {self.reader.name} datum "
                f"(revision {revision}): {exc}"
            ) from exc
        except (UnicodeDecodeError, ValueError, TypeError, KeyError, OverflowError) as exc:
            raise SchemaMismatch(f"not a {self.reader.name} datum: {exc!r}") from exc
        except Exception as exc:  # fastavro raises assorted internals on garbage
            raise DecodeError(f"undecodable Avro datum: {exc!r}") from exc
        if buf.tell() != len(data):
            raise SchemaMismatch(
                f"{len(data) - buf.tell()} trailing bytes after a {self.reader.name} datum "
                f"of revision {revision}: written with another schema?"
            )
        return record

    def _decode_json(self, data: bytes, writer: dict) -> dict:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"not JSON: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
        value = parse_strict_json(text)
        if not isinstance(value, dict):
            raise SchemaMismatch(
                f"JSON {type(value).__name__} where a {self.reader.name} object belongs"
            )
        problems = json_type_errors(value, writer)
        if problems:
            raise SchemaMismatch("; ".join(problems))
        try:
            reader = fastavro.json_reader(io.StringIO(text), writer, self._reader_plain)
            return next(iter(reader))
        except StopIteration as exc:
            raise DecodeError("empty JSON payload") from exc
        except Exception as exc:
            raise SchemaMismatch(f"JSON does not fit {self.reader.name}: {exc!r}") from exc


def load_writer_dir(directory: str | Path) -> list[dict]:
    """Every ``*.avsc`` in ``directory``; a missing folder or a broken file names itself."""
    folder = Path(directory)
    if not folder.is_dir():
        raise ValueError(f"--writer_schemas_dir {str(folder)!r} is not a directory")
    out = []
    for path in sorted(folder.glob("*.avsc")):
        try:
            out.append(record_schema(json.loads(path.read_text())).raw)
        except Exception as exc:
            raise ValueError(f"writer schema {path} is not a valid Avro record: {exc}") from exc
    return out


class _Duplicate(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(f"duplicate JSON key {quote(key)}")
        out[key] = value
    return out


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-finite JSON number {name}")


def _json_depth_exceeds(text: str, limit: int) -> bool:
    """Bracket depth outside strings, without recursion (json.loads would recurse)."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def parse_strict_json(text: str) -> Any:
    """``json.loads`` that refuses duplicate keys, NaN/Infinity and deep nesting (DecodeError)."""
    if _json_depth_exceeds(text, MAX_JSON_DEPTH):
        raise DecodeError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(
            text, object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant
        )
    except _Duplicate as exc:
        raise DecodeError(str(exc)) from exc
    except RecursionError as exc:  # belt and braces: the depth scan should have caught it
        raise DecodeError("JSON nested too deeply") from exc
    except ValueError as exc:
        raise DecodeError(f"not JSON: {exc}") from exc


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "bytes": (str,),
    "int": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    "boolean": (bool,),
}
_INT_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def _branch_name(schema: Any) -> str:
    if isinstance(schema, dict):
        return schema.get("name") or schema["type"]
    return schema


def _type_error(value: Any, schema: Any, path: str) -> str | None:
    """Why ``value`` (parsed Avro JSON) is not of Avro type ``schema``; None if it is."""
    if isinstance(schema, list):  # union: null, a bare value of a branch, or {"branch": value}
        if value is None:
            return None if "null" in schema else f"{path} is null but not nullable"
        if isinstance(value, dict) and len(value) == 1:
            ((name, inner),) = value.items()
            for branch in schema:
                if _branch_name(branch) in (name, name.rsplit(".", 1)[-1]):
                    return _type_error(inner, branch, path)
        errors = [_type_error(value, b, path) for b in schema if b != "null"]
        return None if any(e is None for e in errors) else errors[-1]
    if isinstance(schema, dict):
        kind = schema["type"]
        if kind == "enum":
            if not isinstance(value, str):
                return f"{path}={quote(value)} is not an enum symbol (a string)"
            return None  # unknown symbols are fastavro's to report, with the symbol list
        if kind == "record":
            if not isinstance(value, dict):
                return f"{path}={quote(value)} is not an object"
            for f in schema["fields"]:
                if f["name"] in value:
                    problem = _type_error(
                        value[f["name"]], f["type"], f"{path}.{f['name']}" if path else f["name"]
                    )
                    if problem:
                        return problem
            return None
        if kind == "array":
            if not isinstance(value, list):
                return f"{path}={quote(value)} is not an array"
            return next((p for v in value if (p := _type_error(v, schema["items"], path))), None)
        if kind == "map":
            if not isinstance(value, dict):
                return f"{path}={quote(value)} is not an object"
            return next(
                (p for v in value.values() if (p := _type_error(v, schema["values"], path))), None
            )
        return _type_error(value, kind, path)
    if schema == "null":
        return None if value is None else f"{path}={quote(value)} is not null"
    expected = _JSON_TYPES.get(schema)
    if expected is None:
        return None
    if (isinstance(value, bool) and schema != "boolean") or not isinstance(value, expected):
        return f"{path}={quote(value)} is a JSON {_json_kind(value)}, not an Avro {schema}"
    if schema in _INT_RANGE:
        lo, hi = _INT_RANGE[schema]
        if not lo <= value <= hi:
            return f"{path}={quote(value)} does not fit an Avro {schema}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path} is not a finite number (overflows a double)"
    return None


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number with a fraction" if math.isfinite(value) and value % 1 else "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def json_type_errors(value: dict, schema: dict) -> list[str]:
    """Type problems of a parsed Avro JSON record against a (parsed) writer schema."""
    problem = _type_error(value, schema, "")
    return [problem] if problem else []
