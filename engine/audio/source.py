"""One stream of mono PCM feeding the mixer, with exact consumption accounting.

Writers (network/app threads) append samples; the device thread takes them through the
mixer. Every block the device takes is recorded as a segment (device frame -> source
sample), so the source can say which of its samples is audible at any device time:
that is the audio clock an avatar's face follows.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine.audio.mixer import Mixer

# Segments older than this many device frames behind the newest one are pruned; it must
# exceed any device latency we expect (a few hundred ms at 48 kHz is far below it).
_SEGMENT_HISTORY = 64


class AudioSource:
    """A queue of float32 samples at the mixer's rate with volume, pan and pause.

    ``paused``: the source outputs silence and consumes nothing (its clock freezes).
    ``consumed``: samples the device has taken so far (never counts silence).
    ``epoch``: bumped by ``clear()``; a ``write(..., epoch=e)`` made with an older epoch
    is dropped, so a writer racing an interrupt on another thread cannot refill the
    source with audio that was just cut.
    """

    def __init__(self, mixer: Mixer, volume: float = 1.0, pan: float = 0.0) -> None:
        self._mixer = mixer
        self._lock = threading.Lock()
        self._chunks: deque[np.ndarray] = deque()
        self._head = 0  # read offset inside _chunks[0]
        self._queued = 0
        self._segments: deque[tuple[int, int, int]] = deque(maxlen=_SEGMENT_HISTORY)
        self.written = 0  # samples ever queued (cleared ones excluded)
        self.consumed = 0
        self.epoch = 0
        self.volume = volume
        self.pan = pan
        self.paused = False

    @property
    def latency(self) -> float:
        """Seconds from the device taking a sample to it being heard (the mixer's)."""
        return self._mixer.latency

    @property
    def sample_rate(self) -> int:
        return self._mixer.sample_rate

    @property
    def queued(self) -> int:
        """Samples written but not yet taken by the device."""
        return self._queued

    def write(self, pcm: bytes | np.ndarray, *, epoch: int | None = None) -> int:
        """Queue mono PCM (s16le bytes, or float32 in -1..1); returns the samples queued
        (0 when ``epoch`` is given and a ``clear()`` has happened since)."""
        if isinstance(pcm, bytes | bytearray | memoryview):
            samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        else:
            samples = np.asarray(pcm, dtype=np.float32).reshape(-1)
        if not len(samples):
            return 0
        with self._lock:
            if epoch is not None and epoch != self.epoch:
                return 0
            self._chunks.append(samples)
            self._queued += len(samples)
            self.written += len(samples)
        return len(samples)

    def clear(self, *, new_epoch: bool = True) -> int:
        """Drop everything queued (interrupt); returns the samples dropped. ``new_epoch``:
        also refuse later writes tagged with the current epoch (False: the caller is
        the writer itself)."""
        with self._lock:
            if new_epoch:
                self.epoch += 1
            dropped = self._queued
            self._chunks.clear()
            self._head = 0
            self._queued = 0
            self.written -= dropped
        return dropped

    def take(self, n: int, device_frame: int) -> np.ndarray:
        """Device side: up to ``n`` samples starting at mixer frame ``device_frame``."""
        if self.paused or n <= 0:
            return np.zeros(0, dtype=np.float32)
        with self._lock:
            parts, need = [], n
            while need and self._chunks:
                chunk = self._chunks[0]
                part = chunk[self._head : self._head + need]
                parts.append(part)
                need -= len(part)
                self._head += len(part)
                if self._head >= len(chunk):
                    self._chunks.popleft()
                    self._head = 0
            out = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
            if len(out):
                self._segments.append((device_frame, self.consumed, len(out)))
                self.consumed += len(out)
                self._queued -= len(out)
        return out

    def position(self) -> int:
        """Index of this source's sample audible right now (device latency included).

        Between segments (the source was dry or paused) the position holds at the end of
        the last audible sample, so the clock never runs ahead of real sound.
        """
        audible = self._mixer.audible_frame
        with self._lock:
            pos = self.consumed
            for dev_start, sample_start, count in reversed(self._segments):
                if dev_start <= audible:
                    return sample_start + min(count, audible - dev_start)
                pos = sample_start
        return pos
