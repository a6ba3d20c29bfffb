"""Phoneme-aligned, augmented training/evaluation data from espeak-ng.

Each utterance: a generated sentence spoken by a random voice of the split, padded
with silence, coloured (tilt/low-pass EQ), sometimes reverberated, resampled to a random
supported rate, mixed with noise at a random SNR, scaled and quantised to s16 - then turned
into the exact features the runtime stream computes, with a viseme label per feature frame.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from scipy import signal

from avatarkit.motion.features import HOP_S, LevelNorm, log_mel_offline
from avatarkit.motion.stream import SUPPORTED_SAMPLE_RATES
from avatarkit.motion.training.codecs import round_trip
from avatarkit.motion.training.espeak import synthesize
from avatarkit.motion.training.sentences import sentences, word_salad
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


WARP = (0.88, 1.14)  # vocal-tract scale factors ``augment`` draws from
PITCH = (0.6, 1.7)  # ``revoiced``: F0 scale factors (log-uniform)
PITCH_HZ = (70.0, 300.0)  # ... keeping the median F0 inside a person's range
FORMANTS = (0.85, 1.18)  # ``revoiced``: spectral-envelope scale factors, pitch apart
WORLD_PERIOD_MS = 5.0


def revoiced(x: np.ndarray, sr: int, rng: random.Random) -> np.ndarray:
    """The same words from another speaker: pitch, intonation range and vocal tract drawn
    independently (``augment``'s tract warp moves them together); see ``revoice``."""
    return revoice(
        x,
        sr,
        pitch=math.exp(rng.uniform(math.log(PITCH[0]), math.log(PITCH[1]))),
        spread=rng.uniform(0.5, 1.5),  # a flatter or livelier intonation
        formants=rng.uniform(*FORMANTS),
    )


def revoice(x: np.ndarray, sr: int, pitch: float, spread: float, formants: float) -> np.ndarray:
    """``x`` through the WORLD vocoder (PyPI ``pyworld``; training only) with its median F0
    times ``pitch`` (kept within ``PITCH_HZ``), its log-F0 excursions times ``spread`` and
    its spectral envelope's frequencies times ``formants``. Durations are kept, so the
    labels stay put."""
    import pyworld

    f0, times = pyworld.dio(x, sr, frame_period=WORLD_PERIOD_MS)
    f0 = pyworld.stonemask(x, f0, times, sr)
    envelope = pyworld.cheaptrick(x, f0, times, sr)
    aperiodicity = pyworld.d4c(x, f0, times, sr)
    voiced = f0 > 0
    if voiced.any():
        median = float(np.median(f0[voiced]))
        target = min(max(median * pitch, PITCH_HZ[0]), PITCH_HZ[1])
        f0[voiced] = target * np.exp(spread * np.log(f0[voiced] / median))
    # The envelope at f becomes the old one at f / formants (log-linear between bins).
    bins = np.arange(envelope.shape[1], dtype=np.float64)
    source = np.minimum(bins / formants, bins[-1])
    lo = np.floor(source).astype(np.int64)
    hi = np.minimum(lo + 1, len(bins) - 1)
    frac = source - lo
    warped = np.exp(np.log(envelope[:, lo]) * (1 - frac) + np.log(envelope[:, hi]) * frac)
    y = pyworld.synthesize(f0, np.ascontiguousarray(warped), aperiodicity, sr, WORLD_PERIOD_MS)
    y = np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)]
    return y / max(1e-9, np.abs(y).max()) * np.abs(x).max()


def augment(
    clip: Clip,
    rng: random.Random,
    rates=SUPPORTED_SAMPLE_RATES,
    warp: tuple = WARP,
    world: float = 0.0,
) -> Clip:
    """A random speaker, microphone, room, line and level for one utterance; ``world``: the
    share of utterances re-voiced (``revoiced``) instead of tract-warped."""
    x = clip.audio.astype(np.float64)
    sr = clip.sample_rate
    # Another vocal tract: play the audio at a rate ``warp`` times faster. Formants and
    # pitch scale by ``warp`` (a shorter or longer tract), durations by 1 / warp.
    if world and rng.random() < world:
        x = revoiced(x, sr, rng)
    elif rng.random() < 0.6:
        up = round(100 / rng.uniform(*warp))
        x = signal.resample_poly(x, up, 100)
    scale = len(x) / len(clip.audio)
    tilt = rng.uniform(-0.6, 0.6)  # first-order spectral tilt: brighter or duller microphones
    x = signal.lfilter([1.0, -tilt], [1.0], x)
    if rng.random() < 0.3:
        cutoff = rng.uniform(3000, 7000)
        x = signal.sosfilt(signal.butter(4, cutoff, fs=sr, output="sos"), x)
    if rng.random() < 0.3:  # a room: exponentially decaying noise as the impulse response
        rt60 = rng.uniform(0.1, 0.6)
        n = int(rt60 * sr)
        tail = np.random.default_rng(rng.randrange(1 << 30)).standard_normal(n)
        tail *= np.exp(-6.9 * np.arange(n) / n) * rng.uniform(0.05, 0.4)
        tail[0] = 1.0  # the direct sound
        x = signal.fftconvolve(x, tail)[: len(x)]
    if rng.random() < 0.12:  # a telephone line: 300-3400 Hz
        x = signal.sosfilt(signal.butter(4, (300, 3400), "bandpass", fs=sr, output="sos"), x)
    x /= max(1e-9, np.abs(x).max())
    if rng.random() < 0.2:  # a TTS service's or a call's codec at a low bitrate
        x = round_trip(x * 0.7, sr, rng).astype(np.float64)
    rate = rng.choice(rates)
    g = np.gcd(rate, sr)
    x = signal.resample_poly(x, rate // g, sr // g)
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
    ratio = scale * rate / sr
    spans = [(v, int(s * ratio), int(e * ratio)) for v, s, e in clip.spans]
    return Clip(x.astype(np.float32), rate, spans, clip.text, clip.voice)


def features_and_labels(clip: Clip) -> tuple[np.ndarray, np.ndarray]:
    """Level-normalised log-mels [n, mels] and viseme labels [n] at every 10 ms frame."""
    mels = LevelNorm()(log_mel_offline(clip.audio, clip.sample_rate))
    labels = frame_labels(clip.spans, np.arange(len(mels)) * HOP_S, clip.sample_rate)
    return mels, labels


def make_clips(count: int, split: str, seed: int, source: str = "espeak") -> list[Clip]:
    """``count`` utterances of the split's sentences (and, for the neural voices, half of
    them dictionary phrases) from one synthesizer."""
    if source == "piper":
        from avatarkit.motion.training.piper import piper_clips

        return piper_clips(count, split, seed)
    if source == "pico":
        from avatarkit.motion.training.pico import pico_clips

        return pico_clips(count, split, seed)
    if source == "vtl":
        from avatarkit.motion.training.vtl import vtl_clips

        return vtl_clips(count, split, seed)
    if source in ("kokoro", "kokoro-blend"):
        from avatarkit.motion.training.kokoro import kokoro_clips

        return kokoro_clips(count, split, seed, blend=source == "kokoro-blend")
    rng = random.Random(f"clips:{split}:{seed}")
    return [
        speak(text, random_voice(rng, split), rng.uniform(0.05, 0.6), rng.uniform(0.1, 0.6))
        for text in sentences(count, split, seed)
    ]


def mixed_texts(count: int, split: str, seed: int) -> list[str]:
    """Template sentences and dictionary phrases, alternating."""
    salad = word_salad(count // 2, split, seed)
    plain = sentences(count - len(salad), split, seed)
    mixed = [t for pair in zip(plain, salad, strict=False) for t in pair]
    return mixed + plain[len(salad) :]


def on_every_core(speak, jobs: list, chunksize: int) -> list[Clip]:
    """``speak(job)`` for every job in a process per core (each loads its own synthesizer
    and aligner), in order; the jobs it returned None for (failed alignments) dropped."""
    import os
    from multiprocessing import Pool

    workers = min(len(jobs), os.cpu_count() or 1)
    if workers <= 1:
        clips = [speak(job) for job in jobs]
    else:
        with Pool(workers) as pool:
            clips = pool.map(speak, jobs, chunksize=chunksize)
    return [c for c in clips if c is not None]


def cached_clips(count: int, split: str, seed: int, source: str) -> list[Clip]:
    """``make_clips``, kept in ``.cache/motion-corpus`` (neural voices take minutes)."""
    import pickle
    from pathlib import Path

    folder = Path(__file__).resolve().parents[3] / ".cache" / "motion-corpus"
    path = folder / f"{source}-{split}-{seed}-{count}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    clips = make_clips(count, split, seed, source)
    folder.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(clips))
    return clips
