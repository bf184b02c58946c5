"""`python -m pipelines.streaming --help` lists the pipeline's own flags (it printed none)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "flags"),
    [
        ("pipelines.streaming", ("--feedback_subscription", "--alert_budget", "--model_params")),
        ("pipelines.backfill", ("--input", "--warehouse", "--alert_budget")),
    ],
)
def test_help_lists_the_pipelines_flags(module, flags):
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    for flag in flags:
        assert flag in done.stdout, flag
    text = " ".join(done.stdout.split())  # argparse wraps help lines
    assert "AT_RISK_SILENT alerts per 1,000 active customers per month" in text
