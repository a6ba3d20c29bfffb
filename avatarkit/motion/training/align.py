"""Phone-level forced alignment with PocketSphinx (PyPI ``pocketsphinx`` 5.x, which bundles
the en-us acoustic model and CMUdict): timing no single synthesizer dictates.

Align the text, decode, set the alignment, decode again, read the phone segments (10 ms
frames), with wide beams. About 10 ms median error on real speech.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
from scipy import signal

from avatarkit.motion.training.corpus import Clip
from avatarkit.motion.training.phones import arpabet_visemes

RATE = 16000  # the acoustic model's rate
FRAME_S = 0.01
# Words of the recordings CMUdict lacks (``real.py``'s training speech, the development
# set's Sonnet 1), in its phone set.
EXTRA_WORDS = {
    "aligner": "AH L AY N ER",
    "puddy": "P AH D IY",
    "pooty": "P UW T IY",
    "poofy": "P UW F IY",
    "beauty's": "B Y UW T IY Z",
    "riper": "R AY P ER",
    "feed'st": "F IY D S T",
    "buriest": "B EH R IY AH S T",
    "churl": "CH ER L",
    "mak'st": "M EY K S T",
    "niggarding": "N IH G ER D IH NG",
    "glutton": "G L AH T AH N",
}


@lru_cache(maxsize=1)
def _decoder():
    """One decoder per process: loading the acoustic model costs more than an alignment."""
    from pocketsphinx import Decoder

    decoder = Decoder(
        samprate=RATE, bestpath=False, beam=1e-100, wbeam=1e-80, pbeam=1e-100, loglevel="FATAL"
    )
    for word, phones in EXTRA_WORDS.items():
        decoder.add_word(word, phones, update=True)
    return decoder


def words_of(text: str) -> str:
    """Lower-case words as CMUdict spells them (punctuation dropped, apostrophes kept)."""
    return " ".join(re.findall(r"[a-z']+", text.lower().replace("-", " ")))


def align_phones(audio: np.ndarray, sample_rate: int, text: str) -> list[tuple[str, float, float]]:
    """[(ARPAbet phone, start s, end s)] of ``audio`` (float -1..1) saying ``text``; empty when
    the text cannot be aligned (a word missing from the dictionary, audio that does not fit)."""
    if sample_rate != RATE:
        g = np.gcd(RATE, sample_rate)
        audio = signal.resample_poly(audio, RATE // g, sample_rate // g)
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    decoder = _decoder()
    try:
        decoder.set_align_text(words_of(text))
        for _ in range(2):  # the first pass finds the words, the second their phones
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            if _ == 0:
                decoder.set_alignment()
        alignment = decoder.get_alignment()
    except (RuntimeError, ValueError, KeyError):
        return []
    if alignment is None:
        return []
    return [
        (phone.name, phone.start * FRAME_S, (phone.start + phone.duration) * FRAME_S)
        for word in alignment
        for phone in word
    ]


def viseme_spans(
    phones: list[tuple[str, float, float]], sample_rate: int, total: int
) -> list[tuple[str, int, int]]:
    """(viseme, start, end) sample spans from aligned phones (diphthongs glide in two)."""
    spans: list[tuple[str, int, int]] = []
    for name, start_s, end_s in phones:
        shown = arpabet_visemes(name)
        start, end = int(start_s * sample_rate), min(total, int(end_s * sample_rate))
        step = (end - start) / len(shown)
        for j, vis in enumerate(shown):
            spans.append((vis, start + int(j * step), start + int((j + 1) * step)))
    if spans and spans[-1][2] < total:
        spans.append(("sil", spans[-1][2], total))
    return spans


def agreement(
    spans: list[tuple[str, int, int]], other: list[tuple[str, int, int]], rate: int, total: int
) -> tuple[float, float]:
    """(r, lag ms) between the lip apertures two timings of one utterance imply, at 100 Hz;
    + lag = ``spans`` later than ``other``."""
    from avatarkit.motion.visemes import ARTICULATION, frame_labels

    times = np.arange(int(total / rate / FRAME_S)) * FRAME_S
    a = ARTICULATION[frame_labels(spans, times, rate), 0]
    b = ARTICULATION[frame_labels(other, times, rate), 0]
    if a.std() == 0 or b.std() == 0:
        return 0.0, 0.0
    lags = range(-6, 7)
    scores = [
        np.corrcoef(a[max(0, k) : len(a) + min(0, k)], b[max(0, -k) : len(b) + min(0, -k)])[0, 1]
        for k in lags
    ]
    best = int(np.argmax(scores))
    return float(np.corrcoef(a, b)[0, 1]), lags[best] * FRAME_S * 1000


def aligned_clip(
    audio: np.ndarray, rate: int, text: str, voice: str, lead_s: float = 0.0, tail_s: float = 0.0
) -> Clip | None:
    """A synthesizer's ``audio`` (float -1..1) saying ``text``, with ``lead_s`` / ``tail_s`` of
    silence around it and PocketSphinx-aligned viseme spans: a ``Clip`` of ``voice``, or
    None when the alignment fails (for the voices that give no timings of their own)."""
    audio = np.concatenate(
        [np.zeros(int(lead_s * rate)), audio, np.zeros(int(tail_s * rate))]
    ).astype(np.float32)
    phones = align_phones(audio, rate, text)
    if not phones:
        return None
    return Clip(audio, rate, viseme_spans(phones, rate, len(audio)), text, voice)
