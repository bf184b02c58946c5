"""The ``churnwatch`` command answers --help without importing Apache Beam or any command."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys

import pytest

from churnwatch import cli
from pipelines.template_metadata import pipeline_flags

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


def command_flags() -> dict[str, list[argparse.Action]]:
    parser = cli.build_parser()  # every command's arguments
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: p._actions for name, p in sub.choices.items()}


def test_every_subcommand_flag_is_kebab_case():
    for name, actions in command_flags().items():
        for action in actions:
            if action.help == argparse.SUPPRESS:
                continue  # a deprecated spelling
            for flag in action.option_strings:
                assert re.fullmatch(r"-h|--[a-z0-9]+(-[a-z0-9]+)*", flag), f"{name} {flag}"


def test_a_flag_naming_a_pipeline_setting_is_that_flags_name():
    """--routing-policy, --quality-rules, --model-params: never --policy or --rules."""
    pipeline = {
        f"--{a.dest.replace('_', '-')}": a.dest.rsplit("_", 1)[-1]
        for a in pipeline_flags()
        if a.dest in ("routing_policy", "quality_rules", "model_params")
    }
    for name, actions in command_flags().items():
        for action in actions:
            for flag in action.option_strings:
                if action.help == argparse.SUPPRESS or flag in pipeline:
                    continue
                assert flag[2:] not in pipeline.values(), f"{name} {flag}: use {sorted(pipeline)}"


def test_old_spellings_still_work_and_say_the_new_one(capsys):
    parser = cli.build_parser(["quality"])
    args = parser.parse_args(["quality", "--rules", "mine.yaml"])
    assert args.quality_rules == "mine.yaml"
    assert "--rules is deprecated, use --quality-rules" in capsys.readouterr().err
    args = cli.build_parser(["notify"]).parse_args(["notify", "--policy", "p.yaml"])
    assert str(args.routing_policy) == "p.yaml"
    args = cli.build_parser(["notify"]).parse_args(["notify"])
    assert args.routing_policy is None
