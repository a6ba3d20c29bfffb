"""Connected-speech closures (``training/stops.py``): shorter, voiced p/b/m holds whose
labels move with the audio, and nothing else touched."""

from __future__ import annotations

import random

import numpy as np

from avatarkit.motion.training.corpus import Clip
from avatarkit.motion.training.stops import connected_stops

RATE = 16000


def _clip() -> Clip:
    """Vowel (a 150 Hz buzz), silent 90 ms closure, vowel, closure, vowel."""
    t = np.arange(RATE) / RATE
    buzz = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12)) * 0.2
    layout = [("AA", 4000), ("PP", 1440), ("AA", 4000), ("PP", 1440), ("AA", 3000)]
    audio, spans, at = [], [], 0
    for vis, n in layout:
        audio.append(buzz[:n] if vis == "AA" else np.zeros(n))
        spans.append((vis, at, at + n))
        at += n
    return Clip(np.concatenate(audio).astype(np.float32), RATE, spans, "ababa", "test")


def _durations(clip: Clip, vis: str) -> list[int]:
    return [e - s for v, s, e in clip.spans if v == vis]


def test_no_share_changes_nothing():
    clip = _clip()
    out = connected_stops(clip, random.Random(0), 0.0)
    assert out.spans == clip.spans and np.array_equal(out.audio, clip.audio)


def test_cuts_move_the_labels_with_the_audio():
    clip = _clip()
    shortened = 0
    for seed in range(40):
        out = connected_stops(clip, random.Random(seed), 1.0)
        removed = len(clip.audio) - len(out.audio)
        assert out.spans[-1][2] == len(out.audio)  # the labels still end with the audio
        assert sum(_durations(clip, "PP")) - sum(_durations(out, "PP")) == removed
        assert _durations(out, "AA") == _durations(clip, "AA")  # only closures shrink
        assert all(a[2] == b[1] for a, b in zip(out.spans, out.spans[1:], strict=False))
        for (_, s0, _), (_, s1, _) in zip(clip.spans, out.spans, strict=True):
            assert s1 <= s0
        # The vowels' audio is the same samples, wherever they moved to.
        for (v, s0, e0), (_, s1, e1) in zip(clip.spans, out.spans, strict=True):
            if v == "AA":
                inner = slice(60, e0 - s0 - 60)  # clear of the crossfades
                a, b = clip.audio[s0:e0][inner], out.audio[s1:e1][inner]
                assert np.allclose(a, b, atol=1e-6)
        assert all(0.55 * 1440 <= d <= 1440 for d in _durations(out, "PP"))
        shortened += removed > 0
    assert 10 < shortened < 40  # some closures keep their length


def test_voice_bar_is_low_and_quieter_than_the_vowel():
    clip = _clip()
    voiced = 0
    for seed in range(40):
        out = connected_stops(clip, random.Random(seed), 1.0)
        for (v, s, e), (_, s0, _) in zip(out.spans, clip.spans, strict=True):
            if v != "PP":
                continue
            hold = out.audio[s + 60 : e - 60].astype(np.float64)
            if not np.any(hold):
                continue  # not voiced this time
            voiced += 1
            vowel = clip.audio[s0 - 800 : s0].astype(np.float64)
            drop = 10 * np.log10(np.mean(vowel**2) / np.mean(hold**2))
            assert 6 < drop < 40
            spectrum = np.abs(np.fft.rfft(hold)) ** 2
            freqs = np.fft.rfftfreq(len(hold), 1 / RATE)
            assert spectrum[freqs > 700].sum() < 0.05 * spectrum.sum()  # a voice bar: low
    assert voiced > 20
