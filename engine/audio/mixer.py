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
    pts of the last callback plus the time elapsed since); a virtual device steps exactly.
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
        self._last_pull = (0, 0.0)  # (first frame of the last pull, clock() at that pull)

    @property
    def sources(self) -> tuple[AudioSource, ...]:
        return self._sources

    @property
    def audible_frame(self) -> int:
        """Frames heard so far: mixed frames minus those still in flight to the speaker."""
        if not self.realtime:
            return self.frames_mixed - self.latency_frames
        start, pulled_at = self._last_pull
        played = start + int((self.clock() - pulled_at) * self.sample_rate)
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
        if self.realtime:
            self._last_pull = (start, self.clock())
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

    def mark_playing(self, frame: int, at: float) -> None:
        """A device that knows better says mixer frame ``frame`` plays at ``clock()`` time
        ``at``."""
        self._last_pull = (frame, at)

    def device_lost(self, error: Exception) -> None:
        for callback in list(self.on_device_lost):
            callback(error)
