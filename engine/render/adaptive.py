"""Adaptive render quality for live windows: keep the frame rate, then the edges.

On a software rasteriser quality ``auto`` in a window starts at ``medium`` (the post
anti-aliasing pass, ``engine.render.post_aa``), which costs a 720p frame 7-12 ms on a
2-core machine. A kiosk showing one avatar has room for more: ``geometric`` (the edges
that show drawn as exact-coverage lines, about 2 ms an avatar more) is as clean as 4x
MSAA. One showing four may not have room even for the pass, and a face that moves at
20 fps reads worse than one with aliased edges at 28. So, as game engines scale their
quality to hold a frame rate, a live ``auto`` App walks a ladder of qualities, best
first (``geometric``, ``medium``, ``low``):

- down one rung when the median frame over about a second misses the budget;
- up one rung once this rung's frames plus what the rung above costs fit with headroom:
  its cost as measured when it was left (its median then minus this rung's now), or, for
  a rung not yet tried, a guess (``UNTRIED_COST_SHARE`` of the budget), which a try that
  misses replaces with the measured one.

A step up that misses again within ``FLAP_S`` waits twice as long before the next try (at
most ``MAX_HOLD_S``), so the quality does not flap on a machine at the edge.

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
HEADROOM = 0.85  # up a rung only if its frames would use at most this much of the budget
UNTRIED_COST_SHARE = 0.2  # of the budget: what a rung never measured is assumed to cost
WINDOW = 30  # frames in a median: about a second at the rates this is for
HOLD_S = 2.0  # seconds on a rung before a step up is tried
MAX_HOLD_S = 64.0
FLAP_S = 10.0  # a drop this soon after a step up doubles the hold
# A live window's ``auto`` on a software rasteriser, best first; it starts at ``medium``
# (``quality.resolve_quality(..., live=True)``).
LIVE_LADDER = ("geometric", "medium", "low")


class AdaptiveQuality:
    """Chooses among ``levels`` (best first; it starts at ``levels[start]``) from each
    frame's work time: feed ``observe(work_s, now)`` once a frame; it returns the quality
    to switch to, or None to keep the current one. Render thread only."""

    def __init__(
        self,
        *levels: Quality,
        min_fps: float = MIN_LIVE_FPS,
        window: int = WINDOW,
        hold_s: float = HOLD_S,
        start: int = 0,
    ) -> None:
        if len(levels) < 2 or not 0 <= start < len(levels):
            raise ValueError("two or more levels, and a start among them")
        self.levels = levels
        self.level = start
        self.budget_s = WORK_SHARE / min_fps
        self.window = window
        self.hold_s = hold_s
        self._times: deque[float] = deque(maxlen=window)
        # Per rung: its median when it last missed, and what it costs over the rung below
        # (measured against that rung's frames; None: not yet known).
        self._missed: list[float | None] = [None] * len(levels)
        self._costs: list[float | None] = [None] * len(levels)
        self._switched_at = 0.0
        self._raised_at: float | None = None  # when it last went up

    @property
    def current(self) -> Quality:
        return self.levels[self.level]

    @property
    def pass_cost_s(self) -> float | None:
        """What the rung above costs over this one, as measured (None: at the top, or not
        measured yet)."""
        return self._costs[self.level - 1] if self.level > 0 else None

    @pass_cost_s.setter
    def pass_cost_s(self, seconds: float | None) -> None:
        if self.level > 0:
            self._costs[self.level - 1] = seconds

    def observe(self, work_s: float, now: float) -> Quality | None:
        self._times.append(work_s)
        if len(self._times) < self.window:
            return None
        median = statistics.median(self._times)
        k = self.level
        above = self._missed[k - 1] if k > 0 else None
        if above is not None and self._costs[k - 1] is None:
            self._costs[k - 1] = max(0.0, above - median)
        if median > self.budget_s:
            if k == len(self.levels) - 1:
                return None
            if self._raised_at is not None and now - self._raised_at < FLAP_S:
                self.hold_s = min(2 * self.hold_s, MAX_HOLD_S)
            self._missed[k] = median
            self._costs[k] = None  # measured again against the next rung's frames
            return self._switch(k + 1, now)
        if k == 0 or now - self._switched_at < self.hold_s:
            return None
        cost = self._costs[k - 1]
        if cost is None:  # never tried: a guess, which a try that misses replaces
            cost = UNTRIED_COST_SHARE * self.budget_s
        if median + cost > HEADROOM * self.budget_s:
            return None
        self._raised_at = now
        return self._switch(k - 1, now)

    def _switch(self, level: int, now: float) -> Quality:
        self.level = level
        self._switched_at = now
        self._times.clear()  # the next median is of the new rung's frames only
        return self.current
