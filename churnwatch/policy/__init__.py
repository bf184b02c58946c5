"""Packaged policy files (routing, quality rules) and the one way they are read."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml


def read_policy_yaml(
    path: str | Path | None, packaged: str, error: type[Exception], what: str
) -> tuple[Any, str]:
    """``(parsed YAML, source name)`` of ``path`` or of the packaged file ``packaged``.

    Unreadable files and invalid YAML raise ``error`` naming the file, so a bad policy
    stops the start with a message that says what to fix.
    """
    if path is None:
        text = resources.files(__name__).joinpath(packaged).read_text()
        source = f"churnwatch/policy/{packaged}"
    else:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise error(f"cannot read {what} {path}: {exc}") from exc
        source = str(path)
    try:
        return yaml.safe_load(text), source
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML: {exc}") from exc
