"""Flex Template entry point: the launcher runs ``python main.py --flag=value ...``.

Thin on purpose, like python-docs-samples' ``pipeline_with_dependencies/main.py``: option
parsing, validation and wiring live in :mod:`pipelines.streaming`. On Dataflow ``run()``
submits the job and returns without waiting, which Flex Templates require (a launcher that
blocks until the streaming job ends would time out).
"""

from __future__ import annotations

import logging
import sys

from pipelines import streaming

if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    streaming.run(sys.argv[1:])
