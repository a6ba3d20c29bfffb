"""Fixtures for the motion tests: bundled speech lines with their espeak alignment."""

from __future__ import annotations

import json
import wave

import numpy as np
import pytest

from avatarkit.motion.stream import create_stream
from avatarkit.paths import SPEECH_DIR


def load_line(line_id: str) -> tuple[np.ndarray, int, dict]:
    meta = json.loads((SPEECH_DIR / "lines.json").read_text())
    line = next(entry for entry in meta["lines"] if entry["id"] == line_id)
    with wave.open(str(SPEECH_DIR / line["file"]), "rb") as wav:
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
        rate = wav.getframerate()
    return pcm, rate, line


def resample(pcm: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """Linear-interpolation resampling: good enough to exercise other input rates."""
    n = int(len(pcm) * new_rate / rate)
    return np.interp(np.arange(n) * rate / new_rate, np.arange(len(pcm)), pcm).astype("<i2")


def run_stream(
    pcm: np.ndarray, rate: int, fps: int = 30, chunk_bytes: int = 640, make=create_stream
):
    stream = make(rate, fps)
    data = pcm.astype("<i2").tobytes()
    frames = []
    for start in range(0, len(data), chunk_bytes):
        frames += stream.push(data[start : start + chunk_bytes])
    frames += stream.finish()
    return frames


def stacked(frames) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.stack([f.weights for f in frames]),
        np.stack([f.head for f in frames]),
        np.stack([f.gaze for f in frames]),
    )


@pytest.fixture(scope="session")
def greeting():
    return load_line("greeting")


@pytest.fixture(scope="session")
def mt():
    """The helpers above, as a fixture (pytest's importlib mode cannot import conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        load_line=load_line, resample=resample, run_stream=run_stream, stacked=stacked
    )
