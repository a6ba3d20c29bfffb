"""``Schedule`` (pyglet-style timers on a frame clock) and ``App.schedule``."""

from __future__ import annotations

import pytest

from engine import ManualClock, Schedule


def run(schedule: Schedule, clock: ManualClock, frames: int) -> None:
    for _ in range(frames):
        clock.tick()
        schedule.advance(clock.time)


def test_once_runs_once_when_due_with_the_elapsed_time():
    clock, schedule, calls = ManualClock(10), Schedule(), []
    schedule.schedule_once(calls.append, 0.25)
    run(schedule, clock, 2)
    assert calls == []
    run(schedule, clock, 10)
    assert calls == [pytest.approx(0.3)] and len(schedule) == 0


def test_interval_is_measured_from_the_last_run():
    clock, schedule, calls = ManualClock(10), Schedule(), []
    schedule.schedule_interval(lambda dt: calls.append(round(clock.time, 6)), 0.25, first=0)
    run(schedule, clock, 10)
    assert calls == [0.1, 0.4, 0.7, 1.0]  # due at 0, then 0.25 after each run


def test_unschedule_inside_a_callback_and_ordering():
    schedule, order = Schedule(), []

    def first(_dt: float) -> None:
        order.append("first")
        schedule.unschedule(second)  # due at the same advance: must not run

    def second(_dt: float) -> None:
        order.append("second")

    schedule.schedule_interval(first, 1.0)
    schedule.schedule_once(second, 1.0)
    schedule.schedule_once(lambda dt: order.append("early"), 0.5)
    assert schedule.advance(1.0) == 2
    assert order == ["early", "first"]
    schedule.unschedule(first)
    assert schedule.advance(5.0) == 0


def test_bad_interval_is_refused():
    with pytest.raises(ValueError):
        Schedule().schedule_interval(print, 0)


def test_the_app_runs_its_schedule_on_the_frame_clock():
    from engine import App

    try:
        app = App.headless(size=(16, 16), clock=ManualClock(30), samples=0)
    except Exception as exc:  # no EGL here
        pytest.skip(f"headless rendering unavailable: {exc}")
    try:
        seen = []
        app.schedule.schedule_once(lambda dt: seen.append(app.frame_index), 0.5)
        app.run(seconds=1.0)
        assert seen == [14]  # the 15th frame's clock reads 0.5 s
    finally:
        app.close()
