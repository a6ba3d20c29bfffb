"""The real sound server the tests here play through (skipped only when a piece of it, or
PyAudio, or an EGL context is absent)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import pulse_sink  # noqa: E402


@pytest.fixture(scope="module")
def pulse(make_headless_app):
    reason = pulse_sink.missing()
    if reason:
        pytest.skip(reason)
    pytest.importorskip("pyaudio", reason="PyAudio is not installed (the 'audio' extra)")
    make_headless_app(size=(8, 8), samples=0).close()
    with pulse_sink.PulseNullSink() as server:
        yield server
