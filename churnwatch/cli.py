"""The ``churnwatch`` command. Each subcommand lives in ``churnwatch/commands/<name>.py``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

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
    "quality": "churnwatch.commands.quality",
    "alerts": "churnwatch.commands.alerts",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="churnwatch", description="Detect silent churn from feedback and customer events."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args._run(args) or 0)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"churnwatch {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
