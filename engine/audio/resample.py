"""Streaming rate conversion between the mixer's rate and a sound card's.

A windowed-sinc interpolator (Kaiser window, 16 taps), exact in time: output frame ``j``
of the stream is input frame ``j * in_rate / out_rate``, computed in integers, so the
audio clock built on it never drifts. Cut-off at the lower of the two Nyquist rates, so
16 kHz speech played at 44.1/48 kHz has no images and 48 kHz mixed down has no aliases.
"""

from __future__ import annotations

import numpy as np

HALF_TAPS = 8  # input frames each side of an output frame
KAISER_BETA = 8.0  # ~80 dB stop band


class StreamResampler:
    """Feed input with ``push``, take output with ``pull``; ``input_needed(n)`` says how
    many more input frames ``pull(n)`` needs."""

    def __init__(self, in_rate: int, out_rate: int, channels: int = 2) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError("sample rates must be positive")
        self.in_rate, self.out_rate = int(in_rate), int(out_rate)
        self.cutoff = min(1.0, self.out_rate / self.in_rate)
        # Leading zeros: output frame 0 is centred on input frame 0 with full history.
        self._buf = np.zeros((HALF_TAPS, channels), np.float32)
        self._buf_start = -HALF_TAPS  # input index of _buf[0]
        self.pulled = 0  # output frames produced so far

    def position(self, out_frame: int | None = None) -> int:
        """The input frame (floor) under output frame ``out_frame`` (default: the next)."""
        j = self.pulled if out_frame is None else out_frame
        return j * self.in_rate // self.out_rate

    def input_needed(self, n: int) -> int:
        """Input frames to ``push`` before ``pull(n)`` can run (0 when enough is buffered)."""
        last = self.position(self.pulled + n - 1)
        have = self._buf_start + len(self._buf)
        return max(0, last + HALF_TAPS + 1 - have)

    def push(self, frames: np.ndarray) -> None:
        self._buf = np.concatenate([self._buf, np.asarray(frames, np.float32)])

    def pull(self, n: int) -> np.ndarray:
        """The next ``n`` output frames, float32 (n, channels)."""
        if self.input_needed(n):
            raise ValueError("not enough input pushed")
        j = np.arange(self.pulled, self.pulled + n, dtype=np.int64)
        num = j * self.in_rate
        base = num // self.out_rate  # input frame at or before each output frame
        frac = (num % self.out_rate) / self.out_rate
        k = np.arange(-HALF_TAPS + 1, HALF_TAPS + 1)  # tap offsets from base
        x = frac[:, None] - k[None, :]  # distance of each tap from the output instant
        window = np.kaiser(2 * HALF_TAPS + 1, KAISER_BETA)
        w_pos = np.interp(x, np.arange(-HALF_TAPS, HALF_TAPS + 1), window)
        weights = np.sinc(self.cutoff * x) * w_pos
        weights /= weights.sum(axis=1, keepdims=True)  # unity gain at DC, every phase
        idx = base[:, None] + k[None, :] - self._buf_start
        out = np.einsum("nk,nkc->nc", weights, self._buf[idx]).astype(np.float32)
        self.pulled += n
        keep_from = self.position() - HALF_TAPS + 1 - self._buf_start
        if keep_from > 0:
            self._buf = self._buf[keep_from:]
            self._buf_start += keep_from
        return out
