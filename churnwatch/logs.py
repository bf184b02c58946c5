"""Structured logs: one JSON object per line, in the shape Cloud Logging reads.

On Cloud Run, GKE, Compute Engine with the Ops Agent and the Dataflow launcher, a JSON line
on stdout/stderr becomes a structured log entry: ``severity`` sets the level, ``message``
the summary line, ``logging.googleapis.com/sourceLocation`` the code location and every
other key lands in ``jsonPayload`` (see "Structured logging" in the Cloud Logging docs).

What goes in: a fixed message per event (``"delivered alert"``) and identifiers passed as
``extra={"json_fields": {...}}`` (alert ids, message ids, counts, stage, error *type*).
What never goes in: payloads, row contents, URLs, passwords or exception texts (they can
quote any of those); an exception is logged as its type only.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import IO, Any

FORMAT_ENV = "CHURNWATCH_LOG_FORMAT"  # "json" (default) or "text" for a terminal

_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


def severity(levelno: int) -> str:
    """Cloud Logging's LogSeverity for a Python level (custom levels round down)."""
    for level in sorted(_SEVERITY, reverse=True):
        if levelno >= level:
            return _SEVERITY[level]
    return "DEFAULT"


class CloudLoggingFormatter(logging.Formatter):
    """A log record as one JSON line with ``severity``, ``message``, ``time`` and fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": severity(record.levelno),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
            "logging.googleapis.com/sourceLocation": {
                "file": record.pathname,
                "line": str(record.lineno),
                "function": record.funcName,
            },
        }
        fields = getattr(record, "json_fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                entry.setdefault(str(key), value)
        if record.exc_info and record.exc_info[0] is not None:
            entry["error_type"] = record.exc_info[0].__name__  # the type, never its text
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """For a person at a terminal: the same fields, on one readable line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        line = f"{self.formatTime(record)} {record.levelname} {record.name}: {record.message}"
        fields = getattr(record, "json_fields", None)
        if isinstance(fields, dict) and fields:
            line += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        if record.exc_info and record.exc_info[0] is not None:
            line += f" error_type={record.exc_info[0].__name__}"
        return line


def configure(verbose: bool = False, stream: IO[str] | None = None, fmt: str | None = None):
    """Route the root logger to one handler on ``stream`` (stderr) in the chosen format."""
    fmt = (fmt or os.environ.get(FORMAT_ENV) or "json").lower()
    if fmt not in ("json", "text"):
        raise ValueError(f"{FORMAT_ENV}: expected json or text, got {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(CloudLoggingFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    return handler
