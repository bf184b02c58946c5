"""Dead-letter records: the raw message kept whole, with the stage and reason it failed."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from churnwatch import __version__
from churnwatch.clock import now_ms


def to_millis(value: Any) -> int | None:
    """Publish times arrive as datetimes (Pub/Sub client), ints or None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if hasattr(value, "micros"):  # apache_beam Timestamp
        return int(value.micros // 1000)
    return int(value)


def _content_id(payload: bytes, attributes: Mapping[str, str]) -> str:
    """Identity of a message without an id: its bytes and attributes."""
    digest = hashlib.sha256(payload)
    for key in sorted(attributes):
        digest.update(f"\0{key}={attributes[key]}".encode())
    return digest.hexdigest()[:32]


def dead_letter(
    *,
    source: str,
    payload: bytes,
    stage: str,
    error: str,
    message_id: str | None = None,
    publish_time: Any = None,
    attributes: Mapping[str, str] | None = None,
    failed_at_ms: int | None = None,
) -> dict[str, Any]:
    """A DeadLetter row; its id is stable across redeliveries of the same message."""
    identity = message_id or _content_id(payload, attributes or {})
    return {
        "dead_letter_id": f"{source}:{stage}:{identity}",
        "source": source,
        "message_id": message_id,
        "publish_time": to_millis(publish_time),
        "attributes": dict(attributes or {}),
        "payload": bytes(payload),
        "stage": stage,
        "error": error[:2000],
        "pipeline_version": __version__,
        "failed_at": failed_at_ms if failed_at_ms is not None else now_ms(),
    }
