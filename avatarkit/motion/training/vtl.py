"""Articulatory speech from VocalTractLab (PyPI ``vocaltractlab-cython``, GPL-3.0; training
data and the benchmark's ``vtl`` row only): a physical vocal tract whose lips, tongue tip
and tongue body really close, so the acoustic cues of *where* a consonant is made (the
formant transitions into and out of it) come from a tube model rather than from any
synthesizer's learned or hand-written rules.

Each utterance: the text's CMUdict phones (PocketSphinx's copy) with durations from a small
rule model (phone class, phrase-final lengthening, a random speaking rate and jitter),
written as VocalTractLab's German SAMPA segments, one gestural score per phrase, and
synthesized at 44.1 kHz by its one speaker (``JD3``) at a random pitch. Its anatomy model
would make other speakers, but their consonant shapes stop closing: not used. The labels
are the segments' own times: the tract model moves on them.
"""

from __future__ import annotations

import random
import re
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import signal

from avatarkit.motion.training.align import EXTRA_WORDS, words_of
from avatarkit.motion.training.corpus import Clip, on_every_core
from avatarkit.motion.training.phones import arpabet_visemes
from avatarkit.motion.training.sentences import cmudict

RATE = 44100  # VocalTractLab's audio rate
OUT_RATE = 22050  # what the clips keep (the features stop at 7.6 kHz)

# CMUdict phone -> VocalTractLab segment (German SAMPA). English r and w have no gesture of
# their own there: r is the uvular approximant, w a short /u/.
_SAMPA = {
    "AA": "a:", "AE": "E", "AH": "a", "AO": "O", "AW": "aU", "AY": "aI", "EH": "E",
    "ER": "6", "EY": "e:", "IH": "I", "IY": "i:", "OW": "o:", "OY": "OY", "UH": "U",
    "UW": "u:", "P": "p", "B": "b", "T": "t", "D": "d", "K": "k", "G": "g", "M": "m",
    "N": "n", "NG": "N", "F": "f", "V": "v", "TH": "T", "DH": "D", "S": "s", "Z": "z",
    "SH": "S", "ZH": "Z", "CH": "tS", "JH": "dZ", "HH": "h", "L": "l", "R": "R", "W": "u",
    "Y": "j",
}  # fmt: skip
# Base durations (ms) at an ordinary rate.
_VOWEL_MS = {"short": 75, "long": 115, "diphthong": 150, "reduced": 50}
_LONG = {"AA", "AO", "ER", "IY", "UW"}
_DIPHTHONG = {"AW", "AY", "EY", "OW", "OY"}
_VOWELS = _LONG | _DIPHTHONG | {"AE", "AH", "EH", "IH", "UH"}
_CONSONANT_MS = {
    "P": 75, "B": 65, "T": 70, "D": 55, "K": 75, "G": 65, "CH": 100, "JH": 90,
    "F": 90, "V": 65, "TH": 85, "DH": 45, "S": 95, "Z": 80, "SH": 100, "ZH": 80,
    "HH": 60, "M": 70, "N": 60, "NG": 70, "L": 60, "R": 55, "W": 55, "Y": 50,
}  # fmt: skip


def available() -> bool:
    try:
        import vocaltractlab_cython  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=1)
def _dictionary() -> dict[str, list[str]]:
    """CMUdict and the aligner's extra words."""
    return {**cmudict(), **{word: spelled.split() for word, spelled in EXTRA_WORDS.items()}}


def phone_plan(text: str, rng: random.Random, rate: float) -> list[list[tuple[str, float]]] | None:
    """Per phrase (between punctuation): [(CMUdict phone, or "@" for a schwa, seconds)] for
    ``text`` at ``rate`` (1 = ordinary); None when a word is not in the dictionary."""
    pron = _dictionary()
    phrases: list[list[tuple[str, float]]] = []
    for chunk in re.split(r"[,.;:!?]+", text):
        words = words_of(chunk).split()
        if not words:
            continue
        plan: list[tuple[str, float]] = []
        phrases.append(plan)
        for w, word in enumerate(words):
            phones = pron.get(word)
            if phones is None:
                return None
            vowels = [i for i, p in enumerate(phones) if p in _VOWELS]
            last_vowel = vowels[-1] if vowels else -1
            for i, phone in enumerate(phones):
                if phone in _VOWELS:
                    # CMUdict here has no stress marks: AH in a longer word is a schwa
                    reduced = phone == "AH" and len(vowels) > 1
                    kind = (
                        "reduced" if reduced
                        else "diphthong" if phone in _DIPHTHONG
                        else "long" if phone in _LONG
                        else "short"
                    )  # fmt: skip
                    ms = float(_VOWEL_MS[kind])
                    phone = "@" if reduced else phone
                else:
                    ms = float(_CONSONANT_MS[phone])
                if w == len(words) - 1 and i >= last_vowel:
                    ms *= 1.35  # phrase-final lengthening
                ms *= rng.lognormvariate(0.0, 0.18) / rate
                plan.append((phone, max(0.03, ms / 1000.0)))
    return phrases


def _segment_name(phone: str) -> str:
    if not phone:
        return ""
    return "@" if phone == "@" else _SAMPA[phone]


def speak_vtl(
    text: str,
    pitch_st: float,
    rate: float,
    seed: int,
    lead_s: float = 0.0,
    tail_s: float = 0.0,
) -> Clip | None:
    """``text`` by VocalTractLab's speaker, its voice ``pitch_st`` semitones off the model's
    own, at speaking ``rate``, each phrase (between punctuation) synthesized alone; viseme
    spans from the segments (None when a word is missing from the dictionary)."""
    rng = random.Random(seed)
    phrases = phone_plan(text, rng, rate)
    if not phrases:
        return None
    pieces: list[np.ndarray] = [np.zeros(int(lead_s * RATE))]
    spans: list[tuple[str, int, int]] = []
    t = len(pieces[0])  # samples at RATE
    for phrase in phrases:  # one score each: a pause inside a score keeps the voice going
        audio = _synthesize([("", _EDGE_S[0]), *phrase, ("", _EDGE_S[1])], pitch_st, rng)
        if audio is None:
            return None
        start = t + int(_EDGE_S[0] * RATE)
        for phone, dur in phrase:
            n = int(round(dur * RATE))
            shown = arpabet_visemes("AH" if phone == "@" else phone)
            step = n / len(shown)
            for j, vis in enumerate(shown):
                spans.append((vis, start + int(j * step), start + int((j + 1) * step)))
            start += n
        pieces.append(audio)
        t += len(audio)
    pieces.append(np.zeros(int(tail_s * RATE)))
    whole = np.concatenate(pieces)
    peak = np.abs(whole).max()
    if not np.isfinite(peak) or peak == 0:
        return None
    down = RATE // OUT_RATE
    audio = signal.resample_poly(whole / peak * 0.5, 1, down).astype(np.float32)
    # Silence between the spoken spans (before, between phrases, after), at OUT_RATE.
    out: list[tuple[str, int, int]] = []
    edge = 0
    for vis, start, end in spans:
        if start // down > edge:
            out.append(("sil", edge, start // down))
        out.append((vis, start // down, end // down))
        edge = end // down
    out.append(("sil", edge, len(audio)))
    return Clip(audio, OUT_RATE, out, text, "vtl:JD3")


_EDGE_S = (0.12, 0.15)  # the silence VocalTractLab's score starts and ends each phrase with


def _synthesize(
    segments: list[tuple[str, float]], pitch_st: float, rng: random.Random
) -> np.ndarray | None:
    """One phrase's segments as audio at RATE (starting at the first segment's start)."""
    import vocaltractlab_cython as vtl

    with tempfile.TemporaryDirectory() as tmp:
        seg_path, ges_path = Path(tmp) / "seg.txt", Path(tmp) / "score.ges"
        seg_path.write_text(
            "".join(f"name = {_segment_name(p)}; duration_s = {d:.6f};\n" for p, d in segments)
        )
        vtl.phoneme_file_to_gesture_file(str(seg_path), str(ges_path))
        # Each phrase's pitch a little off the utterance's: intonation between phrases.
        score = _shift_f0(ges_path.read_text(), pitch_st + rng.uniform(-1.0, 1.0))
        ges_path.write_text(score)
        audio = np.asarray(vtl.gesture_file_to_audio(str(ges_path)), dtype=np.float64)
    return audio if len(audio) and np.isfinite(audio).all() else None


def _shift_f0(score: str, semitones: float) -> str:
    """The gestural score with every f0 target moved by ``semitones``."""
    head, sep, rest = score.partition('type="f0-gestures"')
    if not sep:
        return score
    body, end, tail = rest.partition("</gesture_sequence>")
    body = re.sub(
        r'value="([0-9.]+)"', lambda m: f'value="{float(m.group(1)) + semitones:.6f}"', body
    )
    return head + sep + body + end + tail


def _speak_job(job: tuple) -> Clip | None:
    return speak_vtl(*job)


def plan(count: int, split: str, seed: int) -> list[tuple]:
    """Per utterance: (text, pitch offset, rate, seed, lead s, tail s)."""
    from avatarkit.motion.training.corpus import mixed_texts

    rng = random.Random(f"vtl:{split}:{seed}")
    jobs = []
    for k, text in enumerate(mixed_texts(count, split, seed)):
        jobs.append(
            (
                text,
                rng.uniform(-4.0, 10.0),
                rng.uniform(0.8, 1.3),
                seed * 100003 + k,
                rng.uniform(0.05, 0.5),
                rng.uniform(0.1, 0.5),
            )
        )
    return jobs


def vtl_clips(count: int, split: str, seed: int) -> list[Clip]:
    """``count`` utterances of ``plan`` on every core."""
    if not available():
        raise ImportError("pip install vocaltractlab-cython", name="vocaltractlab_cython")
    return on_every_core(_speak_job, plan(count, split, seed), chunksize=4)
