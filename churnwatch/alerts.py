"""The one ChurnAlert row builder: every alert type fills the schema's fields the same way.

Detection, issue spikes and data quality each say what their alert is about; the fields
they do not name take the schema's defaults (``schemas/churn_alert.avsc``), so a field
added to the schema reaches every alert type without editing three builders.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from churnwatch import schemas


@cache
def _defaults() -> tuple[dict[str, Any], frozenset[str]]:
    spec = schemas.load(schemas.CHURN_ALERT)
    defaults: dict[str, Any] = {}
    required: set[str] = set()
    for f in spec.fields:
        if f.has_default:
            defaults[f.name] = f.default
        elif f.nullable:
            defaults[f.name] = None
        else:
            required.add(f.name)
    return defaults, frozenset(required)


def alert_row(**fields: Any) -> dict[str, Any]:
    """A complete ChurnAlert row: ``fields`` over the schema's defaults.

    Raises ValueError for a field the schema does not have or a required one left out, so
    a typo fails in tests instead of writing a null column.
    """
    defaults, required = _defaults()
    unknown = set(fields) - set(defaults) - required
    if unknown:
        raise ValueError(f"ChurnAlert has no field(s) {sorted(unknown)}")
    missing = required - set(fields)
    if missing:
        raise ValueError(f"ChurnAlert needs field(s) {sorted(missing)}")
    row = {k: (list(v) if isinstance(v, list) else v) for k, v in defaults.items()}
    row.update(fields)
    return row
