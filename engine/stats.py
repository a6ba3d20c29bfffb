"""Frame-rate monitor: rolling frames per second and frame times over a time window.

Measured on the wall clock whatever the App's clock is, so an offline render reports
how fast it really renders.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

DEFAULT_WINDOW_S = 2.0


class FrameStats:
    def __init__(
        self, window_s: float = DEFAULT_WINDOW_S, timer: Callable[[], float] = time.perf_counter
    ) -> None:
        self.window_s = window_s
        self._timer = timer
        self._stamps: deque[float] = deque()
        self.frames = 0

    def tick(self) -> None:
        """Record that a frame has just completed."""
        now = self._timer()
        self._stamps.append(now)
        self.frames += 1
        while now - self._stamps[0] > self.window_s:
            self._stamps.popleft()

    @property
    def fps(self) -> float:
        """Frames per second over the window (0 until two frames are in it)."""
        if len(self._stamps) < 2:
            return 0.0
        span = self._stamps[-1] - self._stamps[0]
        return (len(self._stamps) - 1) / span if span > 0 else 0.0

    @property
    def frame_ms(self) -> float:
        """Mean frame time over the window, milliseconds."""
        fps = self.fps
        return 1000.0 / fps if fps else 0.0
