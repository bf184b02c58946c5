"""Validation outcomes -> ``quality_results`` rows and ``DATA_QUALITY`` alerts. Pure, no GX."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from churnwatch.alerts import alert_row
from churnwatch.routing import RoutingPolicy

MODEL_VERSION = "quality-gx-v1"
WAREHOUSE, STREAM = "WAREHOUSE", "STREAM"


@dataclass(frozen=True)
class Outcome:
    """One expectation's result in one run, flattened from GX."""

    suite: str
    expectation_id: str
    expectation_type: str
    column: str | None
    kwargs: str  # JSON
    success: bool
    observed_value: str | None  # JSON
    unexpected_count: int | None
    element_count: int | None


def _plain(value: Any) -> Any:
    """JSON-safe copy: NaN (pandas' missing value) becomes null, odd types become str."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return _plain(value.item())
    return str(value)


def to_json(value: Any) -> str:
    return json.dumps(_plain(value), sort_keys=True, allow_nan=False)


def result_rows(
    outcomes: list[Outcome],
    run_id: str,
    source: str,
    checked_at_ms: int,
    window: tuple[int, int] | None = None,
) -> list[dict[str, Any]]:
    """QualityResult rows (schemas/quality_result.avsc), one per outcome."""
    start, end = window if window else (None, None)
    return [
        {
            "run_id": run_id,
            "suite": o.suite,
            "source": source,
            "expectation_id": o.expectation_id,
            "expectation_type": o.expectation_type,
            "column_name": o.column,
            "kwargs": o.kwargs,
            "success": o.success,
            "observed_value": o.observed_value,
            "unexpected_count": o.unexpected_count,
            "element_count": o.element_count,
            "window_start": start,
            "window_end": end,
            "checked_at": checked_at_ms,
        }
        for o in outcomes
    ]


def stream_run_id(suite: str, window_start_ms: int, window_end_ms: int, pane_index: int) -> str:
    """Deterministic: a replayed or re-fired pane writes the same rows (first write wins)."""
    return f"stream:{suite}:{window_start_ms}:{window_end_ms}:p{pane_index}"


def quality_alert_id(suite: str, window_start_ms: int, window_end_ms: int) -> str:
    """One alert per suite and window: later panes of the same window give the same id."""
    key = f"DATA_QUALITY|{suite}|{window_start_ms}|{window_end_ms}"
    return "quality-" + hashlib.sha256(key.encode()).hexdigest()[:24]


def severity(failed: list[Outcome]) -> str:
    """A broken required field or key is HIGH; null rates and ranges alone are MEDIUM."""
    hard = any(o.expectation_id.endswith((".not_null", ".unique")) for o in failed)
    return "HIGH" if hard or len(failed) >= 3 else "MEDIUM"


def quality_alert(
    suite: str,
    window: tuple[int, int],
    outcomes: list[Outcome],
    policy: RoutingPolicy,
    processed_at_ms: int,
    example_ids: list[str] | None = None,
) -> dict[str, Any] | None:
    """A DATA_QUALITY ChurnAlert row for a window with failed expectations, else None."""
    failed = [o for o in outcomes if not o.success]
    if not failed:
        return None
    level = severity(failed)
    route = policy.route("DATA_QUALITY", level, 0.0)
    start, end = window
    rows = max((o.element_count or 0 for o in outcomes), default=0)
    return alert_row(
        alert_id=quality_alert_id(suite, start, end),
        alert_type="DATA_QUALITY",
        severity=level,
        topic=suite,
        detected_at=end,
        processed_at=processed_at_ms,
        revenue_at_risk=0.0,
        reason_codes=[f"failed:{o.expectation_id}" for o in failed] + [f"rows={rows}"],
        example_event_ids=list(example_ids or [])[:5],
        owner=route.owner,
        authority_limit=route.authority_limit,
        model_version=MODEL_VERSION,
    )
