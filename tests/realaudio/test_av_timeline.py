"""The A/V offset measurement itself (``tools/av_timeline.py``), on a synthetic recording
and frame report with a known offset: no sound server needed."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import av_timeline  # noqa: E402

SECONDS = 3.5  # the speech ends mid-tooth of the sawtooth, where frames are measured


class _Recording:
    """Sample ``n`` of the player's audio passed the sink at ``origin + n / 16000``."""

    def __init__(self, origin: float) -> None:
        self.origin = origin
        self.samples = np.frombuffer(av_timeline.make_audio(SECONDS), "<i2")

    def sample_time(self, n: float) -> float:
        return self.origin + n / av_timeline.RATE


def _report(origin: float, lead: float, tail: float = 0.4) -> dict:
    """Frames at 30 fps showing the motion time ``lead`` ahead of the heard time, held at
    the motion's last frame once the speech is over (as the face does), ``tail`` seconds on."""
    last = SECONDS - 1 / av_timeline.FPS
    rows = []
    for present in np.arange(0.0, SECONDS + tail, 1 / av_timeline.FPS):
        motion = min(present + lead, last)
        shown = motion % av_timeline.SAW_PERIOD
        usable = 0.05 * av_timeline.SAW_PERIOD <= shown <= 0.95 * av_timeline.SAW_PERIOD
        rows.append([origin + present, shown if usable else None, origin + present])
    return {"frames": [rows]}


@pytest.mark.parametrize("lead", [0.0, 0.015, -0.02])
def test_offsets_measure_the_lead_and_ignore_the_held_last_pose(lead):
    origin = 1000.0
    offsets = av_timeline.offsets(_report(origin, lead), _Recording(origin), SECONDS)
    assert len(offsets) > 60
    np.testing.assert_allclose(offsets, lead, atol=0.002)


def test_sink_clock_follows_a_sink_off_its_nominal_rate():
    """Ten minutes from a sink 60 ppm fast (PulseAudio's null sink is), read in 10 ms chunks
    that reach us late by a jittered delay with occasional stalls: every sample's time at
    the sink within half a millisecond (the nominal rate would be 36 ms off at the start)."""
    import pulse_sink

    rng = np.random.default_rng(1)
    rate = av_timeline.RATE * (1 + 60e-6)
    counts = np.arange(1, 60_001) * 160.0
    delays = 0.0002 + rng.exponential(0.002, len(counts))
    delays[rng.random(len(counts)) < 0.002] += 0.05  # the reader thread starved
    times = np.maximum.accumulate(50.0 + counts / rate + delays)  # chunks arrive in order
    origin, measured = pulse_sink.sink_clock(times, counts)
    assert abs(measured / rate - 1) < 2e-6
    n = np.linspace(0, counts[-1], 50)
    np.testing.assert_allclose(origin + n / measured, 50.0 + n / rate, atol=0.0005)
