"""The face comes to rest within 150 ms of the last sound and starts moving within 40 ms of
the first (a person's mouth closes in about 150 ms), on held-out sentences in held-out
voices (exact phoneme timing from espeak-ng)."""

from __future__ import annotations

import ctypes.util
import random
from functools import lru_cache

import numpy as np
import pytest

FPS = 30
REST_WEIGHT, REST_HEAD, REST_GAZE = 0.02, 0.003, 0.005  # below these the face is at rest
SETTLE_S, ONSET_S = 0.15, 0.04


def _padded(clip):
    """1 s of silence, the utterance, 1 s of silence; speech start/end from its alignment."""
    rate = clip.sample_rate
    pcm = (np.clip(clip.audio, -1, 1) * 32767).astype("<i2")
    pcm = np.concatenate([np.zeros(rate, "<i2"), pcm, np.zeros(rate, "<i2")])
    spoken = [(s, e) for vis, s, e in clip.spans if vis != "sil"]
    return pcm, rate, 1.0 + spoken[0][0] / rate, 1.0 + spoken[-1][1] / rate


def _moving(mt, pcm, rate) -> np.ndarray:
    weights, head, gaze = mt.stacked(mt.run_stream(pcm, rate, FPS))
    return (
        (weights.max(axis=1) > REST_WEIGHT)
        | (np.abs(head).max(axis=1) > REST_HEAD)
        | (np.abs(gaze).max(axis=1) > REST_GAZE)
    )


@lru_cache(maxsize=1)
def _heldout_espeak(count: int):
    """Held-out sentences in held-out espeak-ng voices (exact phoneme timing)."""
    from avatarkit.motion.training.corpus import speak
    from avatarkit.motion.training.sentences import sentences
    from avatarkit.motion.training.voices import random_voice

    rng = random.Random(11)
    return [speak(text, random_voice(rng, "heldout")) for text in sentences(count, "heldout", 11)]


@pytest.mark.skipif(not ctypes.util.find_library("espeak-ng"), reason="libespeak-ng not installed")
@pytest.mark.parametrize("index", range(6))
def test_face_rests_after_speech_and_starts_with_it(mt, index):
    pcm, rate, onset, end = _padded(_heldout_espeak(6)[index])
    moving = np.flatnonzero(_moving(mt, pcm, rate))
    times = moving / FPS
    assert times[0] >= onset - ONSET_S, f"moves {onset - times[0]:.3f} s before the speech"
    assert times[0] <= onset + ONSET_S, f"starts {times[0] - onset:.3f} s after the speech"
    assert times[-1] <= end + SETTLE_S, f"still moving {times[-1] - end:.3f} s after it"
