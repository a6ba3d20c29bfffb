"""Viseme classes of the phone sets the other corpora use: IPA (Piper, Kokoro) and the
CMU/ARPAbet phones PocketSphinx aligns with. espeak's own mnemonics live in
:mod:`avatarkit.motion.visemes`.
"""

from __future__ import annotations

# IPA as espeak-ng writes it for Piper (one symbol per token); affricates and diphthongs
# arrive as two tokens, which glide naturally from one viseme to the next.
_IPA = {
    "p": "PP", "b": "PP", "m": "PP", "f": "FF", "v": "FF", "θ": "TH", "ð": "TH",
    "t": "DD", "d": "DD", "ɾ": "DD", "n": "NN", "l": "NN", "ɫ": "NN", "ɬ": "NN",
    "k": "KK", "ɡ": "KK", "g": "KK", "ŋ": "KK", "h": "KK", "x": "KK", "ç": "KK", "ʔ": "KK",
    "ʃ": "CH", "ʒ": "CH", "ʧ": "CH", "ʤ": "CH", "s": "SS", "z": "SS", "ɹ": "RR", "r": "RR",
    "w": "WW", "j": "IH",
    "a": "AA", "ɑ": "AA", "æ": "AA", "ɐ": "AH", "ʌ": "AH", "ə": "AH", "ɜ": "AH", "ɚ": "AH",
    "ᵊ": "AH", "e": "EE", "ɛ": "EE", "ɪ": "IH", "i": "IH", "ᵻ": "IH", "ɨ": "IH",
    "o": "OH", "ɔ": "OH", "ɒ": "OH", "ʊ": "UU", "u": "UU",
}  # fmt: skip
# Marks that lengthen or stress the sound next to them rather than being one.
IPA_CONTINUES = frozenset("ːˑ ")  # the previous sound goes on
IPA_STRESS = frozenset("ˈˌ")  # belongs to the vowel that follows
IPA_PAUSES = frozenset("^$_.,;:!?—…")

_ARPABET = {
    "P": "PP", "B": "PP", "M": "PP", "F": "FF", "V": "FF", "TH": "TH", "DH": "TH",
    "T": "DD", "D": "DD", "N": "NN", "L": "NN", "K": "KK", "G": "KK", "NG": "KK", "HH": "KK",
    "CH": "CH", "JH": "CH", "SH": "CH", "ZH": "CH", "S": "SS", "Z": "SS", "R": "RR",
    "W": "WW", "Y": "IH", "AA": "AA", "AE": "AA", "AH": "AH", "ER": "AH", "AO": "OH",
    "EH": "EE", "IH": "IH", "IY": "IH", "UH": "UU", "UW": "UU",
}  # fmt: skip
_ARPABET_DIPHTHONGS = {
    "AW": ("AA", "UU"), "AY": ("AA", "IH"), "EY": ("EE", "IH"), "OW": ("OH", "UU"),
    "OY": ("OH", "IH"),
}  # fmt: skip


def ipa_visemes(symbol: str) -> tuple[str, ...] | None:
    """The viseme an IPA token shows; ``None`` for marks that are not a sound."""
    if symbol in IPA_PAUSES:
        return ("sil",)
    shown = _IPA.get(symbol)
    return (shown,) if shown else None


def arpabet_visemes(phone: str) -> tuple[str, ...]:
    """The viseme(s) of a PocketSphinx phone (``SIL`` and fillers: silence)."""
    phone = phone.rstrip("012")
    if phone in _ARPABET_DIPHTHONGS:
        return _ARPABET_DIPHTHONGS[phone]
    return (_ARPABET.get(phone, "sil"),)
