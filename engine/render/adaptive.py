"""Adaptive render quality for live windows: keep the frame rate, then the edges.

On a software rasteriser quality ``auto`` means ``medium`` (the post anti-aliasing pass,
``engine.render.post_aa``), which costs a 720p frame 7-12 ms on a 2-core machine. A kiosk
showing one avatar has room for it; one showing four may not, and a face that moves at
20 fps reads worse than one with aliased edges at 28. So, as game engines scale their
quality to hold a frame rate, a live ``auto`` App drops to ``low`` when the median frame
over about a second misses the budget, and goes back to ``medium`` once the frame without
the pass plus the pass's measured cost fits with headroom. A step back up that misses
again waits twice as long before the next try (at most ``MAX_HOLD_S``), so the quality
does not flap on a machine at the edge.

Frame times are the frame's work (update, draws, the rasteriser finishing them), not
the pacing sleep or the swap's wait for vertical sync. Offline renders never adapt: their
pixels must not depend on how busy the machine was.
"""

from __future__ import annotations

import statistics
from collections import deque

from engine.render.quality import Quality

MIN_LIVE_FPS = 30.0  # the frame rate a live window keeps before it keeps its edges
WORK_SHARE = 0.9  # of the frame interval: the rest is the window's blit and swap
HEADROOM = 0.85  # back up only if the frame with the pass would use at most this much
WINDOW = 30  # frames in a median: about a second at the rates this is for
HOLD_S = 2.0  # seconds at the fallback before a step back up is tried
MAX_HOLD_S = 64.0
FLAP_S = 10.0  # a drop this soon after a step up doubles the hold


class AdaptiveQuality:
    """Chooses between ``full`` and ``fallback`` from each frame's work time: feed
    ``observe(work_s, now)`` once a frame; it returns the quality to switch to, or None
    to keep the current one. Render thread only."""

    def __init__(
        self,
        full: Quality,
        fallback: Quality,
        min_fps: float = MIN_LIVE_FPS,
        window: int = WINDOW,
        hold_s: float = HOLD_S,
    ) -> None:
        self.full, self.fallback = full, fallback
        self.current = full
        self.budget_s = WORK_SHARE / min_fps
        self.window = window
        self.hold_s = hold_s
        self._times: deque[float] = deque(maxlen=window)
        self._full_median: float | None = None  # the last full-quality median that missed
        self.pass_cost_s: float | None = None  # what full costs over fallback, as measured
        self._switched_at = 0.0
        self._raised_at: float | None = None  # when it last went back up

    def observe(self, work_s: float, now: float) -> Quality | None:
        self._times.append(work_s)
        if len(self._times) < self.window:
            return None
        median = statistics.median(self._times)
        if self.current is self.full:
            if median <= self.budget_s:
                return None
            if self._raised_at is not None and now - self._raised_at < FLAP_S:
                self.hold_s = min(2 * self.hold_s, MAX_HOLD_S)
            self._full_median = median
            self.pass_cost_s = None  # measured again against the fallback's frames
            return self._switch(self.fallback, now)
        if self.pass_cost_s is None and self._full_median is not None:
            self.pass_cost_s = max(0.0, self._full_median - median)
        if now - self._switched_at < self.hold_s or self.pass_cost_s is None:
            return None
        if median + self.pass_cost_s > HEADROOM * self.budget_s:
            return None
        self._raised_at = now
        return self._switch(self.full, now)

    def _switch(self, quality: Quality, now: float) -> Quality:
        self.current = quality
        self._switched_at = now
        self._times.clear()  # the next median is of the new quality's frames only
        return quality
