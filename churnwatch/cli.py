"""The ``churnwatch`` command. Each subcommand lives in ``churnwatch/commands/<name>.py``.

``churnwatch --help`` imports no command module (the demo's pulls in Apache Beam, ~2 s):
the summaries are the modules' ``HELP`` constants read from their source, and only the
command being run (or asked for ``--help``) is imported.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import sys
from collections.abc import Sequence

from churnwatch import logs

#: subcommand -> module; a module provides HELP, add_arguments(parser) and run(args) -> int.
COMMANDS = {
    "demo": "churnwatch.commands.demo",
    "simulate": "churnwatch.commands.simulate",
    "emulator": "churnwatch.commands.emulator",
    "bootstrap": "churnwatch.commands.bootstrap",
    "fit": "churnwatch.commands.fit",
    "evaluate": "churnwatch.commands.evaluate",
    "docs": "churnwatch.commands.docs",
    "report": "churnwatch.commands.report",
    "notify": "churnwatch.commands.notify",
    "infra-tables": "churnwatch.commands.infra_tables",
    "template-metadata": "churnwatch.commands.template_metadata",
    "quality": "churnwatch.commands.quality",
    "alerts": "churnwatch.commands.alerts",
}


def command_help(module_name: str) -> str:
    """A command module's ``HELP`` string, read from its source without importing it."""
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None:
        raise ImportError(f"no module {module_name}")
    with open(spec.origin, encoding="utf-8") as fo:
        tree = ast.parse(fo.read(), spec.origin)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "HELP" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise ValueError(f"{module_name} has no HELP string")


def chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is one), if any."""
    return next((word for word in argv if word in COMMANDS), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Every subcommand with its summary; arguments only for the one ``argv`` runs.

    ``argv=None`` builds every subcommand's arguments (imports every command module).
    """
    parser = argparse.ArgumentParser(
        prog="churnwatch", description="Detect silent churn from feedback and customer events."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = None if argv is None else chosen_command(argv)
    for name, module_name in COMMANDS.items():
        help_text = command_help(module_name)
        command = sub.add_parser(name, help=help_text, description=help_text)
        if argv is None or name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(command)
            command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    logs.configure(verbose=args.verbose)  # JSON lines for Cloud Logging (churnwatch/logs.py)
    try:
        return int(args._run(args) or 0)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"churnwatch {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
