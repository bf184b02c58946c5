"""Publish simulated messages to Pub/Sub (the emulator locally), fast or paced in real time."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence

from churnwatch.clock import now_ms
from churnwatch.simulate import SimMessage


class Progress:
    """A one-line progress bar on stderr (no dependency, quiet when not a terminal)."""

    def __init__(self, total: int, label: str, stream=sys.stderr) -> None:
        self.total, self.label, self.stream = max(total, 1), label, stream
        self.done = 0
        self.started = time.monotonic()
        self._last = 0.0
        self.tty = hasattr(stream, "isatty") and stream.isatty()

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= 0.5 or self.done >= self.total:
            self._last = now
            self._render()

    def _render(self) -> None:
        frac = min(self.done / self.total, 1.0)
        bar = "#" * int(frac * 30)
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        line = f"{self.label} [{bar:<30}] {self.done}/{self.total} ({rate:,.0f}/s)"
        if self.tty:
            self.stream.write("\r" + line)
        elif self.done >= self.total or int(frac * 10) != int((self.done - 1) / self.total * 10):
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.done < self.total:
            self._render()
        if self.tty:
            self.stream.write("\n")


def publish_messages(
    messages: Sequence[SimMessage],
    topics: dict[str, str],
    paced: bool = False,
    progress: bool = True,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Publish in ``publish_at_ms`` order; ``paced`` waits for each message's wall time.

    ``topics`` maps a message source (feedback / customer) to a full topic path.
    Returns how many messages Pub/Sub accepted (every future is awaited).
    """
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient(
        batch_settings=pubsub_v1.types.BatchSettings(max_messages=500, max_latency=0.05)
    )
    bar = Progress(len(messages), "publishing") if progress else None
    futures = []
    try:
        for message in messages:
            if should_stop():
                break
            if paced:
                delay = (message.publish_at_ms - now_ms()) / 1000.0
                if delay > 0:
                    time.sleep(delay)
            futures.append(
                publisher.publish(topics[message.source], message.data, **message.attributes)
            )
            if bar:
                bar.advance()
        for future in futures:
            future.result(timeout=60)
    finally:
        if bar:
            bar.close()
        publisher.stop()
    return len(futures)
