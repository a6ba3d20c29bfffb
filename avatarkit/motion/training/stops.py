"""Lip closures as connected human speech makes them, from a synthesizer's clean ones.

Synthesizers close /p b m/ with a long, nearly silent gap; a person reading aloud
keeps voicing through a /b/ or /m/ (a low "voice bar" under 500 Hz) and shortens the
closure to 40-60 ms between words ("to be", "been made"). The model, trained on the
clean gaps, misses those closures on real speech (docs/motion-model.md, training
notes). This augmentation makes some closures of a clean clip shorter and voiced;
the labels move with the audio.
"""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
from scipy import signal

CLOSURE = "PP"
FADE_S = 0.004  # crossfades at every splice and at the ends of the voice bar


def connected_stops(clip, rng: random.Random, share: float):
    """``clip`` (a ``corpus.Clip``) with about ``share`` of its p/b/m closures shortened
    by up to 45% and filled with a voice bar 8-24 dB below the sound before them."""
    x = clip.audio.astype(np.float64)
    sr = clip.sample_rate
    fade = max(1, int(FADE_S * sr))
    spans = list(clip.spans)
    low = None
    for i in range(len(spans) - 1, -1, -1):  # from the end: a cut moves only later spans
        vis, start, end = spans[i]
        length = end - start
        if vis != CLOSURE or length < 6 * fade or start < length or rng.random() >= share:
            continue
        if rng.random() < 0.7:  # voicing through the closure (not over its release)
            if low is None:
                cutoff = rng.uniform(250, 500)
                low = signal.sosfiltfilt(signal.butter(4, cutoff, fs=sr, output="sos"), x)
            stop = start + int(length * rng.uniform(0.6, 0.85))
            before = x[max(0, start - int(0.05 * sr)) : start]
            level = np.sqrt(np.mean(before**2)) if len(before) else 0.0
            bar = low[start - (stop - start) : start].copy()  # the preceding low band
            bar_level = np.sqrt(np.mean(bar**2))
            if level > 0 and bar_level > 0:
                bar *= level * 10 ** (-rng.uniform(8, 24) / 20) / bar_level
                bar *= _envelope(len(bar), fade)
                x[start:stop] += bar
        if rng.random() < 0.6:  # a shorter hold: cut from its middle
            cut = int(length * rng.uniform(0.15, 0.45))
            at = start + (length - cut) // 2
            x = _splice(x, at, at + cut, fade)
            spans = [(v, _shift(s, at, cut), _shift(e, at, cut)) for v, s, e in spans]
    return replace(clip, audio=x.astype(np.float32), spans=spans)


def _envelope(n: int, fade: int) -> np.ndarray:
    env = np.ones(n)
    ramp = np.linspace(0.0, 1.0, min(fade, n // 2), endpoint=False)
    env[: len(ramp)] = ramp
    env[n - len(ramp) :] = ramp[::-1]
    return env


def _splice(x: np.ndarray, a: int, b: int, fade: int) -> np.ndarray:
    """``x`` without samples ``a:b``, the two sides crossfaded over ``fade`` samples."""
    fade = min(fade, a, len(x) - b)
    ramp = np.linspace(0.0, 1.0, fade, endpoint=False)
    joined = x[a - fade : a] * (1 - ramp) + x[b - fade : b] * ramp
    return np.concatenate([x[: a - fade], joined, x[b:]])


def _shift(t: int, at: int, cut: int) -> int:
    """A sample index after ``cut`` samples were removed at ``at``."""
    return t if t <= at else max(at, t - cut)
