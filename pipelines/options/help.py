"""``--help`` for the pipeline entry points: Churnwatch's own flags, then Beam's.

``PipelineOptions(argv)`` swallows ``--help`` into Beam's internal parser, which knows no
subclass flags, so ``python -m pipelines.streaming --help`` printed an empty usage line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def help_text(prog: str, description: str, *option_classes) -> str:
    """The usage of ``prog``: the flags every options class adds, with their help."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    for cls in option_classes:
        cls._add_argparse_args(parser)
    return parser.format_help() + (
        "\nBeam's own flags (--runner, --project, --region, --temp_location, ...) pass through;"
        "\nsee https://beam.apache.org/documentation/runners/ for each runner's.\n"
    )


def exit_with_help_if_asked(
    argv: Sequence[str], prog: str, description: str, *option_classes
) -> None:
    if any(a in ("-h", "--help") for a in argv):
        sys.stdout.write(help_text(prog, description, *option_classes))
        raise SystemExit(0)
