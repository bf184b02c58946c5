"""DecodeAndValidate: Pub/Sub messages in, valid event rows and dead letters out.

    PubsubMessage ─ decode (Avro binary / JSON, writer-schema resolution) ─┐
                  ─ semantic rules from the schema annotations ───────────┤
                    valid rows (dicts, event time = occurred_at) <────────┤
                    dead_letters (raw bytes + stage + reason) <───────────┘

Every message leaves as exactly one of the two; both counts are Beam metrics.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import TimestampedValue

from churnwatch.clock import now_ms
from churnwatch.dead_letters import dead_letter, to_millis
from churnwatch.schemas import RecordSchema
from churnwatch.validation import RecordRules
from churnwatch.wire import DecodeError, SchemaMismatch, WriterSchemas

VALID = "valid"
DEAD_LETTERS = "dead_letters"
#: A dead letter's reason stays readable: messages are quoted short, the whole is capped.
MAX_REASON_CHARS = 2_000


class _DecodeValidateFn(beam.DoFn):
    """Pure apart from metrics: bytes → row or dead letter."""

    def __init__(self, source: str, writers: WriterSchemas, future_tolerance_s: float) -> None:
        self.source = source
        self.writers = writers
        self.future_tolerance_s = future_tolerance_s
        self.rules: RecordRules | None = None
        self.event_time_field: str | None = None
        self._record: dict = {}
        self._revision = ""

    def setup(self) -> None:
        self.rules = RecordRules(self.writers.reader, self.future_tolerance_s)
        self.event_time_field = self.writers.reader.event_time_field
        self.valid_count = Metrics.counter("decode", f"{self.source}_valid")
        self.rejected = {
            stage: Metrics.counter("decode", f"{self.source}_dead_{stage.lower()}")
            for stage in ("DECODE", "SCHEMA", "SEMANTIC")
        }

    def process(self, message: Any):
        data: bytes = message.data if hasattr(message, "data") else message
        attributes = getattr(message, "attributes", None) or {}
        message_id = getattr(message, "message_id", None)
        publish_time = getattr(message, "publish_time", None)
        stage, error = self._check(data, attributes)
        if stage is not None:
            self.rejected[stage].inc()
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTERS,
                dead_letter(
                    source=self.source,
                    payload=data,
                    stage=stage,
                    error=error[:MAX_REASON_CHARS],
                    message_id=message_id,
                    publish_time=publish_time,
                    attributes=attributes,
                ),
            )
            return
        record = self._record
        record["message_id"] = message_id
        record["publish_time"] = to_millis(publish_time)
        record["schema_revision"] = self._revision
        self.valid_count.inc()
        yield TimestampedValue(record, record[self.event_time_field] / 1000.0)

    def _check(self, data: Any, attributes: dict) -> tuple[str | None, str]:
        """(stage, reason) of the first failing step, or (None, "") with the record kept.

        Any exception becomes a dead letter of the step it happened in: a poison message
        must never escape the DoFn (the runner would retry or fail the whole bundle).
        """
        try:
            if not isinstance(data, bytes):
                return "DECODE", f"payload is {type(data).__name__}, not bytes"
            self._record, self._revision = self.writers.decode(data, attributes)
        except DecodeError as exc:
            return "DECODE", str(exc)
        except SchemaMismatch as exc:
            return "SCHEMA", str(exc)
        except RecursionError:
            return "DECODE", "payload nested too deeply to decode"
        except Exception as exc:
            return "DECODE", f"unexpected {type(exc).__name__} while decoding: {exc}"
        try:
            problems = self.rules.errors(self._record, now_ms())
        except Exception as exc:
            return "SEMANTIC", f"unexpected {type(exc).__name__} while validating: {exc}"
        if problems:
            return "SEMANTIC", "; ".join(problems)
        return None, ""


class DecodeAndValidate(beam.PTransform):
    """Decode one source's messages against its schema; returns (valid, dead_letters).

    Args:
      source: short name of the input (``feedback`` / ``customer``), used in metrics and
        dead letters.
      reader: the record schema rows are read into.
      writer_schemas_dir: optional folder of newer writer revisions (``*.avsc``).
      future_tolerance_s: how far ahead of the wall clock an event time may be.
    """

    def __init__(
        self,
        source: str,
        reader: RecordSchema,
        writer_schemas_dir: str | None = None,
        future_tolerance_s: float = 300.0,
    ) -> None:
        super().__init__()
        self.source = source
        self.writers = WriterSchemas.from_dir(reader, writer_schemas_dir)
        self.future_tolerance_s = future_tolerance_s

    def expand(self, messages):
        results = messages | "DecodeValidate" >> beam.ParDo(
            _DecodeValidateFn(self.source, self.writers, self.future_tolerance_s)
        ).with_outputs(DEAD_LETTERS, main=VALID)
        return results[VALID], results[DEAD_LETTERS]
