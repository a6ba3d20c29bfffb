"""Helpers for testing and benchmarking apps built on AvatarKit (no test framework needed)."""

from __future__ import annotations

import numpy as np


def speech_like_pcm(seconds: float, sample_rate: int = 16000, seed: int = 0) -> bytes:
    """Mono PCM s16le that loads a lip-sync model like speech does: a voiced tone with
    harmonics, gated into ~4 Hz syllables, plus a little noise. Deterministic per seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    voice = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 6))
    gate = np.clip(np.sin(2 * np.pi * 4 * t) * 2, 0, 1)
    signal = (voice * gate * 0.3 + rng.normal(0, 0.01, t.size)) * 32767
    return np.clip(signal, -32768, 32767).astype("<i2").tobytes()
