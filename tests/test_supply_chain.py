"""Supply chain: every dependency locked with hashes, and installed from the lock."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of every entry of requirements.lock."""
    out: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in LOCK.read_text().splitlines():
        match = PIN.match(line)
        if match:
            current = normal(match.group(1))
            out[current] = (match.group(2), [])
        elif line.strip().startswith("--hash=sha256:") and current:
            out[current][1].append(line.strip().removeprefix("--hash=sha256:").rstrip(" \\"))
        elif line and not line.startswith((" ", "#")):
            raise AssertionError(f"unexpected line in requirements.lock: {line}")
    return out


def test_every_locked_package_is_pinned_with_hashes():
    entries = locked()
    assert len(entries) > 100  # the whole transitive closure, not just the top level
    for name, (version, hashes) in entries.items():
        assert re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version), f"{name}=={version}"
        assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), name


def test_the_lock_agrees_with_the_pins_it_was_made_from():
    # A pin changed in requirements.txt without `make lock` would be silently ignored.
    entries = locked()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = PIN.match(line)
        if match:
            name = normal(match.group(1).split("[")[0])
            assert entries.get(name, ("missing",))[0] == match.group(2), (
                f"{name}: requirements.txt says {match.group(2)}, the lock "
                f"{entries.get(name, ('nothing',))[0]}: run `make lock`"
            )


def test_make_venv_and_the_image_install_only_from_the_lock():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("$(STAMP):") : makefile.index("venv: $(STAMP)")]
    assert "$(STAMP): requirements.lock setup.py" in recipe
    installs = [line.strip() for line in recipe.splitlines() if "pip install" in line]
    assert installs == [
        "$(PY) -m pip install --quiet --require-hashes -r requirements.lock",
        "$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .",
    ]
    docker = (ROOT / "infra" / "flex-template" / "Dockerfile").read_text()
    assert "pip install --no-cache-dir --require-hashes -r requirements.lock" in docker
    assert "pip install --no-cache-dir --no-deps --no-build-isolation ." in docker


def test_this_environment_was_installed_from_the_lock():
    entries = locked()
    wrong = {}
    for name, (version, _) in entries.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong[name] = "not installed"
            continue
        if installed != version:
            wrong[name] = f"{installed} instead of {version}"
    assert not wrong, f"run `make venv` (or rm -rf .venv first): {wrong}"
