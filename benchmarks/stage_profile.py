"""Per-stage CPU of a BundleBasedDirectRunner run: where the runner's one worker spends it.

The streaming DirectRunner runs every bundle and its own monitor task on worker threads,
so cProfile on the main thread sees nothing. This wraps the runner's two kinds of task
(``TransformExecutor.call``: one bundle of one step; ``_MonitorTask.call``: timers,
scheduling, watermarks) and adds the calling thread's CPU time (``time.thread_time``) and
wall time per step (wall above CPU: waiting on Pub/Sub, DuckDB or the GIL), with its
element bundles and timer bundles, so the per-stage cost of a run can be printed next to
its throughput::

    with StageProfile() as stages:
        streaming.run(...)
    print(stages.report())

Benchmark instrumentation only: the pipeline never imports it.
"""

from __future__ import annotations

import collections
import threading
import time

from apache_beam.runners.direct import executor as _executor

MONITOR = "(runner monitor: timers, scheduling)"


class StageProfile:
    """Context manager: CPU and wall seconds, bundles and elements per applied transform."""

    def __init__(self) -> None:
        self.cpu: collections.Counter[str] = collections.Counter()
        self.wall: collections.Counter[str] = collections.Counter()
        self.bundles: collections.Counter[str] = collections.Counter()
        self.elements: collections.Counter[str] = collections.Counter()
        self.timer_bundles: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._originals: tuple = ()

    def __enter__(self) -> StageProfile:
        task_call = _executor.TransformExecutor.call
        monitor_call = _executor._ExecutorServiceParallelExecutor._MonitorTask.call
        self._originals = (task_call, monitor_call)
        profile = self

        def timed_task(executor, state_sampler):
            began, began_wall = time.thread_time(), time.perf_counter()
            try:
                return task_call(executor, state_sampler)
            finally:
                cpu, wall = time.thread_time() - began, time.perf_counter() - began_wall
                label = executor._applied_ptransform.full_label
                timers = bool(executor._fired_timers)
                count = 0 if executor._input_bundle is None else _size(executor._input_bundle)
                profile._add(label, cpu, wall, count, timers)

        def timed_monitor(task, state_sampler):
            began, began_wall = time.thread_time(), time.perf_counter()
            try:
                return monitor_call(task, state_sampler)
            finally:
                cpu, wall = time.thread_time() - began, time.perf_counter() - began_wall
                profile._add(MONITOR, cpu, wall, 0, False)

        _executor.TransformExecutor.call = timed_task
        _executor._ExecutorServiceParallelExecutor._MonitorTask.call = timed_monitor
        return self

    def __exit__(self, *exc) -> None:
        task_call, monitor_call = self._originals
        _executor.TransformExecutor.call = task_call
        _executor._ExecutorServiceParallelExecutor._MonitorTask.call = monitor_call

    def _add(self, label: str, cpu_s: float, wall_s: float, elements: int, timers: bool) -> None:
        with self._lock:
            self.cpu[label] += cpu_s
            self.wall[label] += wall_s
            self.bundles[label] += 1
            self.elements[label] += elements
            if timers:
                self.timer_bundles[label] += 1

    def total(self) -> float:
        return sum(self.cpu.values())

    def report(self, top: int = 25) -> str:
        """The costliest steps, one line each: CPU s, share, bundles (of them timer), elements."""
        total = self.total() or 1e-9
        lines = [
            f"runner worker CPU {total:.1f} s (wall {sum(self.wall.values()):.1f} s) in "
            f"{sum(self.bundles.values())} tasks; costliest steps:",
            f"{'cpu s':>7} {'share':>6} {'wall s':>7} {'bundles':>8} {'timer b.':>8} "
            f"{'elements':>9}  step",
        ]
        for label, cpu in self.cpu.most_common(top):
            lines.append(
                f"{cpu:>7.2f} {100 * cpu / total:>5.1f}% {self.wall[label]:>7.2f} "
                f"{self.bundles[label]:>8} {self.timer_bundles[label]:>8} "
                f"{self.elements[label]:>9}  {label}"
            )
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            label: {
                "cpu_s": round(cpu, 3),
                "wall_s": round(self.wall[label], 3),
                "bundles": self.bundles[label],
                "timer_bundles": self.timer_bundles[label],
                "elements": self.elements[label],
            }
            for label, cpu in self.cpu.most_common()
        }


def _size(bundle) -> int:
    try:
        return sum(1 for _ in bundle.get_elements_iterable())
    except Exception:  # an empty committed bundle (timer firings) may not iterate
        return 0
