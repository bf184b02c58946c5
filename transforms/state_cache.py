"""The SDK state cache: its size, and sizing its entries without walking every module.

Where the Python SDK caches user state (the in-process FnApiRunner always, with a
hard-coded 100 MB; an SDK harness only with ``--max_cache_memory_usage_mb`` > 0), every
state write re-sizes the cached value with ``objsize.get_deep_size``. objsize first builds
an exclude set from the globals of *every loaded module* (``exclude_modules_globals``,
on by default), ~1 ms per call in this pipeline's process and more once GX is loaded,
whatever the value. Our state values are bytes (``transforms.sharding``) or lists of
decoded elements; none of them reference a module's globals dict, and Beam's own filter
already skips modules, types and functions, so the sizes are the same without that walk
(``tests/test_state_cache.py`` compares them) in 4-21 us instead of ~1 ms.

``objsize.default_settings`` is objsize's documented knob ("can be updated to modify the
default behaviour of objsize"); Beam passes ``exclude_modules_globals=None``, i.e. the
default. So :func:`size_state_without_module_walk` changes that default once per process,
and nothing else. It runs

* in the launching process, where the in-process runner executes the DoFns
  (:class:`pipelines.flow.ChurnwatchFlow` calls it while building the graph);
* in an SDK harness (Dataflow, ``--direct_running_mode=multi_processing``) when the cache is
  on: :func:`worker_plugins` names this module in ``--beam_plugins``, which the harness
  imports before it starts (``sdk_worker_main``), and importing it applies the setting.

Dataflow's Python workers run with the cache off by default since Beam 2.55
(``--max_cache_memory_usage_mb`` = 0, :data:`DEFAULT_CACHE_MB`): every state read is then a
round trip to the runner, and nothing is sized.
"""

from __future__ import annotations

import objsize

#: Beam's WorkerOptions default for ``--max_cache_memory_usage_mb`` (and Dataflow's).
DEFAULT_CACHE_MB = 0

#: The in-process FnApiRunner ignores the option and always caches this much
#: (``apache_beam.runners.portability.fn_api_runner.worker_handlers.STATE_CACHE_SIZE_MB``).
IN_PROCESS_CACHE_MB = 100

PLUGIN = __name__


def size_state_without_module_walk() -> None:
    """objsize stops collecting every module's globals before sizing a cached state value."""
    objsize.default_settings.update(exclude_modules_globals=False)


def worker_plugins(plugins: list[str] | None, cache_mb: int) -> list[str]:
    """``--beam_plugins`` with this module added when SDK harnesses cache state."""
    plugins = list(plugins or [])
    if cache_mb > 0 and PLUGIN not in plugins:
        plugins.append(PLUGIN)
    return plugins


# Imported as a Beam plugin, this module's job is the setting above.
size_state_without_module_walk()
