"""Frame clocks: where ``dt`` comes from.

``RealtimeClock`` follows the wall clock (windows, live apps) and clamps long stalls so a
paused debugger does not launch the simulation forward. ``ManualClock`` advances exactly
``1/fps`` per frame (offline and deterministic rendering, tests): frame ``n`` is at
``n / fps`` seconds, computed from the frame count so it never accumulates rounding drift.

``HeadlessClock`` (``App.headless``'s default) is one or the other, whichever matches the
audio: virtual while no real-time audio device plays, the wall clock while one does.

``Schedule`` runs callbacks at times of such a clock (pyglet's ``schedule_once`` /
``schedule_interval``): its owner advances it once per frame, and the callbacks run there,
on the owner's thread. ``App.schedule`` is the frame loop's; a component without an App
(the avatar controller) keeps its own and advances it with its own time.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

MAX_REALTIME_DT = 0.25  # seconds; a longer stall is treated as this long


class Clock(Protocol):
    fps: float
    frame: int  # frames ticked so far

    @property
    def time(self) -> float:
        """Seconds since the clock started (at the last tick)."""

    def tick(self) -> float:
        """Advance by one frame; return its ``dt`` in seconds."""


class ManualClock:
    """Virtual clock: every tick is exactly ``1/fps`` seconds, wall time is ignored."""

    def __init__(self, fps: float = 30.0) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.fps = float(fps)
        self.frame = 0

    @property
    def time(self) -> float:
        return self.frame / self.fps

    def tick(self) -> float:
        before = self.time
        self.frame += 1
        return self.time - before


class RealtimeClock:
    """Wall clock (``time.perf_counter``); ``fps`` is the target rate for ``wait``."""

    def __init__(self, fps: float = 60.0, timer: Callable[[], float] = time.perf_counter) -> None:
        self.fps = float(fps)
        self.frame = 0
        self._timer = timer
        self._start = timer()
        self._last = self._start
        self._time = 0.0

    @property
    def time(self) -> float:
        return self._time

    def tick(self) -> float:
        now = self._timer()
        dt = min(now - self._last, MAX_REALTIME_DT)
        self._last = now
        self._time += dt
        self.frame += 1
        return dt

    def wait(self) -> None:
        """Sleep off what is left of this frame's budget (frame pacing for windows)."""
        remaining = self._last + 1.0 / self.fps - self._timer()
        if remaining > 0:
            time.sleep(remaining)


ScheduledCallback = Callable[[float], object]  # called with the seconds since it was last due


@dataclass(order=True)
class _Entry:
    due: float
    order: int  # ties run in the order scheduled
    callback: ScheduledCallback = field(compare=False)
    interval: float | None = field(compare=False)  # None: once
    since: float = field(compare=False)  # when it was scheduled or last ran
    cancelled: bool = field(default=False, compare=False)


class Schedule:
    """Callbacks due at times of one clock; nothing runs but inside ``advance``.

    An interval callback's next run is measured from when it last ran, so a late frame
    delays the series instead of bursting to catch up (what a periodic report wants).
    """

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self._heap: list[_Entry] = []
        self._due: list[_Entry] = []  # popped by the advance under way
        self._order = itertools.count()

    def schedule_once(self, callback: ScheduledCallback, delay: float) -> None:
        """Run ``callback(dt)`` once, ``delay`` seconds from now (0: at the next advance)."""
        self._push(callback, self.now + max(0.0, delay), None)

    def schedule_interval(
        self, callback: ScheduledCallback, interval: float, *, first: float | None = None
    ) -> None:
        """Run ``callback(dt)`` every ``interval`` seconds; the first run ``first`` seconds
        from now (default: one interval)."""
        if interval <= 0:
            raise ValueError("interval must be positive")
        delay = interval if first is None else max(0.0, first)
        self._push(callback, self.now + delay, interval)

    def unschedule(self, callback: ScheduledCallback) -> None:
        """Forget every pending run of ``callback`` (no error when there is none)."""
        for entry in (*self._heap, *self._due):
            if entry.callback == callback:
                entry.cancelled = True

    def advance(self, now: float) -> int:
        """Move to clock time ``now`` and run what is due, earliest first; returns how many
        ran. A callback may schedule or unschedule others (they run from the next advance
        on if due)."""
        self.now = now
        ran, heap = 0, self._heap
        self._due = due = []
        while heap and heap[0].due <= now:
            due.append(heapq.heappop(heap))
        for entry in due:
            if entry.cancelled:
                continue
            if entry.interval is not None:
                self._push(entry.callback, now + entry.interval, entry.interval)
            entry.callback(now - entry.since)
            ran += 1
        self._due = []
        return ran

    def __len__(self) -> int:
        return sum(not e.cancelled for e in self._heap)

    def _push(self, callback: ScheduledCallback, due: float, interval: float | None) -> None:
        heapq.heappush(self._heap, _Entry(due, next(self._order), callback, interval, self.now))


class HeadlessClock:
    """Virtual (exactly ``1/fps`` per frame) while ``realtime()`` is False, the wall clock
    paced at ``fps`` while it is True.

    ``realtime`` says whether a real-time audio device is playing (``App.headless`` asks
    the engine's audio devices). Offline renders drive a ``VirtualDevice`` and stay
    frame-exact; an app whose speech goes to a sound card (or the real-time null device)
    runs in real time, so ``app.run(5)`` is five seconds of speech either way and the
    frame loop never races ahead of the audio it is meant to follow.
    """

    pace_headless = True  # App.run calls wait() even without a window

    def __init__(
        self,
        fps: float,
        realtime: Callable[[], bool],
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.fps = float(fps)
        self.frame = 0
        self._realtime = realtime
        self.realtime = False  # which way the last tick went
        self._timer = timer
        self._time = 0.0
        self._last: float | None = None  # wall time of the last real-time tick

    @property
    def time(self) -> float:
        return self._time

    def tick(self) -> float:
        self.realtime = self._realtime()  # decided once per frame, read back by the App
        if self.realtime:
            now = self._timer()
            dt = 1.0 / self.fps if self._last is None else min(now - self._last, MAX_REALTIME_DT)
            self._last = now
        else:
            dt, self._last = 1.0 / self.fps, None
        self._time += dt
        self.frame += 1
        return dt

    def wait(self) -> None:
        """Real time only: sleep off the rest of the frame (headless need not spin)."""
        if self._last is not None:
            remaining = self._last + 1.0 / self.fps - self._timer()
            if remaining > 0:
                time.sleep(remaining)
