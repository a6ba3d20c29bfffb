"""Helpers for testing and benchmarking apps built on AvatarKit (no test framework needed)."""

from __future__ import annotations

import numpy as np


def speech_like_pcm(seconds: float, sample_rate: int = 16000, seed: int = 0) -> bytes:
    """Mono PCM s16le that loads a lip-sync model like speech does: a voiced tone with
    harmonics, gated into ~4 Hz syllables, plus a little noise. Deterministic per seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    voice = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 6))
    gate = np.clip(np.sin(2 * np.pi * 4 * t) * 2, 0, 1)
    signal = (voice * gate * 0.3 + rng.normal(0, 0.01, t.size)) * 32767
    return np.clip(signal, -32768, 32767).astype("<i2").tobytes()


# -- an independent timeline: audio and motion that each say what time they are ---------
#
# Sync tests that compare ``face_time`` with ``audio_time`` check the controller against
# itself. These signals carry their own time instead: every audio sample's value says
# which sample it is, and one motion channel draws a sawtooth of the frame's time, so what
# was heard and what was drawn can be compared at the output.

TIMELINE_CHANNEL = "tongueOut"  # untouched by idle motion and expressions
TIMELINE_PERIOD = 16384  # samples; both signals wrap after this many (1.024 s at 16 kHz)
_LEVEL = 8192  # int16 offset: a timeline sample is never 0, so silence tells itself apart


def timeline_pcm(seconds: float, sample_rate: int = 16000) -> bytes:
    """Mono PCM s16le whose sample ``n`` has the value ``n % TIMELINE_PERIOD + 8192``."""
    n = np.arange(int(seconds * sample_rate))
    return (n % TIMELINE_PERIOD + _LEVEL).astype("<i2").tobytes()


def heard_sample(value: float) -> int | None:
    """Which timeline sample (mod ``TIMELINE_PERIOD``) a mixed float sample is; None for
    silence. Exact while volume is 1 and the pan centred (the mixer is then bit-exact)."""
    level = round(value * 32768)
    return None if level < _LEVEL else level - _LEVEL


def timeline_frames(seconds: float, fps: int = 30, sample_rate: int = 16000) -> list:
    """Motion frames whose ``TIMELINE_CHANNEL`` is 0.1 + 0.8 * (phase of the frame's time
    in the ``TIMELINE_PERIOD``), so a drawn, interpolated value reads back as a time."""
    from avatarkit.arkit import ARKIT_NAMES
    from avatarkit.motion.frame import MotionFrame

    channel, period = ARKIT_NAMES.index(TIMELINE_CHANNEL), TIMELINE_PERIOD / sample_rate
    frames = []
    for i in range(int(np.ceil(seconds * fps))):
        frame = MotionFrame(i, fps)
        frame.weights[channel] = 0.1 + 0.8 * ((i / fps) % period) / period
        frames.append(frame)
    return frames


def timeline_offset(
    weights: np.ndarray, heard: int, fps: int = 30, sample_rate: int = 16000
) -> float | None:
    """Drawn motion time minus heard audio time (s) for a pose's ``weights`` and the
    timeline sample heard at that moment; None within two frames of the sawtooth's wrap,
    where interpolation blends its last tooth into the first."""
    period = TIMELINE_PERIOD / sample_rate
    audio = heard / sample_rate
    if not 2 / fps < audio < period - 2 / fps:
        return None
    shown = timeline_time(weights, sample_rate)
    return (shown - audio + period / 2) % period - period / 2


def timeline_time(weights: np.ndarray, sample_rate: int = 16000) -> float:
    """The motion time (s, modulo ``TIMELINE_PERIOD``) a pose drawn from
    ``timeline_frames`` shows."""
    from avatarkit.arkit import ARKIT_NAMES

    value = float(weights[ARKIT_NAMES.index(TIMELINE_CHANNEL)])
    return (value - 0.1) / 0.8 * TIMELINE_PERIOD / sample_rate
