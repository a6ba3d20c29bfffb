"""Loudness-envelope lip sync: the baseline every real model must beat.

jawOpen follows the RMS loudness of each frame's audio. Kept as the benchmark baseline;
``create_stream(model="envelope")`` (``--model envelope``) asks for it by name. It is never
a stand-in for missing weights.
"""

from __future__ import annotations

import numpy as np

from avatarkit.arkit import ARKIT_INDEX
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.motion.frame import MotionFrame
from avatarkit.motion.stream import check_fps, check_sample_rate

_JAW = ARKIT_INDEX["jawOpen"]


class EnvelopeStream:
    def __init__(self, sample_rate: int = 16000, fps: int = 30) -> None:
        self.sample_rate, self.fps = check_sample_rate(sample_rate), check_fps(fps)
        self._odd = b""  # a dangling byte of an odd-length chunk waits for its pair
        self._pending = np.zeros(0, dtype=np.float32)
        self._consumed = 0  # samples already turned into frames
        self._next_index = 0
        self._level = 0.0
        self._done = False

    def _frame_end(self, index: int) -> int:
        """Sample position where frame ``index``'s window ends (exact integer maths)."""
        return ((index + 1) * self.sample_rate + self.fps - 1) // self.fps

    def push(self, pcm: bytes) -> list[MotionFrame]:
        if self._done:
            raise AvatarKitError(ErrorCode.INVALID_REQUEST, "stream already finished")
        data = self._odd + bytes(pcm)
        cut = len(data) & ~1
        self._odd = data[cut:]
        samples = np.frombuffer(data[:cut], dtype="<i2").astype(np.float32) / 32768.0
        self._pending = np.concatenate([self._pending, samples])
        return self._drain(final=False)

    def finish(self) -> list[MotionFrame]:
        frames = self._drain(final=True)
        self._done = True
        return frames

    def _drain(self, final: bool) -> list[MotionFrame]:
        frames = []
        total = self._consumed + len(self._pending)
        while True:
            end = self._frame_end(self._next_index)
            start = self._consumed
            if end > total and not (final and start < total):
                break
            take = min(end, total) - start
            chunk, self._pending = self._pending[:take], self._pending[take:]
            self._consumed += take
            rms = float(np.sqrt(np.mean(chunk**2))) if take else 0.0
            target = min(1.0, rms * 6.0)
            self._level += (target - self._level) * (0.6 if target > self._level else 0.3)
            frame = MotionFrame(self._next_index, self.fps)
            frame.weights[_JAW] = self._level
            frames.append(frame)
            self._next_index += 1
        return frames
