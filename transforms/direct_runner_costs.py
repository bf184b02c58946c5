"""What the streaming DirectRunner pays per bundle, and three costs we cut (same results).

The local streaming run executes on Beam's BundleBasedDirectRunner, whose executor has ONE
worker thread (``_ExecutorServiceParallelExecutor.NUM_WORKERS = 1``): every bundle of
every step, every timer firing and the monitor that schedules them take turns on one
core. Profiled (``benchmarks/streaming_capacity.py --stages``, py-spy over all threads):

* **Copying a key's window state per bundle.** Before a GroupAlsoByWindow touches a key,
  Beam copies the key's state (``InMemoryUnmergedState.copy``) so a failed bundle leaves
  the committed state alone: ``copy.deepcopy`` of its timers, of the driver's window-id
  map, and a copy of every window's state lists. All hold one entry per live window, and
  windows live until end + allowed lateness: with a compressed demo day (0.5 s) and the
  60 s lateness floor that is every window of the run, so each bundle copied hundreds of
  windows, ``Timestamp``s and tuples per key (30% of the runner's CPU at 100 msg/s).
  :func:`copy_keyed_state` copies a window's timers and state when the bundle first uses
  that window (:class:`_CopiedOnLookup`), sharing the immutable windows, timer names and
  ``Timestamp``s; every container the bundle writes is still its own.
* **Re-inspecting each DoFn per bundle.** ``_ParDoEvaluator.start_bundle`` (and the
  scheduler, once per bundle it schedules) asks ``userstate.is_stateful_dofn`` /
  ``get_dofn_specs``, which build an ``inspect.signature`` of every method of the DoFn,
  every time (15% of the runner's CPU). The specs are class-level declarations
  (``StateParam`` / ``TimerParam`` defaults of the DoFn's methods), so
  :func:`cached_dofn_specs` keeps them per DoFn class and method set.
* **A new CombineFn class per trigger state access.** The trigger driver reads and writes
  combining state through ``_CombiningValueStateTag.without_extraction``, which defines a
  class on every call (9%): :func:`cached_without_extraction` builds it once per tag name
  and combine fn.

All are installed by importing this module (``transforms.pubsub_local`` does, as it
registers the local read's evaluators). The state copy is used only by the local run's
GroupAlsoByWindow evaluator; the two caches serve every caller in the process (the values
are the same, only computed once).
"""

from __future__ import annotations

import collections
import copy
import threading
import types

from apache_beam.runners.direct import transform_evaluator as _te
from apache_beam.runners.direct.evaluation_context import DirectUnmergedState
from apache_beam.transforms import trigger as _trigger
from apache_beam.transforms import userstate as _userstate
from apache_beam.transforms.trigger import InMemoryUnmergedState, MergeableStateAdapter

_WINDOW_IDS = MergeableStateAdapter.WINDOW_IDS.tag


class _CopiedOnLookup(dict):
    """``{window: map}`` sharing the committed state's per-window maps until looked up.

    A window's map is copied the first time the bundle looks it up by key, and every
    write of Beam's in-memory state does that (``state[window][tag].append(...)``,
    ``timers[window][name] = t``, ``timers[window].pop(...)``). Iterating (the earliest
    watermark hold, the watermark manager's timer scan, which only read) sees the
    committed maps, which nobody writes: the bundle's writes go to its copies, and a
    failed bundle's copies are dropped, so the committed state stays as it was.
    """

    def __init__(self, committed: dict, copy_map) -> None:
        super().__init__(dict.items(committed))
        self._copy_map = copy_map  # committed map or None -> the bundle's own map
        self._own: set = set()

    def __getitem__(self, window):
        if window not in self._own:
            dict.__setitem__(self, window, self._copy_map(dict.get(self, window)))
            self._own.add(window)
        return dict.__getitem__(self, window)

    def __delitem__(self, window) -> None:
        self._own.discard(window)
        super().__delitem__(window)

    def pop(self, window, *default):
        self._own.discard(window)
        return super().pop(window, *default)


def _copy_window_state(tagged: dict | None) -> collections.defaultdict:
    """A window's ``{tag: values}``, value lists copied shallowly (as Beam copies them)."""
    own = collections.defaultdict(list)
    for tag, values in (tagged or {}).items():
        own[tag] = values[:] if type(values) is list else copy.copy(values)
    return own


def _copy_window_timers(timers: dict | None) -> dict:
    """A window's ``{(name, domain, tag): Timestamp}``: keys and values are immutable."""
    return dict(timers or {})


def copy_keyed_state(state: InMemoryUnmergedState) -> DirectUnmergedState:
    """What ``InMemoryUnmergedState.copy`` gives a bundle, without copying what it won't touch.

    Per-window state and timers: copied when the bundle first uses the window
    (:class:`_CopiedOnLookup`); Beam deep-copies every window's timers, although
    windows, timer names and ``Timestamp``s are immutable. The driver's window-id map
    ``{window: [ids]}``: each list new (merging extends them). Any other global state
    value (none in Beam 2.77) is deep-copied as before.
    """
    clone = DirectUnmergedState()
    clone.timers = _CopiedOnLookup(state.timers, _copy_window_timers)
    clone.global_state = {
        tag: (
            {window: list(ids) for window, ids in value.items()}
            if tag == _WINDOW_IDS
            else copy.deepcopy(value)
        )
        for tag, value in state.global_state.items()
    }
    clone.state = _CopiedOnLookup(state.state, _copy_window_state)
    return clone


def prepare_keyed_state(step_context, encoded_key: bytes) -> None:
    """Give the bundle its working copy of a key's state the cheap way (see module doc).

    ``DirectStepContext.get_keyed_state`` then finds it and skips its deep copy.
    """
    if step_context.partial_keyed_state.get(encoded_key):
        return
    existing = step_context.existing_keyed_state.get(encoded_key)
    if existing:
        step_context.partial_keyed_state[encoded_key] = copy_keyed_state(existing)


_SPECS: dict[tuple, tuple] = {}
_SPECS_LOCK = threading.Lock()
_uncached_get_dofn_specs = _userstate.get_dofn_specs


def _spec_key(dofn) -> tuple:
    """What ``get_dofn_specs`` depends on: the DoFn's class, plus any method bound on the
    instance itself (a wrapper DoFn may do that), so two such instances never share specs.
    """
    own = getattr(dofn, "__dict__", {})
    bound = tuple(
        (name, value.__func__) for name, value in own.items() if isinstance(value, types.MethodType)
    )
    return type(dofn), bound


def cached_dofn_specs(dofn) -> tuple[set, set]:
    """``userstate.get_dofn_specs``, computed once per DoFn class and method set."""
    key = _spec_key(dofn)
    with _SPECS_LOCK:
        specs = _SPECS.get(key)
    if specs is None:
        specs = _uncached_get_dofn_specs(dofn)
        with _SPECS_LOCK:
            _SPECS[key] = specs
    return specs


def cached_is_stateful_dofn(dofn) -> bool:
    state_specs, timer_specs = cached_dofn_specs(dofn)
    return bool(state_specs or timer_specs)


_NO_EXTRACTION: dict[tuple, object] = {}
_NO_EXTRACTION_LOCK = threading.Lock()
_NO_EXTRACTION_MAX = 4096  # tags x combine fns of the triggers in use: a few dozen
_uncached_without_extraction = _trigger._CombiningValueStateTag.without_extraction


def cached_without_extraction(tag):
    """``_CombiningValueStateTag.without_extraction``, built once per (name, combine fn).

    Beam defines a new CombineFn class on every call, and the trigger driver calls it on
    every read and write of combining state (a third of a GroupAlsoByWindow's CPU). The
    result only wraps the tag's name and combine fn, both unchanged by use.
    """
    key = (tag.tag, tag.combine_fn)
    with _NO_EXTRACTION_LOCK:
        cached = _NO_EXTRACTION.get(key)
    if cached is None:
        cached = _uncached_without_extraction(tag)
        with _NO_EXTRACTION_LOCK:
            if len(_NO_EXTRACTION) >= _NO_EXTRACTION_MAX:
                _NO_EXTRACTION.clear()
            _NO_EXTRACTION[key] = cached
    return cached


def install() -> None:
    """Route ``get_dofn_specs`` / ``is_stateful_dofn`` / ``without_extraction`` via caches.

    Callers reach them as ``userstate.<name>`` (DoFnSignature, the user-state context,
    ParDo) or by name imported into the DirectRunner's evaluators; both are pointed here.
    Idempotent; exact for every runner in this process (the specs are the same).
    """
    for module in (_userstate, _te):
        module.get_dofn_specs = cached_dofn_specs
        module.is_stateful_dofn = cached_is_stateful_dofn
    _trigger._CombiningValueStateTag.without_extraction = cached_without_extraction


install()
