"""transforms.state_cache: same cached-state sizes without objsize's walk over every module."""

from __future__ import annotations

import pickle

import objsize
import pytest
from apache_beam.runners.worker import statecache

from transforms import state_cache


@pytest.fixture
def module_walk_default():
    """Each test starts from objsize's default (walk on) and leaves it as the suite had it."""
    before = objsize.default_settings.exclude_modules_globals
    objsize.default_settings.update(exclude_modules_globals=True)
    yield
    objsize.default_settings.update(exclude_modules_globals=before)


STATE_VALUES = [
    # what the SDK caches for our ReadModifyWriteState: a list holding the pickled shard blob
    [pickle.dumps([{f"evt-{i}": i * 1000 for i in range(300)}, 12345, None])],
    [b""],
    [],
    # and what it would cache for a state of decoded rows
    [[{"event_id": f"e{i}", "customer_id": f"C{i:05d}", "nps": i % 11} for i in range(50)]],
]


@pytest.mark.parametrize("value", STATE_VALUES, ids=["shard-blob", "empty-blob", "cleared", "rows"])
def test_sizes_are_the_same_without_the_module_walk(module_walk_default, value):
    with_walk = statecache.get_deep_size(value)
    state_cache.size_state_without_module_walk()
    assert objsize.default_settings.exclude_modules_globals is False
    assert statecache.get_deep_size(value) == with_walk


def test_beam_cache_uses_the_setting(module_walk_default):
    """StateCache.put sizes with Beam's get_deep_size, which takes objsize's default."""
    state_cache.size_state_without_module_walk()
    cache = statecache.StateCache(1 << 20)
    blob = [pickle.dumps(list(range(1000)))]
    cache.put(("key", b"token"), blob)
    assert cache.peek(("key", b"token")) is blob
    assert cache.size() == 1


def test_worker_plugin_only_when_the_cache_is_on():
    assert state_cache.worker_plugins(None, 0) == []
    assert state_cache.worker_plugins(["x"], 0) == ["x"]
    assert state_cache.worker_plugins(["x"], 100) == ["x", "transforms.state_cache"]
    assert state_cache.worker_plugins(["transforms.state_cache"], 5) == ["transforms.state_cache"]
