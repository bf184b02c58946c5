"""Pipeline flags: ``ChurnwatchOptions``, split by concern.

* ``flags``: the flags, one function per concern (names are a public interface: change them
  only with a deprecation);
* ``checks``: what is validated before the graph is built;
* ``configs``: the configs a run builds from the flags (detector, aggregates, spikes, ...);
* ``dataflow``: what a Dataflow submission needs on top.
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.options import checks, flags
from pipelines.options.checks import SUBSCRIPTION_RE, TOPIC_RE
from pipelines.options.configs import RunConfigs
from pipelines.options.dataflow import DATAFLOW_REQUIRED, is_dataflow, validate_dataflow

__all__ = [
    "DATAFLOW_REQUIRED",
    "SUBSCRIPTION_RE",
    "TOPIC_RE",
    "ChurnwatchOptions",
    "is_dataflow",
    "validate_dataflow",
]


class ChurnwatchOptions(RunConfigs, PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        flags.add_flags(parser)

    def validate_churnwatch(self) -> None:
        """Fail before the graph is built, saying what to fix."""
        problems = checks.problems(self)
        if problems:
            raise ValueError("invalid options:\n  " + "\n  ".join(problems))
