"""The packaged risk model (fitted on the tuning world) and loading a user's own."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from churnwatch.model.risk import RiskModel

PACKAGED = "default_risk.json"


def load_model(path: str | Path | None = None) -> RiskModel:
    """``path`` from `churnwatch fit`, or the packaged model when None.

    Errors name the file: a missing file, a BG/NBD-only parameter file or a model written
    for other features all fail here, before any pipeline is built.
    """
    if path is None:
        text = resources.files("churnwatch.model").joinpath(PACKAGED).read_text()
        return RiskModel.from_json(text)
    try:
        return RiskModel.load(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"risk model {path}: {exc}") from exc
