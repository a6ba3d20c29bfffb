"""Garbage collection at load time, not in the middle of speech.

CPython's full (generation 2) collection walks every object it tracks: once two bundled
avatars are loaded, about 43,000 (modules, the SDK, meshes' Python structures), and one
automatic pass held the GIL for 15-27 ms on a 2-core machine: the frame it fell in was
presented that much later than it was posed for, so the face showed a frame behind the
sound (``benchmarks/av_sync_device.py``), whichever thread's allocation triggered it.

Game engines collect at loading time instead. ``LoadTimeGC.before_frame`` runs a full
collection and then freezes the survivors (``gc.freeze``), so the automatic full
collections that follow walk only what was allocated since. It does so on the first frame
of a real-time loop and again after the scene gains or loses an entity or a component (a
load or an unload), at most once per ``min_interval_s``. A settle after an unload (or
the first) unfreezes first, so cycles among objects frozen earlier (the unloaded
avatar's) are freed then; one after loads only walks what is new since the last freeze:
an avatar joining a four-avatar scene paid 11-19 ms for the full walk in its join frame,
against 0.2 ms for what was new. A virtual clock (offline renders, tests) never
settles: nobody watches its frames' timing.

Frozen objects are invisible to the collection at interpreter exit too, and left frozen
they crashed the real-audio player (``tests/realaudio/play.py``: PyAudio, EGL, an embedded
server) on its way out: SIGSEGV after its last line in 4 of 20 runs. So the App's
``close()`` and an ``atexit`` hook unfreeze everything again (0 of 20).
"""

from __future__ import annotations

import atexit
import gc
import time

atexit.register(gc.unfreeze)  # before the interpreter's last collection


class LoadTimeGC:
    def __init__(self, min_interval_s: float = 1.0, enabled: bool = True) -> None:
        self.enabled = enabled
        self.min_interval_s = min_interval_s
        self.settles = 0  # full collections run so far
        self.last_ms = 0.0  # how long the last one took
        self._version: int | None = None  # the scene structure settled for
        self._removals: int | None = None  # and its removal count
        self._last = -float("inf")

    def before_frame(self, structure_version: int, realtime: bool, removals: int = 0) -> None:
        """Settle if the scene's structure changed since the last settle (or never
        settled), the loop runs in real time and the last settle is long enough ago;
        everything again where something was removed (``removals`` moved) since."""
        if not (self.enabled and realtime) or structure_version == self._version:
            return
        now = time.perf_counter()
        if now - self._last < self.min_interval_s:
            return
        unload = removals != self._removals
        self._version, self._removals = structure_version, removals
        self.settle(everything=unload)

    def settle(self, everything: bool = True) -> float:
        """A collection, then the survivors frozen; returns its milliseconds.
        ``everything``: of every object (frozen ones too), else of those since the last
        freeze."""
        start = time.perf_counter()
        if everything:
            gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._last = time.perf_counter()
        self.settles += 1
        self.last_ms = 1000.0 * (self._last - start)
        return self.last_ms

    def release(self) -> None:
        """Unfreeze what the settles froze (the App's ``close()``): an ordinary
        collection, and the one at exit, see every object again."""
        if self.settles:
            gc.unfreeze()
