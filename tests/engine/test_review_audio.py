"""Regression tests from the real-time client-path review (audio devices)."""

from __future__ import annotations

import time

import numpy as np

from engine.audio import Mixer
from engine.audio.devices import AudioDevice, NullDevice


def test_null_device_fallback_keeps_the_audio_clock_running():
    # The NullDevice marked its playing frame counted from its own start (0), while the
    # mixer's frame count goes on from the lost device's: after a fallback the audible
    # frame jumped back by everything played so far, so every source's position froze
    # (face still, conversation never finished) for as long as the old device had run.
    mixer = Mixer(16000)
    lost = AudioDevice(mixer).start()
    mixer.mix(16000 * 5)  # the sound card played 5 s before it went away
    source = mixer.add_source()
    source.write(np.full(16000, 0.1, np.float32))
    lost.report_lost(OSError("unplugged"))
    try:
        assert isinstance(mixer.device, NullDevice)
        time.sleep(0.4)
        assert source.consumed > 0
        assert source.position() > 0.15 * 16000  # the clock follows what the device plays
        assert mixer.audible_frame >= 16000 * 5
    finally:
        mixer.device.stop()


def test_transform_to_trs_reproduces_the_matrix():
    from engine.transform import Transform, compose, quat_from_euler

    rng = np.random.default_rng(1)
    for mirror in (1.0, -1.0):
        for _ in range(20):
            q = quat_from_euler(*rng.uniform(-3, 3, 3))
            m = compose(rng.uniform(-2, 2, 3), q, rng.uniform(0.2, 3, 3) * [mirror, 1, 1])
            t = Transform(matrix=m)
            t.to_trs()
            assert t.matrix is None
            assert np.allclose(t.local_matrix(), m, atol=1e-5)
