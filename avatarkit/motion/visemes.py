"""Viseme classes, their articulatory targets, and espeak phoneme -> viseme labels.

The model predicts viseme posteriors; ``ARTICULATION`` turns them into six articulator
values (what the mouth does), which :mod:`avatarkit.motion.face` maps onto ARKit
channels. The same table defines the benchmark's ground-truth lip aperture.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

ARTICULATORS = ("open", "close", "round", "spread", "dental", "tongue")

# viseme: (open, close, round, spread, dental, tongue) - hand-set from phonetics:
# open = jaw + lip aperture, close = lips pressed (p/b/m), round = funnel/pucker,
# spread = lip corners back (i/e), dental = lower lip to upper teeth (f/v), tongue tip visible (th).
_TABLE = {
    "sil": (0.00, 0.00, 0.00, 0.00, 0.00, 0.00),
    "PP": (0.00, 1.00, 0.00, 0.00, 0.00, 0.00),
    "FF": (0.08, 0.00, 0.00, 0.10, 1.00, 0.00),
    "TH": (0.22, 0.00, 0.00, 0.10, 0.00, 1.00),
    "DD": (0.25, 0.00, 0.00, 0.15, 0.00, 0.20),
    "KK": (0.32, 0.00, 0.00, 0.10, 0.00, 0.00),
    "CH": (0.20, 0.00, 0.55, 0.00, 0.00, 0.00),
    "SS": (0.12, 0.00, 0.00, 0.45, 0.00, 0.00),
    "NN": (0.22, 0.00, 0.00, 0.10, 0.00, 0.30),
    "RR": (0.22, 0.00, 0.45, 0.00, 0.00, 0.00),
    "WW": (0.10, 0.00, 0.95, 0.00, 0.00, 0.00),
    "AA": (1.00, 0.00, 0.00, 0.10, 0.00, 0.00),
    "AH": (0.55, 0.00, 0.00, 0.05, 0.00, 0.00),
    "EE": (0.62, 0.00, 0.00, 0.60, 0.00, 0.00),
    "IH": (0.35, 0.00, 0.00, 0.95, 0.00, 0.00),
    "OH": (0.68, 0.00, 0.75, 0.00, 0.00, 0.00),
    "UU": (0.28, 0.00, 1.00, 0.00, 0.00, 0.00),
}
VISEMES: tuple[str, ...] = tuple(_TABLE)
VISEME_INDEX = {name: i for i, name in enumerate(VISEMES)}
ARTICULATION = np.array([_TABLE[v] for v in VISEMES], dtype=np.float32)  # [visemes, articulators]

ROUNDED_VOWELS = ("OH", "UU")
SPREAD_VOWELS = ("IH", "EE")

# espeak English mnemonics; diphthongs glide from their first to their second viseme.
_DIPHTHONGS = {
    "aI": ("AA", "IH"), "aI2": ("AA", "IH"), "aI@": ("AA", "IH"), "aU": ("AA", "UU"),
    "eI": ("EE", "IH"), "oU": ("OH", "UU"), "OI": ("OH", "IH"), "e@": ("EE", "AH"),
    "i@": ("IH", "AH"), "i@3": ("IH", "AH"), "I@": ("IH", "AH"), "U@": ("UU", "AH"),
    "o@": ("OH", "AH"), "O@": ("OH", "AH"), "A@": ("AA", "AH"), "aU@": ("AA", "UU"),
}  # fmt: skip
_CONSONANTS = {
    "p": "PP", "b": "PP", "m": "PP", "f": "FF", "v": "FF", "T": "TH", "D": "TH",
    "t": "DD", "d": "DD", "n": "NN", "l": "NN", "k": "KK", "g": "KK", "N": "KK", "h": "KK",
    "x": "KK", "?": "KK", "tS": "CH", "dZ": "CH", "S": "CH", "Z": "CH", "j": "IH",
    "s": "SS", "z": "SS", "r": "RR", "w": "WW", "@L": "NN",
}  # fmt: skip
_VOWELS = {
    "a": "AA", "aa": "AA", "A:": "AA", "A": "AA", "a#": "AH", "V": "AH", "@": "AH", "3": "AH",
    "3:": "AH", "E": "EE", "e": "EE", "I": "IH", "I2": "IH", "I#": "IH", "i": "IH", "i:": "IH",
    "0": "OH", "O": "OH", "O:": "OH", "O2": "OH", "o": "OH", "U": "UU", "u:": "UU", "u": "UU",
}  # fmt: skip


def visemes_of(phoneme: str) -> tuple[str, ...] | None:
    """The viseme(s) an espeak phoneme shows; ``None`` for markers that continue the previous
    one."""
    if phoneme.startswith("_"):
        return ("sil",)
    if phoneme in _DIPHTHONGS:
        return _DIPHTHONGS[phoneme]
    for table in (_CONSONANTS, _VOWELS):
        if phoneme in table:
            return (table[phoneme],)
    # Variants carry a suffix (t#, r-, @2, w#, IR ...): fall back to the longest known prefix.
    for cut in range(len(phoneme) - 1, 0, -1):
        head = phoneme[:cut]
        if head in _DIPHTHONGS:
            return _DIPHTHONGS[head]
        for table in (_CONSONANTS, _VOWELS):
            if head in table:
                return (table[head],)
    return None


def segments(
    phonemes: list[tuple[str, int]],
    total: int,
    shown_by: Callable[[str], tuple[str, ...] | None] = visemes_of,
) -> list[tuple[str, int, int]]:
    """(viseme, start, end) sample spans from (phoneme, start sample) events; ``shown_by``
    names a phone's viseme(s) (espeak mnemonics by default)."""
    spans: list[tuple[str, int, int]] = []
    events = [(name, start) for name, start in phonemes if start < total]
    if not events or events[0][1] > 0:
        spans.append(("sil", 0, events[0][1] if events else total))
    for i, (name, start) in enumerate(events):
        end = events[i + 1][1] if i + 1 < len(events) else total
        if end <= start:
            continue
        shown = shown_by(name)
        if shown is None:  # a marker: the previous sound goes on
            if spans:
                spans[-1] = (spans[-1][0], spans[-1][1], end)
            continue
        step = (end - start) / len(shown)
        for j, vis in enumerate(shown):
            spans.append((vis, start + int(j * step), start + int((j + 1) * step)))
    return spans


def frame_labels(
    spans: list[tuple[str, int, int]], times: np.ndarray, sample_rate: int
) -> np.ndarray:
    """Viseme index at each time (seconds)."""
    out = np.full(len(times), VISEME_INDEX["sil"], dtype=np.int64)
    pos = times * sample_rate
    for vis, start, end in spans:
        out[(pos >= start) & (pos < end)] = VISEME_INDEX[vis]
    return out
