"""churnwatch template-metadata: write the Flex Template metadata from the pipeline's flags."""

from __future__ import annotations

from pathlib import Path

HELP = (
    "write infra/flex-template/metadata.json (one Dataflow template parameter per pipeline "
    "flag, generated from ChurnwatchOptions)"
)


def add_arguments(parser) -> None:
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the file differs from the flags"
    )


def run(args) -> int:
    # Imported here: the options import Apache Beam, and `churnwatch --help` must not.
    from churnwatch.commands import write_or_check
    from pipelines.template_metadata import METADATA_PATH, metadata_json, pipeline_flags

    out = args.out or METADATA_PATH
    what = f"{len(pipeline_flags())} parameters"
    return write_or_check(out, metadata_json(), "template-metadata", args.check, what)
