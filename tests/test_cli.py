"""The ``churnwatch`` command answers --help without importing Apache Beam or any command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from churnwatch import cli

HEAVY = ("apache_beam", "pandas", "duckdb", "great_expectations", "google.cloud.pubsub")


def modules_after(argv: list[str]) -> tuple[int, set[str], str]:
    """Exit code, loaded modules and output of ``churnwatch ARGV`` run in a fresh interpreter."""
    code = (
        "import contextlib, io, json, sys\n"
        "from churnwatch import cli\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n"
        f"        rc = cli.main({argv!r})\n"
        "    except SystemExit as exit:\n"
        "        rc = exit.code\n"
        "print(json.dumps([rc, sorted(sys.modules), out.getvalue()]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    rc, modules, output = json.loads(done.stdout.splitlines()[-1])
    return rc, set(modules), output


def test_help_lists_every_command_without_importing_beam_or_any_command():
    rc, modules, output = modules_after(["--help"])
    assert rc == 0
    for name in cli.COMMANDS:
        assert name in output
    assert not [m for m in HEAVY if m in modules]
    assert not [m for m in modules if m.startswith("churnwatch.commands.")]


def test_a_command_help_imports_only_that_command():
    rc, modules, output = modules_after(["fit", "--help"])
    assert rc == 0
    assert "--simulate-seed" in output
    assert "churnwatch.commands.fit" in modules
    assert "churnwatch.commands.demo" not in modules
    assert "apache_beam" not in modules


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_the_summary_is_the_module_help_string(name):
    import importlib

    module = importlib.import_module(cli.COMMANDS[name])
    assert cli.command_help(cli.COMMANDS[name]) == module.HELP


def test_the_command_is_the_first_word_that_names_one():
    assert cli.chosen_command(["-v", "simulate", "--out", "report"]) == "simulate"
    assert cli.chosen_command(["--help"]) is None
