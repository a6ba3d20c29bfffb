from __future__ import annotations

import time

import pytest

from engine import App, HeadlessClock, ManualClock, RealtimeClock
from engine.clock import MAX_REALTIME_DT


def test_manual_clock_steps_exactly_one_frame():
    clock = ManualClock(fps=30)
    dts = [clock.tick() for _ in range(30)]
    assert clock.frame == 30
    assert clock.time == 1.0
    assert all(abs(dt - 1 / 30) < 1e-12 for dt in dts)


def test_manual_clock_does_not_drift_over_an_hour():
    clock = ManualClock(fps=30)
    total = 0.0
    for _ in range(30 * 3600):
        total += clock.tick()
    assert clock.time == 3600.0  # computed from the frame count, exact
    assert abs(total - 3600.0) < 1e-6


def test_manual_clock_rejects_bad_fps():
    with pytest.raises(ValueError):
        ManualClock(0)


def test_realtime_clock_follows_the_timer_and_clamps_stalls():
    now = [100.0]
    clock = RealtimeClock(fps=60, timer=lambda: now[0])
    now[0] += 0.016
    assert clock.tick() == pytest.approx(0.016)
    now[0] += 5.0  # a stall (debugger, suspended laptop)
    assert clock.tick() == MAX_REALTIME_DT
    assert clock.frame == 2
    assert clock.time == pytest.approx(0.016 + MAX_REALTIME_DT)


def test_realtime_clock_wait_paces_frames():
    import time

    clock = RealtimeClock(fps=50)
    start = time.perf_counter()
    for _ in range(5):
        clock.tick()
        clock.wait()
    assert time.perf_counter() - start >= 4 * 0.02 * 0.9


def test_frame_stats_rolling_fps():
    from engine import FrameStats

    now = [0.0]
    stats = FrameStats(window_s=2.0, timer=lambda: now[0])
    assert stats.fps == 0.0
    for _ in range(61):  # 60 frames at 30 fps
        stats.tick()
        now[0] += 1 / 30
    assert stats.fps == pytest.approx(30.0)
    for _ in range(200):  # then 100 fps: the old frames leave the 2 s window
        stats.tick()
        now[0] += 0.01
    assert stats.fps == pytest.approx(100.0)
    assert stats.frame_ms == pytest.approx(10.0)
    assert stats.frames == 261


# -- App.headless's clock follows the audio device (a new user's default set-up) -------


def test_headless_clock_is_virtual_without_a_realtime_device():
    walls = iter([0.0, 9.0, 20.0])
    clock = HeadlessClock(30, realtime=lambda: False, timer=lambda: next(walls))
    assert [clock.tick() for _ in range(3)] == [pytest.approx(1 / 30)] * 3
    assert clock.time == pytest.approx(0.1)


def test_headless_clock_follows_the_wall_while_a_realtime_device_plays():
    playing = [True]
    walls = iter([10.0, 10.05, 10.15, 99.0])
    clock = HeadlessClock(20, realtime=lambda: playing[0], timer=lambda: next(walls))
    assert clock.tick() == pytest.approx(1 / 20)  # first real-time frame: nominal
    assert clock.tick() == pytest.approx(0.05)
    assert clock.tick() == pytest.approx(0.10)
    playing[0] = False  # the device stopped: back to exact virtual frames
    assert clock.tick() == pytest.approx(1 / 20)


@pytest.mark.parametrize("device_kind, realtime", [("null", True), ("virtual", False)])
def test_app_run_seconds_lasts_as_long_as_the_audio_it_plays(egl, device_kind, realtime):
    """Issue 17: with the SDK's default (real-time) device, App.headless().run(1) raced
    through a second of frames in a few ms while speech played for a second."""
    from engine.audio import Mixer, open_device

    device = open_device(Mixer(16000), device_kind)
    app = App.headless((16, 16), fps=30, samples=0)
    try:
        started = time.perf_counter()
        frames = app.run(seconds=0.5)
        wall = time.perf_counter() - started
    finally:
        app.close()
        device.stop()
    if realtime:
        assert 0.45 <= wall <= 1.0 and 10 <= frames <= 16, (wall, frames)
    else:
        assert frames == 15 and wall < 0.45, (wall, frames)


def test_a_virtual_clock_with_a_realtime_device_is_reported(egl, caplog):
    from engine.audio import Mixer, open_device

    device = open_device(Mixer(16000), "null")
    app = App.headless((16, 16), samples=0, clock=ManualClock(30))
    try:
        app.run(frames=2)
    finally:
        app.close()
        device.stop()
    assert "frames race ahead of the speech" in caplog.text
