"""Pipeline options fail fast, before any graph is built, saying what to fix."""

from __future__ import annotations

import pytest

from pipelines.options import ChurnwatchOptions

GOOD = [
    "--feedback_subscription=projects/churnwatch-local/subscriptions/feedback-events-churnwatch",
    "--customer_subscription=projects/churnwatch-local/subscriptions/customer-events-churnwatch",
]


def options(*argv: str) -> ChurnwatchOptions:
    return ChurnwatchOptions(list(argv))


def test_good_options_pass_and_pick_the_local_read_on_the_direct_runner():
    opts = options(*GOOD)
    opts.validate_churnwatch()
    assert opts.read_binding() == "local"
    assert options(*GOOD, "--runner=DataflowRunner").read_binding() == "native"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([GOOD[1]], "--feedback_subscription is required"),
        (
            ["--feedback_subscription=feedback", GOOD[1]],
            "expected projects/PROJECT/subscriptions/NAME",
        ),
        ([*GOOD, "--warehouse=sqlite:///x.db"], "unsupported scheme"),
        ([*GOOD, "--day_seconds=0"], "--day_seconds must be positive"),
        ([*GOOD, "--pull_max_messages=5000"], "--pull_max_messages must be within 1..1000"),
    ],
)
def test_bad_options_name_the_flag(argv, message):
    with pytest.raises(ValueError, match=message):
        options(*argv).validate_churnwatch()


def test_state_cache_is_off_by_default_and_workers_load_the_sizing_plugin_when_on():
    from apache_beam.options.pipeline_options import SetupOptions, WorkerOptions

    off = options(*GOOD)
    off.validate_churnwatch()
    assert off.view_as(WorkerOptions).max_cache_memory_usage_mb == 0
    assert not off.view_as(SetupOptions).beam_plugins
    on = options(*GOOD, "--max_cache_memory_usage_mb=100")
    on.validate_churnwatch()
    assert on.view_as(SetupOptions).beam_plugins == ["transforms.state_cache"]
    with pytest.raises(ValueError, match="--max_cache_memory_usage_mb=-1"):
        options(*GOOD, "--max_cache_memory_usage_mb=-1").validate_churnwatch()
