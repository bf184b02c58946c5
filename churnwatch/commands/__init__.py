"""One module per ``churnwatch`` subcommand: ``HELP``, ``add_arguments(parser)``, ``run(args)``.

Flag spelling: subcommand flags are kebab-case (``--day-seconds``); a flag that means the same
as a pipeline flag is that flag's name in kebab-case (``--routing-policy`` for
``--routing_policy``, ``--quality-rules``, ``--model-params``). A renamed flag keeps its old
spelling as a hidden alias that warns (:func:`add_renamed_flag`).
"""

from __future__ import annotations

import argparse
import sys


class _DeprecatedSpelling(argparse.Action):
    """Stores like the new flag, after telling the user the new spelling."""

    def __init__(self, option_strings, dest, replacement: str, **kwargs) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.replacement = replacement

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"churnwatch: {option_string} is deprecated, use {self.replacement}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_renamed_flag(parser, new: str, old: str, **kwargs) -> None:
    """``new`` as documented, and ``old`` as a hidden alias that still works and warns."""
    action = parser.add_argument(new, **kwargs)
    alias = {k: v for k, v in kwargs.items() if k in ("type", "choices", "nargs", "metavar")}
    parser.add_argument(
        old,
        dest=action.dest,
        action=_DeprecatedSpelling,
        replacement=new,
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
        **alias,
    )


def write_or_check(path, text: str, command: str, check: bool, what: str) -> int:
    """Write a generated file, or with ``check`` exit 1 when the committed one is stale."""
    if check:
        if not path.exists() or path.read_text() != text:
            print(f"{path} is out of date; run `churnwatch {command}`")
            return 1
        print(f"{path} is up to date")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path} ({what})")
    return 0
