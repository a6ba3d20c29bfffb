"""Phoneme-aligned, augmented training/evaluation data from espeak-ng.

Each utterance: a generated sentence spoken by a random voice of the split, padded
with silence, coloured (tilt/low-pass EQ), sometimes reverberated, resampled to a random
supported rate, mixed with noise at a random SNR, scaled and quantised to s16 - then turned
into the exact features the runtime stream computes, with a viseme label per feature frame.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from scipy import signal

from avatarkit.motion.features import HOP_S, LevelNorm, log_mel_offline
from avatarkit.motion.stream import SUPPORTED_SAMPLE_RATES
from avatarkit.motion.training.espeak import synthesize
from avatarkit.motion.training.sentences import sentences
from avatarkit.motion.training.voices import random_voice
from avatarkit.motion.visemes import frame_labels, segments


@dataclass(slots=True)
class Clip:
    audio: np.ndarray  # float32 -1..1 at ``sample_rate``
    sample_rate: int
    spans: list[tuple[str, int, int]]  # (viseme, start, end) in samples at ``sample_rate``
    text: str
    voice: str


def speak(text: str, voice: dict, lead_s: float = 0.0, tail_s: float = 0.0) -> Clip:
    utt = synthesize(text, **voice)
    sr = utt.sample_rate
    lead, tail = int(lead_s * sr), int(tail_s * sr)
    audio = np.concatenate([np.zeros(lead), utt.audio / 32768.0, np.zeros(tail)]).astype(np.float32)
    events = [(p.name, p.start + lead) for p in utt.phonemes]
    return Clip(audio, sr, segments([("_", 0)] + events, len(audio)), text, voice["voice"])


def augment(clip: Clip, rng: random.Random, rates=SUPPORTED_SAMPLE_RATES) -> Clip:
    x = clip.audio.astype(np.float64)
    tilt = rng.uniform(-0.6, 0.6)  # first-order spectral tilt: brighter or duller microphones
    x = signal.lfilter([1.0, -tilt], [1.0], x)
    if rng.random() < 0.3:
        cutoff = rng.uniform(3000, 7000)
        x = signal.sosfilt(signal.butter(4, cutoff, fs=clip.sample_rate, output="sos"), x)
    if rng.random() < 0.3:  # a room: exponentially decaying noise as the impulse response
        rt60 = rng.uniform(0.1, 0.6)
        n = int(rt60 * clip.sample_rate)
        tail = np.random.default_rng(rng.randrange(1 << 30)).standard_normal(n)
        tail *= np.exp(-6.9 * np.arange(n) / n) * rng.uniform(0.05, 0.4)
        tail[0] = 1.0  # the direct sound
        x = signal.fftconvolve(x, tail)[: len(x)]
    rate = rng.choice(rates)
    g = np.gcd(rate, clip.sample_rate)
    x = signal.resample_poly(x, rate // g, clip.sample_rate // g)
    x /= max(1e-9, np.abs(x).max())
    if rng.random() < 0.75:
        noise = np.random.default_rng(rng.randrange(1 << 30)).standard_normal(len(x))
        if rng.random() < 0.5:  # pink-ish: integrate white noise a little
            noise = signal.lfilter([1.0], [1.0, -0.95], noise)
        speech_power = np.mean(x[np.abs(x) > 0.02] ** 2) if np.any(np.abs(x) > 0.02) else 1e-4
        snr_db = rng.uniform(12, 50)
        noise *= np.sqrt(speech_power / 10 ** (snr_db / 10) / np.mean(noise**2))
        x = x + noise
    x *= 10 ** (rng.uniform(-32, -1) / 20) / max(1e-9, np.abs(x).max())
    x = np.round(x * 32767) / 32768.0
    ratio = rate / clip.sample_rate
    spans = [(v, int(s * ratio), int(e * ratio)) for v, s, e in clip.spans]
    return Clip(x.astype(np.float32), rate, spans, clip.text, clip.voice)


def features_and_labels(clip: Clip) -> tuple[np.ndarray, np.ndarray]:
    """Level-normalised log-mels [n, mels] and viseme labels [n] at every 10 ms frame."""
    mels = LevelNorm()(log_mel_offline(clip.audio, clip.sample_rate))
    labels = frame_labels(clip.spans, np.arange(len(mels)) * HOP_S, clip.sample_rate)
    return mels, labels


def make_clips(count: int, split: str, seed: int) -> list[Clip]:
    rng = random.Random(f"clips:{split}:{seed}")
    return [
        speak(text, random_voice(rng, split), rng.uniform(0.05, 0.6), rng.uniform(0.1, 0.6))
        for text in sentences(count, split, seed)
    ]
