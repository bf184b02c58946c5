"""Imports point one way: commands -> pipelines -> transforms -> library (read from the AST).

Every ``import`` statement counts, also those inside functions: a lazy import still makes
the library depend on what it imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Tools: customer simulators and the Pub/Sub emulator. Commands, tests and the evaluation
#: harness use them; the core library below never does.
TOOL_MODULES = (
    "churnwatch.simulate",
    "churnwatch.renewal_world",
    "churnwatch.world_cohorts",
    "churnwatch.worlds",
    "churnwatch.emulator",
)
CORE = (
    "churnwatch.aggregation",
    "churnwatch.alerts",
    "churnwatch.customer",
    "churnwatch.detection",
    "churnwatch.model",
    "churnwatch.notify",
    "churnwatch.quality",
    "churnwatch.routing",
    "churnwatch.schemas",
    "churnwatch.spikes",
    "churnwatch.topology",
    "churnwatch.validation",
    "churnwatch.warehouse",
    "churnwatch.wire",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Absolute names imported anywhere in the file (``from a.b import c`` gives a.b, a.b.c)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(package: str, forbidden: tuple[str, ...], skip: tuple[str, ...] = ()) -> list[str]:
    found = []
    for path in files(package):
        name = module_name(path)
        if under(name, skip):
            continue
        found += [f"{name} imports {i}" for i in sorted(imported(path)) if under(i, forbidden)]
    return found


def test_the_packages_are_where_the_test_looks():
    assert len(files("churnwatch")) > 20 and files("transforms") and files("pipelines")


def test_the_library_never_imports_pipelines_transforms_or_commands():
    forbidden = ("pipelines", "transforms", "churnwatch.commands")
    skip = ("churnwatch.commands", "churnwatch.cli")
    assert violations("churnwatch", forbidden, skip) == []


def test_transforms_never_import_pipelines_or_commands():
    assert violations("transforms", ("pipelines", "churnwatch.commands", "churnwatch.cli")) == []


def test_pipelines_never_import_commands():
    assert violations("pipelines", ("churnwatch.commands", "churnwatch.cli")) == []


def test_the_core_library_and_transforms_never_use_the_tools():
    core = [p for p in files("churnwatch") if under(module_name(p), CORE)]
    assert len(core) > 15
    found = [
        f"{module_name(p)} imports {i}"
        for p in core
        for i in sorted(imported(p))
        if under(i, TOOL_MODULES)
    ]
    assert found == []
    assert violations("transforms", TOOL_MODULES) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from pipelines.options import X\n", "pipelines.options"),
        ("def f():\n    import transforms.decode\n", "transforms.decode"),
    ],
)
def test_the_walk_sees_top_level_and_lazy_imports(tmp_path, source, expected):
    path = tmp_path / "m.py"
    path.write_text(source)
    assert expected in imported(path)
