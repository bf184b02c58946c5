"""Which BG/NBD parameters a run uses: a fitted file, or the ones shipped with the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from churnwatch.model.bgnbd import BGNBDParams


def load_params(path: Path | None) -> BGNBDParams:
    """Parameters written by ``churnwatch fit``, or the packaged defaults when ``path`` is None."""
    if path is None:
        return BGNBDParams.from_json(
            resources.files("churnwatch.model").joinpath("default_params.json").read_text()
        )
    return BGNBDParams.load(path)
