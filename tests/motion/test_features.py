"""Features, labels and the espeak alignment the model is trained and judged on."""

from __future__ import annotations

import ctypes.util

import numpy as np
import pytest

from avatarkit.motion.features import LevelNorm, log_mel_offline
from avatarkit.motion.visemes import VISEMES, segments, visemes_of

pytestmark = pytest.mark.timeout(60)


def test_bands_read_the_same_power_at_every_rate():
    """A 1 kHz tone plus a 3 kHz tone: the same mel energies at 16, 22.05 and 48 kHz."""
    got = []
    for rate in (16000, 22050, 48000):
        t = np.arange(rate) / rate
        x = (0.3 * np.sin(2 * np.pi * 1000 * t) + 0.1 * np.sin(2 * np.pi * 3000 * t)).astype(
            np.float32
        )
        got.append(log_mel_offline(x, rate)[20:80].mean(axis=0))
    loud = got[0] > got[0].max() - 4  # the bands holding the tones
    for other in got[1:]:
        np.testing.assert_allclose(other[loud], got[0][loud], atol=0.35)


def test_level_norm_is_gain_invariant_and_chunk_invariant():
    rng = np.random.default_rng(1)
    mels = rng.standard_normal((300, 40)).astype(np.float32) - 8
    whole = LevelNorm()(mels)
    np.testing.assert_allclose(LevelNorm()(mels + 3.0), whole, atol=1e-4)  # +13 dB
    norm = LevelNorm()
    parts = np.concatenate([norm(mels[:7]), norm(mels[7:8]), norm(mels[8:200]), norm(mels[200:])])
    np.testing.assert_allclose(parts, whole, atol=1e-5)


def test_every_english_phoneme_has_a_viseme():
    for name in (
        "p",
        "b",
        "m",
        "f",
        "v",
        "u:",
        "oU",
        "aI",
        "i:",
        "t#",
        "r-",
        "@2",
        "_:",
        "w#",
        "IR",
    ):
        assert visemes_of(name) is not None and set(visemes_of(name)) <= set(VISEMES)
    spans = segments([("_", 0), ("m", 100), ("aI", 300), ("_", 700)], 900)
    assert [s[0] for s in spans] == ["sil", "PP", "AA", "IH", "sil"]
    assert spans[-1][2] == 900


@pytest.mark.skipif(not ctypes.util.find_library("espeak-ng"), reason="libespeak-ng not installed")
def test_espeak_gives_aligned_phonemes_and_words():
    from avatarkit.motion.training.espeak import synthesize

    utt = synthesize("Bob made a map.", "en-us")
    names = [p.name for p in utt.phonemes]
    starts = [p.start for p in utt.phonemes]
    assert names.count("b") == 2 and "m" in names and "p" in names
    assert starts == sorted(starts) and starts[-1] < len(utt.audio)
    assert [w.text for w in utt.words] == ["Bob", "made", "a", "map"]
    vowel = starts[names.index("eI")]  # "made": the audio is loud where espeak says the vowel is
    assert np.abs(utt.audio[vowel : vowel + 400].astype(np.int32)).mean() > 300
