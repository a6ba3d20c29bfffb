"""The mixer: N mono sources summed into one stereo stream for one output device."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from engine.audio.source import AudioSource

if TYPE_CHECKING:
    from engine.audio.devices import AudioDevice

CHANNELS = 2
# The audio clock's placement of a device pull follows each new pull by this share of its
# error, so one callback that comes early or late (PortAudio through PulseAudio: 32 ms
# blocks, a callback up to 35 ms off the line the others lie on) moves the clock a tenth as
# much; a jump beyond RESYNC_S (a start, an underrun, a device change) is taken at once.
PULL_GAIN = 0.1
RESYNC_S = 0.05


def pan_gains(pan: float) -> tuple[float, float]:
    """Balance law: centre plays at unity on both sides, +-1 silences the other side.

    Unity at the centre keeps a single centred voice bit-exact (the render command writes
    the input audio unchanged).
    """
    pan = min(1.0, max(-1.0, pan))
    return min(1.0, 1.0 - pan), min(1.0, 1.0 + pan)


class Mixer:
    """Sums its sources into float32 stereo frames; owned by exactly one device at a time.

    ``frames_mixed`` counts every frame handed to the device (silence included), and the
    device sets ``latency_frames``; together they place each source's samples in time.
    A real-time device (``realtime=True``) plays continuously between its pulls, so the
    audible frame advances with ``clock`` from the last pull (ffplay's audio clock: the
    pts of the last callback plus the time elapsed since), each pull's placement smoothed
    against the line the earlier ones lie on (``PULL_GAIN``); a virtual device steps
    exactly.
    """

    def __init__(self, sample_rate: int = 16000) -> None:
        self.sample_rate = sample_rate
        self._sources: tuple[AudioSource, ...] = ()
        self._lock = threading.Lock()
        self.frames_mixed = 0
        self.latency_frames = 0
        self.device: AudioDevice | None = None  # set by the device that owns the mixer
        self.on_device_lost: list[Callable[[Exception], None]] = []
        self.volume = 1.0
        self.realtime = False
        self.clock: Callable[[], float] = time.perf_counter  # a simulation may replace it
        # (mixer frame playing at clock() time ``at``, at): the smoothed last pull.
        self._last_pull: tuple[float, float] | None = None
        self._marked = False  # a device reports its own play marks (mark_playing)

    @property
    def sources(self) -> tuple[AudioSource, ...]:
        return self._sources

    @property
    def audible_frame(self) -> int:
        """Frames heard so far: mixed frames minus those still in flight to the speaker."""
        pull = self._last_pull
        if not self.realtime or pull is None:
            return self.frames_mixed - self.latency_frames
        start, pulled_at = pull
        played = int(start + (self.clock() - pulled_at) * self.sample_rate)
        return min(played, self.frames_mixed) - self.latency_frames

    @property
    def latency(self) -> float:
        return self.latency_frames / self.sample_rate

    def add_source(self, volume: float = 1.0, pan: float = 0.0) -> AudioSource:
        source = AudioSource(self, volume, pan)
        with self._lock:
            self._sources = (*self._sources, source)
        return source

    def remove_source(self, source: AudioSource) -> None:
        with self._lock:
            self._sources = tuple(s for s in self._sources if s is not source)

    def mix(self, frames: int) -> np.ndarray:
        """Device side: the next ``frames`` stereo frames, float32 shape (frames, 2)."""
        out = np.zeros((frames, CHANNELS), dtype=np.float32)
        start = self.frames_mixed
        if self.realtime and not self._marked:
            self._place(start, self.clock())
        for source in self._sources:
            samples = source.take(frames, start)
            if not len(samples):
                continue
            left, right = pan_gains(source.pan)
            gain = source.volume * self.volume
            out[: len(samples), 0] += samples * (gain * left)
            out[: len(samples), 1] += samples * (gain * right)
        self.frames_mixed = start + frames
        np.clip(out, -1.0, 1.0, out=out)
        return out

    def restart_clock(self) -> None:
        """A new device: forget the last one's pulls and whether it marked them."""
        self._last_pull, self._marked = None, False

    def mark_playing(self, frame: int, at: float) -> None:
        """A device that knows better says mixer frame ``frame`` plays at ``clock()`` time
        ``at``."""
        self._marked = True
        self._place(frame, at)

    def _place(self, frame: float, at: float) -> None:  # the device's thread
        """A pull says ``frame`` plays at ``at``: follow it by ``PULL_GAIN`` of its error
        from where the last placement puts that moment (one tuple: read without a lock)."""
        last = self._last_pull
        if last is not None:
            expected = last[0] + (at - last[1]) * self.sample_rate
            error = frame - expected
            if abs(error) <= RESYNC_S * self.sample_rate:
                frame = expected + PULL_GAIN * error
        self._last_pull = (frame, at)

    def device_lost(self, error: Exception) -> None:
        for callback in list(self.on_device_lost):
            callback(error)
