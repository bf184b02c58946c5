"""Structured logs: JSON lines with Cloud Logging's severity, identifiers but no payloads."""

from __future__ import annotations

import io
import json
import logging

import pytest

from churnwatch import logs
from transforms.bigquery_io import _CountFailures


@pytest.fixture
def captured():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    logs.configure(verbose=True, stream=stream, fmt="json")
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_record_is_one_json_line_with_severity_and_fields(captured):
    log = logging.getLogger("churnwatch.test")
    log.info("delivered alert", extra={"json_fields": {"alert_id": "a1", "attempts": 2}})
    log.warning("slow")
    try:
        raise RuntimeError("row {'comment': 'my card 4111-1111'} refused")
    except RuntimeError:
        log.exception("write failed")
    info, warning, error = lines(captured)
    assert (info["severity"], info["message"], info["alert_id"], info["attempts"]) == (
        "INFO", "delivered alert", "a1", 2,
    )  # fmt: skip
    assert warning["severity"] == "WARNING"
    assert info["logging.googleapis.com/sourceLocation"]["function"].startswith("test_each")
    # An exception is logged by type: its text (here a row with card data) stays out.
    assert error["severity"] == "ERROR" and error["error_type"] == "RuntimeError"
    assert "4111" not in captured.getvalue()


def test_refused_bigquery_rows_are_logged_without_the_row(captured):
    # Before: logging.error("... %s", str(failure)[:2000]) wrote the raw row to the log.
    row = {"message_id": "m-7", "payload": "free text from a customer: call me at 555-0100"}
    errors = [{"reason": "invalid", "location": "payload", "message": "bad value 555-0100"}]
    fn = _CountFailures()
    fn.setup()
    list(fn.process(("proj:ds.dead_letters", row, errors)) or [])
    (entry,) = lines(captured)
    assert entry["severity"] == "ERROR" and entry["message"] == "BigQuery refused a dead letter row"
    assert (entry["message_id"], entry["reasons"], entry["locations"]) == (
        "m-7", ["invalid"], ["payload"],
    )  # fmt: skip
    assert "555-0100" not in captured.getvalue()


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="CHURNWATCH_LOG_FORMAT"):
        logs.configure(fmt="xml")
