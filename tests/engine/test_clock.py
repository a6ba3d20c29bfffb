from __future__ import annotations

import pytest

from engine import ManualClock, RealtimeClock
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
