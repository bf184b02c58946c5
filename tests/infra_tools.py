"""Static checks of infra/ through the tools venv (.venv-tools, made by `make tools`).

checkov pins packaging<24 and cachetools<6, so it cannot share the pipeline's venv; python-hcl2
shares the module name ``hcl2`` with checkov's fork, so it sits in .venv-tools/hcl2 (pip
--target) and is put on PYTHONPATH only for the parsing subprocess. A missing tools venv is a
test failure that says what to run, never a skip.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOLS_VENV = REPO / ".venv-tools"
TOOLS_PYTHON = TOOLS_VENV / "bin" / "python"
CHECKOV = TOOLS_VENV / "bin" / "checkov"
HCL2_PATH = TOOLS_VENV / "hcl2"
TERRAFORM_DIR = REPO / "infra" / "terraform"
FLEX_DIR = REPO / "infra" / "flex-template"

#: `# checkov:skip=CKV_GCP_83: reason` -- the reason must say something (a few words at least).
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=(CKV2?_[A-Z]+_\d+)(?::\s*(.*))?$")
MIN_REASON_WORDS = 4

_PARSE_SCRIPT = """
import json, sys
import hcl2
from hcl2.utils import SerializationOptions

options = SerializationOptions(strip_string_quotes=True, explicit_blocks=False,
                               with_comments=False)
out = {}
for path in sys.argv[1:]:
    with open(path) as handle:
        out[path] = hcl2.load(handle, serialization_options=options)
json.dump(out, sys.stdout)
"""


def require_tools() -> None:
    missing = [p for p in (TOOLS_PYTHON, CHECKOV, HCL2_PATH / "hcl2") if not p.exists()]
    if missing:
        pytest.fail(
            f"infra tools missing ({', '.join(str(p.relative_to(REPO)) for p in missing)}): "
            "run `make tools` (creates .venv-tools with checkov and python-hcl2)",
            pytrace=False,
        )


def parse_hcl(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """file name -> python-hcl2 dict (string quotes stripped, ``${...}`` kept for expressions)."""
    require_tools()
    env = {**os.environ, "PYTHONPATH": str(HCL2_PATH)}
    proc = subprocess.run(
        [str(TOOLS_PYTHON), "-c", _PARSE_SCRIPT, *map(str, paths)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, f"python-hcl2 could not parse:\n{proc.stderr}"
    return {Path(path).name: tree for path, tree in json.loads(proc.stdout).items()}


def checkov(*args: str) -> dict[str, Any]:
    """Run checkov offline (no platform download) and return its JSON report."""
    require_tools()
    proc = subprocess.run(
        [str(CHECKOV), *args, "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=300,
    )
    # checkov exits 1 when a check fails; the report is on stdout either way.
    assert proc.stdout.strip(), f"checkov printed no report (rc={proc.returncode}):\n{proc.stderr}"
    report = json.loads(proc.stdout)
    assert isinstance(report, dict), f"expected one framework's report, got {len(report)}"
    return report


def failed_summary(report: dict[str, Any]) -> str:
    failed = report["results"]["failed_checks"]
    return "\n".join(
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range']}): "
        f"{c['check_name']}"
        for c in failed
    )


def skip_comments(path: Path) -> list[tuple[int, str, str]]:
    """(line number, check id, reason) for every ``checkov:skip`` comment in a file."""
    found = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = SKIP_COMMENT.search(line)
        if match:
            found.append((number, match.group(1), (match.group(2) or "").strip()))
        elif "checkov:skip" in line:
            found.append((number, "", line.strip()))  # malformed: fails the id check
    return found
