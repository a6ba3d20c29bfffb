"""Phoneme-aligned speech from libespeak-ng through ctypes (offline, no downloads).

``synthesize(text, voice)`` returns 22.05 kHz mono int16 audio plus the phoneme and
word events espeak reports while speaking, each with its audio position in samples.
Used to build the training corpus, the benchmark corpus and the bundled speech lines.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from dataclasses import dataclass

import numpy as np

from avatarkit.errors import AvatarKitError, ErrorCode

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_WORD, _EVENT_END, _EVENT_PHONEME = 1, 5, 7
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(slots=True)
class Phoneme:
    name: str  # espeak mnemonic ("p", "aI", "_:" ...)
    start: int  # sample position


@dataclass(slots=True)
class Word:
    text: str
    start: int  # sample position
    end: int


@dataclass(slots=True)
class Utterance:
    audio: np.ndarray  # int16 mono
    sample_rate: int
    phonemes: list[Phoneme]
    words: list[Word]


class _Engine:
    """One process-wide espeak instance (the library keeps global state)."""

    def __init__(self) -> None:
        path = ctypes.util.find_library("espeak-ng")
        if not path:
            raise AvatarKitError(
                ErrorCode.UNKNOWN, "libespeak-ng is not installed (apt-get install libespeak-ng1)"
            )
        self.lib = ctypes.CDLL(path)
        self.lib.espeak_Initialize.restype = ctypes.c_int
        rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 200, None, _INITIALIZE_PHONEME_EVENTS
        )
        if rate <= 0:
            raise AvatarKitError(ErrorCode.UNKNOWN, "espeak-ng failed to initialise")
        self.sample_rate = rate
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, int, str]] = []
        self._callback = _CALLBACK(self._on_audio)  # keep a reference: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lock = threading.Lock()

    def _on_audio(self, wav, count, events) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        i = 0
        while events[i].type != 0:  # LIST_TERMINATED
            ev = events[i]
            if ev.type in (_EVENT_WORD, _EVENT_PHONEME):
                name = ev.id.string.decode("utf-8", "replace") if ev.type == _EVENT_PHONEME else ""
                self._events.append((ev.type, ev.audio_position, ev.text_position, ev.length, name))
            i += 1
        return 0

    def speak(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int) -> Utterance:
        with self.lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise AvatarKitError(ErrorCode.INVALID_REQUEST, f"unknown espeak voice {voice!r}")
            for param, value in (
                (_RATE, rate),
                (_PITCH, pitch),
                (_RANGE, pitch_range),
                (_VOLUME, 100),
            ):
                self.lib.espeak_SetParameter(param, value, 0)
            self._chunks, self._events = [], []
            data = text.encode("utf-8") + b"\0"
            self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            self.lib.espeak_Synchronize()
            audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            events = self._events
        sr = self.sample_rate
        phonemes = [
            Phoneme(name, pos * sr // 1000)
            for kind, pos, _, _, name in events
            if kind == _EVENT_PHONEME
        ]
        raw = text.encode("utf-8")
        # Zero-length word events mark clause ends, not words.
        marks = [
            (pos, tp - 1)
            for kind, pos, tp, length, _ in events
            if kind == _EVENT_WORD and length > 0
        ]
        starts = sorted({at for _, at in marks})
        words = []
        for pos, at in marks:
            # A word's text runs to the next word (espeak's own length cuts "I'm" to "I";
            # an unannounced "the" joins the word before it).
            upto = next((s for s in starts if s > at), len(raw))
            word = raw[at:upto].decode("utf-8", "replace").strip().strip(',.!?;:"')
            if word:
                words.append(Word(word, pos * sr // 1000, pos * sr // 1000))
        _close_words(words, phonemes, len(audio))
        return Utterance(audio.astype(np.int16), sr, phonemes, words)


def _close_words(words: list[Word], phonemes: list[Phoneme], total: int) -> None:
    """A word ends where the next word starts or at the first pause phoneme after it."""
    for i, word in enumerate(words):
        nxt = words[i + 1].start if i + 1 < len(words) else total
        pauses = [
            p.start for p in phonemes if p.name.startswith("_") and word.start < p.start < nxt
        ]
        word.end = min(pauses) if pauses else nxt


_engine: _Engine | None = None


def synthesize(
    text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50, pitch_range: int = 50
) -> Utterance:
    """Speak ``text`` with an espeak voice name (``"en-us"``, ``"en-gb+f3"`` ...)."""
    global _engine
    if _engine is None:
        _engine = _Engine()
    return _engine.speak(text, voice, rate, pitch, pitch_range)
