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
REST_WEIGHT, REST_HEAD, REST_GAZE = 0.001, 0.0005, 0.0005  # below these the face is at rest
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


def _rest_time(speech: list[tuple[float, float]], fps: int = FPS) -> float:
    """Seconds from the last loud speech frame to the last frame the head, gaze or brows
    move, for per-frame (speech probability, loudness) fed to a ``FaceAnimator``."""
    from avatarkit.arkit import ARKIT_INDEX
    from avatarkit.motion.face import FaceAnimator

    face = FaceAnimator(fps)
    p, loud = (np.array(column, np.float32) for column in zip(*speech, strict=True))
    art = np.zeros((len(p), 6), np.float32)
    art[:, 0] = 0.5 * (p > 0.5)  # the jaw opens with speech: nods need an opening
    weights, head, gaze = face.animate(art, p, loud)
    pose = np.concatenate([head, gaze, weights[:, [ARKIT_INDEX["browInnerUp"]]]], axis=1)
    moving = np.flatnonzero(np.abs(np.diff(pose, axis=0)).max(axis=1) > 1e-6) + 1
    last_loud = max(i for i, (q, level) in enumerate(speech) if q > 0.5 and level > -5)
    return (moving[-1] - last_loud) / fps


def _speech_then_silence(tail: list[tuple[float, float]] = ()) -> list[tuple[float, float]]:
    # 2 s of speech whose loudness swings (emphasis lifts the brows, nods the head), then
    # ``tail``, then a second of silence at the classifier's usual residual.
    speech = [(1.0, -3.0 + 2.5 * np.sin(i / 3.0)) for i in range(60)]
    return speech + list(tail) + [(0.05, -13.0)] * 30


def test_the_head_and_brows_arrive_at_rest_a_fixed_time_after_speech():
    # The gate closes along a ramp that ends at 0: the face arrives at rest, it does not
    # approach it forever (an exponential release was still moving 150 ms on).
    for fps in (30, 60):
        assert _rest_time(_speech_then_silence(), fps) <= 0.12


def test_a_faint_sound_after_speech_does_not_restart_the_hold():
    # A breath or a faint release 45 dB under the speech that the classifier calls speech
    # for a frame: the face still rests within 150 ms of the last loud frame.
    faint = [(0.05, -13.0), (0.6, -10.4), (0.05, -13.0)]
    assert _rest_time(_speech_then_silence(faint)) <= SETTLE_S


def test_the_mouth_rests_exactly_in_silence(mt, greeting):
    # The classifier never says 0 for speech; what it leaves in silence must not show.
    pcm, rate, _ = greeting
    pcm = np.concatenate([pcm, np.zeros(rate, "<i2")])
    weights, _, _ = mt.stacked(mt.run_stream(pcm, rate, FPS))
    assert np.abs(weights[-10:]).max() < 1e-4


def test_brows_and_gaze_keep_time_at_any_frame_rate():
    # The same second of emphasised speech at 30 and 60 fps: the brows rise and settle,
    # and the gaze moves, on the same clock (they were per-frame steps: twice as fast at 60).
    from avatarkit.arkit import ARKIT_INDEX
    from avatarkit.motion.face import FaceAnimator

    tracks = {}
    for fps in (30, 60):
        t = np.arange(2 * fps) / fps
        loud = np.where((t > 0.5) & (t < 0.7), 0.0, -4.0).astype(np.float32)  # one emphasis
        art = np.tile(np.float32([0.6, 0, 0, 0, 0, 0]), (len(t), 1))
        weights, _, gaze = FaceAnimator(fps).animate(art, np.ones(len(t), np.float32), loud)
        tracks[fps] = np.concatenate([weights[:, [ARKIT_INDEX["browInnerUp"]]], gaze], axis=1)
    assert tracks[30][:, 0].max() > 0.2  # the emphasis lifted the brows
    # Every 30 fps frame against the 60 fps frame at the same time (the brows were 0.19
    # apart, the gaze 0.009: its radians are small).
    np.testing.assert_allclose(tracks[30][:, 0], tracks[60][::2, 0], atol=0.02)
    np.testing.assert_allclose(tracks[30][:, 1:], tracks[60][::2, 1:], atol=0.002)
