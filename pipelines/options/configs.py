"""The configs a run builds from ChurnwatchOptions' flags (a mixin of ChurnwatchOptions).

Each factory validates what it builds, so ``validate_churnwatch`` calls them all once before
the graph exists, and the flow calls them again to get the objects.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from apache_beam.options.pipeline_options import SetupOptions, StandardOptions, WorkerOptions

from churnwatch.aggregation import AggregateConfig
from churnwatch.detection import DetectorConfig
from churnwatch.model.packaged import load_model
from churnwatch.quality.config import QualityConfig
from churnwatch.quality.rules import QualityRules
from churnwatch.routing import RoutingPolicy
from churnwatch.spikes import SpikeConfig
from transforms.bigquery_io import BigQueryWriteConfig
from transforms.state_cache import worker_plugins
from transforms.track_customers import TrackingSetup


class RunConfigs:
    """Config factories over the flags; mixed into ChurnwatchOptions (a PipelineOptions)."""

    def configure_state_cache(self) -> list[str]:
        """Beam's ``--max_cache_memory_usage_mb`` (default 0, off, as on Dataflow since 2.55).

        With a cache, SDK harnesses import ``transforms.state_cache`` as a Beam plugin, so
        each state write is sized without objsize's walk over every loaded module.
        """
        cache_mb = self.view_as(WorkerOptions).max_cache_memory_usage_mb or 0
        if cache_mb < 0:
            return [f"--max_cache_memory_usage_mb={cache_mb}: 0 (off, the default) or more"]
        setup = self.view_as(SetupOptions)
        setup.beam_plugins = worker_plugins(setup.beam_plugins, cache_mb) or None
        return []

    def tracking_setup(self) -> TrackingSetup:
        """Detector config, model parameters and routing policy, loaded and validated."""
        config = DetectorConfig(
            day_seconds=self.day_seconds,
            lookback_days=self.lookback_days,
            alert_budget=self.alert_budget,
            risk_threshold=self.risk_threshold,
            cooldown_days=self.cooldown_days,
        )
        model = load_model(Path(self.model_params) if self.model_params else None)
        return TrackingSetup(
            config, model, RoutingPolicy.load(self.routing_policy), self.customer_shards
        )

    def bigquery_write_config(self) -> BigQueryWriteConfig:
        return BigQueryWriteConfig(
            self.bigquery_write_method, self.bigquery_triggering_frequency_seconds
        )

    def aggregate_config(self) -> AggregateConfig:
        return AggregateConfig(
            day_seconds=self.day_seconds,
            fixed_days=self.aggregate_fixed_days,
            sliding_days=self.aggregate_sliding_days,
            sliding_period_days=self.aggregate_sliding_period_days,
            allowed_lateness_days=self.allowed_lateness_days,
            min_lateness_seconds=self.min_allowed_lateness_seconds,
            early_firing_seconds=self.early_firing_seconds,
        )

    def spike_config(self) -> SpikeConfig:
        return SpikeConfig(
            day_seconds=self.day_seconds,
            window_days=self.spike_window_days,
            period_days=self.spike_period_days,
            allowed_lateness_days=self.allowed_lateness_days,
            min_lateness_seconds=self.min_allowed_lateness_seconds,
            baseline_windows=self.spike_baseline_windows,
            min_baseline_windows=min(3, self.spike_baseline_windows),
            baseline_floor=self.spike_baseline_floor,
            many_min_customers=self.spike_min_customers,
            many_p_value=self.spike_p_value,
            critical_customers=max(20, self.spike_min_customers),
        )

    def quality_config(self) -> QualityConfig | None:
        """Stream quality settings, or None with --stream_quality=off."""
        if self.stream_quality == "off":
            return None
        if importlib.util.find_spec("great_expectations") is None:
            raise ValueError(
                "stream quality needs great-expectations (pip install great-expectations); "
                "or pass --stream_quality=off"
            )
        return QualityConfig(
            day_seconds=self.day_seconds,
            window_days=self.quality_window_days,
            min_window_seconds=self.min_quality_window_seconds,
            allowed_lateness_days=self.allowed_lateness_days,
            min_lateness_seconds=self.min_allowed_lateness_seconds,
            rules=QualityRules.load(self.quality_rules),
        )

    def read_binding(self) -> str:
        if self.pubsub_read != "auto":
            return self.pubsub_read
        runner = (self.view_as(StandardOptions).runner or "DirectRunner").lower()
        return "local" if "direct" in runner else "native"  # BundleBasedDirectRunner too
