"""The marker lists in tests/conftest.py name files and tests that exist (no silent drift)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from tests.conftest import DEFAULT_MARKER, MARKED_FILES

TESTS = Path(__file__).resolve().parent


def test_every_listed_file_and_test_exists():
    for marker, names in MARKED_FILES.items():
        for name in names:
            file, _, test = name.partition("::")
            path = TESTS / file
            assert path.is_file(), f"{marker}: {file} does not exist"
            if test:
                functions = {
                    n.name for n in ast.walk(ast.parse(path.read_text())) if hasattr(n, "name")
                }
                assert test in functions, f"{marker}: {name} does not exist"


def test_every_marker_is_declared_and_strict():
    config = tomllib.loads((TESTS.parent / "pyproject.toml").read_text())["tool"]["pytest"]
    declared = {m.split(":")[0] for m in config["ini_options"]["markers"]}
    assert {*MARKED_FILES, DEFAULT_MARKER} <= declared
    assert "--strict-markers" in config["ini_options"]["addopts"]
