"""Flex Template entry point: the launcher runs ``python main.py --flag=value ...``.

Thin on purpose, like python-docs-samples' ``pipeline_with_dependencies/main.py``: option
parsing, validation and wiring live in :mod:`pipelines.streaming`. On Dataflow ``run()``
submits the job and returns without waiting, which Flex Templates require (a launcher that
blocks until the streaming job ends would time out).
"""

from __future__ import annotations

import sys

from churnwatch import logs
from pipelines import streaming

if __name__ == "__main__":
    logs.configure(verbose=True)  # JSON lines with severity: structured entries in Cloud Logging
    streaming.run(sys.argv[1:])
