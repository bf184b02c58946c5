"""The DirectRunner shortcuts give what Beam's own code gives: same state copies, same specs."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.runners.direct.evaluation_context import DirectUnmergedState
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.trigger import InMemoryUnmergedState, _CombiningValueStateTag
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.transforms.window import IntervalWindow
from apache_beam.utils.timestamp import Timestamp

from transforms import direct_runner_costs as costs
from transforms.sharding import SHARD_STATE_CODER

WINDOWS = [IntervalWindow(Timestamp(i), Timestamp(i + 7)) for i in range(5)]


def committed_state() -> DirectUnmergedState:
    """A key's state as the trigger driver leaves it: timers, window ids, state lists."""
    state = DirectUnmergedState()
    for i, window in enumerate(WINDOWS):
        state.set_timer(window, "", TimeDomain.WATERMARK, window.max_timestamp())
        state.set_timer(window, "gc", TimeDomain.WATERMARK, window.end + 60)
        state.state[window]["values"].extend([i, i + 1])
        state.state[window]["watermark"].append(window.max_timestamp())
    state.global_state["window_ids"] = {window: [i] for i, window in enumerate(WINDOWS)}
    return state


def snapshot(state: InMemoryUnmergedState) -> tuple:
    """Everything a bundle can observe, as plain values."""
    return (
        {w: dict(t) for w, t in state.timers.items()},
        {w: {tag: list(v) for tag, v in tagged.items()} for w, tagged in state.state.items()},
        {k: {w: list(ids) for w, ids in v.items()} for k, v in state.global_state.items()},
    )


def bundle_writes(state: InMemoryUnmergedState) -> None:
    """What one bundle of a GroupAlsoByWindow does to a key: add, fire, clear, expire."""
    state.add_state(WINDOWS[0], _tag("values"), 99)
    state.clear_timer(WINDOWS[1], "", TimeDomain.WATERMARK)
    state.set_timer(WINDOWS[2], "early", TimeDomain.REAL_TIME, Timestamp(3))
    state.clear_state(WINDOWS[3], _tag("watermark"))
    state.global_state["window_ids"][WINDOWS[4]].append(7)
    state.add_state(IntervalWindow(Timestamp(50), Timestamp(57)), _tag("values"), 1)


def _tag(name: str):
    from apache_beam.transforms.trigger import _ListStateTag

    return _ListStateTag(name)


def test_the_copy_on_lookup_equals_beams_copy_and_leaves_the_committed_state_alone():
    ours, beams = committed_state(), committed_state()
    ours_copy, beams_copy = costs.copy_keyed_state(ours), beams.copy()
    assert snapshot(ours_copy) == snapshot(beams_copy)  # before any write
    bundle_writes(ours_copy)
    bundle_writes(beams_copy)
    assert snapshot(ours_copy) == snapshot(beams_copy)  # the bundle sees the same state
    assert snapshot(ours) == snapshot(committed_state())  # committed: untouched
    assert ours_copy.get_earliest_hold() == beams_copy.get_earliest_hold()
    timers = ours_copy.get_timers(watermark=Timestamp(100), processing_time=Timestamp(100))
    assert timers == beams_copy.get_timers(watermark=Timestamp(100), processing_time=Timestamp(100))
    # a copy of a copy (the next bundle of the same key) is independent as well
    again = costs.copy_keyed_state(ours_copy)
    again.add_state(WINDOWS[0], _tag("values"), 5)
    assert ours_copy.state[WINDOWS[0]]["values"] == [0, 1, 99]


class _ShardFn(beam.DoFn):
    SEEN = ReadModifyWriteStateSpec("seen", SHARD_STATE_CODER)
    PURGE = TimerSpec("purge", TimeDomain.WATERMARK)

    def process(self, element, seen=beam.DoFn.StateParam(SEEN)):
        yield element

    @on_timer(PURGE)
    def purge(self):
        pass


def test_dofn_specs_come_from_the_cache_equal_to_beams():
    dofn = _ShardFn()
    assert costs.cached_dofn_specs(dofn) == costs._uncached_get_dofn_specs(dofn)
    assert costs.cached_is_stateful_dofn(dofn)
    assert not costs.cached_is_stateful_dofn(beam.Map(str).dofn)
    assert costs.cached_dofn_specs(_ShardFn()) is costs.cached_dofn_specs(dofn)


def test_no_extraction_tags_are_built_once_and_keep_their_accumulators():
    from apache_beam.transforms.combiners import CountCombineFn

    tag = _CombiningValueStateTag("count", CountCombineFn())
    plain = tag.without_extraction()
    assert plain is tag.with_prefix("").without_extraction()  # same name and combine fn
    assert plain is not _CombiningValueStateTag("count", CountCombineFn()).without_extraction()
    assert plain.tag == "count"
    accumulator = plain.combine_fn.add_inputs(plain.combine_fn.create_accumulator(), "ab")
    assert plain.combine_fn.extract_output(accumulator) == accumulator == 2
