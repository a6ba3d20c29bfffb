"""Adaptive quality: a live ``auto`` App drops the post pass while frames miss their
budget and brings it back when it fits again; offline renders and named qualities never
change (engine.render.adaptive)."""

from __future__ import annotations

import time

import pytest

from engine import App, Component
from engine.clock import ManualClock, RealtimeClock
from engine.render.adaptive import FLAP_S, HEADROOM, LIVE_LADDER, AdaptiveQuality
from engine.render.quality import QUALITIES

FULL, FALLBACK = QUALITIES["medium"], QUALITIES["low"]
MS = 0.001


def feed(policy: AdaptiveQuality, ms: float, frames: int, start: float, step: float = 1 / 30):
    """Frames of ``ms`` each; returns (the first quality chosen or None, the time after)."""
    now = start
    for _ in range(frames):
        chosen = policy.observe(ms * MS, now)
        now += step
        if chosen is not None:
            return chosen, now
    return None, now


def test_drops_to_the_fallback_when_the_median_frame_misses_the_budget():
    policy = AdaptiveQuality(FULL, FALLBACK, min_fps=30, window=30)
    assert feed(policy, 29.0, 100, 0.0)[0] is None  # 29 ms fits the 30 ms budget
    policy = AdaptiveQuality(FULL, FALLBACK, min_fps=30, window=30)
    chosen, _ = feed(policy, 40.0, 29, 0.0)
    assert chosen is None  # not on a partial window
    assert policy.observe(40 * MS, 1.0) is FALLBACK
    assert policy.current is FALLBACK


def test_single_slow_frames_do_not_drop():
    policy = AdaptiveQuality(FULL, FALLBACK, min_fps=30, window=30)
    for k in range(300):  # every third frame a 60 ms hitch: the median is 20 ms
        assert policy.observe((60 if k % 3 == 0 else 20) * MS, k / 30) is None


def test_goes_back_up_only_when_the_pass_fits_with_headroom_after_the_hold():
    policy = AdaptiveQuality(FULL, FALLBACK, min_fps=30, window=30, hold_s=2.0)
    chosen, now = feed(policy, 40.0, 30, 0.0)
    assert chosen is FALLBACK
    # Without the pass the frame takes 30 ms: the pass costs 10, 40 does not fit.
    assert feed(policy, 30.0, 300, now)[0] is None
    assert policy.pass_cost_s == pytest.approx(10 * MS)
    # The load lightens: 12 + 10 ms fits within the headroom, after the hold.
    assert 12 + 10 <= HEADROOM * policy.budget_s / MS
    chosen, later = feed(policy, 12.0, 300, now + 10.0)
    assert chosen is FULL
    assert policy.current is FULL


def test_holds_before_a_step_up():
    policy = AdaptiveQuality(FULL, FALLBACK, min_fps=30, window=30, hold_s=5.0)
    chosen, now = feed(policy, 40.0, 30, 0.0)
    switched_at = now - 1 / 30
    chosen, now = feed(policy, 30.0, 30, now)  # the pass measured at 10 ms
    assert chosen is None
    chosen, later = feed(policy, 5.0, 600, now)
    assert chosen is FULL
    assert later - switched_at >= 5.0


def test_flapping_doubles_the_hold():
    policy = AdaptiveQuality(FULL, FALLBACK, min_fps=30, window=30, hold_s=2.0)
    chosen, now = feed(policy, 40.0, 30, 0.0)
    chosen, now = feed(policy, 10.0, 600, now)  # cost 30 ms measured: 10 + 30 > 25.5
    assert chosen is None
    policy.pass_cost_s = 5 * MS  # the pass got cheaper (a smaller view)
    chosen, now = feed(policy, 10.0, 600, now)
    assert chosen is FULL
    chosen, now = feed(policy, 40.0, 30, now)  # and misses again at once
    assert chosen is FALLBACK
    assert now - policy._raised_at < FLAP_S  # type: ignore[operator]
    assert policy.hold_s == 4.0


LADDER = [QUALITIES[name] for name in LIVE_LADDER]  # geometric, medium, low


def test_a_live_ladder_starts_at_medium_and_tries_the_edge_lines_where_frames_leave_room():
    policy = AdaptiveQuality(*LADDER, min_fps=30, window=30, hold_s=2.0, start=1)
    assert policy.current is QUALITIES["medium"]
    # 20 ms frames and an untried rung guessed at a fifth of the 30 ms budget: 26 > 25.5.
    assert feed(policy, 20.0, 600, 0.0)[0] is None
    chosen, later = feed(policy, 12.0, 600, 20.0)  # a lighter scene: 12 + 6 fits
    assert chosen is QUALITIES["geometric"] and later - 20.0 >= 0.5  # once the median has it


def test_a_try_that_misses_comes_back_and_its_measured_cost_keeps_it_down():
    policy = AdaptiveQuality(*LADDER, min_fps=30, window=30, hold_s=2.0, start=1)
    chosen, now = feed(policy, 12.0, 600, 0.0)
    assert chosen is QUALITIES["geometric"]
    chosen, now = feed(policy, 40.0, 30, now)  # the lines cost 28 ms here: too much
    assert chosen is QUALITIES["medium"] and policy.hold_s == 4.0  # flapped: a longer hold
    chosen, now = feed(policy, 12.0, 1200, now)
    assert chosen is None and policy.pass_cost_s == pytest.approx(28 * MS)


def test_the_ladder_steps_one_rung_at_a_time():
    policy = AdaptiveQuality(*LADDER, min_fps=30, window=30, hold_s=2.0, start=1)
    chosen, now = feed(policy, 40.0, 30, 0.0)
    assert chosen is QUALITIES["low"]
    assert feed(policy, 45.0, 300, now)[0] is None  # the last rung: nowhere lower to go
    chosen, now = feed(policy, 5.0, 600, now)  # the post pass measured at 0 ms: back up
    assert chosen is QUALITIES["medium"]  # medium first, geometric only from there
    chosen, now = feed(policy, 5.0, 600, now)
    assert chosen is QUALITIES["geometric"]
    assert feed(policy, 5.0, 600, now)[0] is None  # the top


class SlowFrames(Component):
    """Each update takes ``seconds`` of wall time, as a heavy scene would."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def update(self, dt: float) -> None:
        time.sleep(self.seconds)


def live_app(quality: str, clock=None) -> tuple[App, SlowFrames]:
    app = App.headless((64, 48), quality=quality, adaptive=True, clock=clock or RealtimeClock(30))
    slow = SlowFrames(0.045)
    app.scene.create_entity("slow").add_component(slow)
    return app, slow


@pytest.fixture
def live_auto(egl):
    """A live ``auto`` App under 45 ms of load a frame, on a software rasteriser."""
    app, slow = live_app("auto")
    if not app.software:
        app.close()
        pytest.skip("adaptive quality applies on a software rasteriser only")
    yield app, slow
    app.close()


def test_a_live_auto_app_drops_the_post_pass_and_brings_it_back(live_auto):
    app, slow = live_auto
    assert app.quality is FULL and app.target.post_aa is not None
    shown = []  # every frame as a listener (a capture) sees it: the switch loses none
    app.add_frame_listener(lambda app, frame: shown.append(app.read_pixels().mean()))
    for _ in range(32):
        app.step()
    assert app.quality is FALLBACK
    assert app.target.post_aa is None  # the target was rebuilt without the pass
    assert app.adaptive is not None
    for _ in range(30):  # a window at the fallback under the same load: the pass's cost
        app.step()
    assert app.quality is FALLBACK and app.adaptive.pass_cost_s is not None
    slow.seconds = 0.0  # the load goes: the frame with the pass fits again
    app.adaptive.hold_s = 0.3
    deadline = time.perf_counter() + 10.0
    while app.quality is not FULL and time.perf_counter() < deadline:
        app.step()
    assert app.quality is FULL and app.target.post_aa is not None
    assert app.read_pixels().shape == (48, 64, 3)  # it still draws after both switches
    assert len(shown) > 62 and min(shown) > 20  # the background on every frame, none blank


def test_a_live_auto_app_with_room_to_spare_draws_the_edge_lines(live_auto):
    app, slow = live_auto
    slow.seconds = 0.0
    assert app.adaptive is not None and app.quality is FULL
    app.adaptive.hold_s = 0.3
    deadline = time.perf_counter() + 10.0
    while app.quality is FULL and time.perf_counter() < deadline:
        app.step()
    assert app.quality is QUALITIES["geometric"] and app.target.edge_lines is not None
    app.step()
    assert app.renderer.capture_edges and app.read_pixels().shape == (48, 64, 3)


@pytest.mark.usefixtures("egl")
@pytest.mark.parametrize(
    ("quality", "clock"),
    [("auto", ManualClock(30.0)), ("medium", None)],
    ids=["offline-clock", "named-quality"],
)
def test_offline_renders_and_named_qualities_never_adapt(quality, clock):
    app, _ = live_app(quality, clock)
    try:
        before = app.quality
        for _ in range(32):
            app.step()
        assert app.quality is before
    finally:
        app.close()


@pytest.mark.usefixtures("egl")
def test_a_headless_app_does_not_adapt_unless_asked():
    app = App.headless((64, 48), quality="auto", clock=RealtimeClock(30))
    try:
        assert app.adaptive is None
    finally:
        app.close()


@pytest.mark.usefixtures("egl")
@pytest.mark.parametrize(("clock_fps", "kept_fps"), [(60.0, 30.0), (15.0, 15.0)])
def test_the_budget_is_30_fps_or_the_clocks_slower_pace(clock_fps, kept_fps):
    app = App.headless((64, 48), quality="auto", adaptive=True, clock=RealtimeClock(clock_fps))
    try:
        if not app.software:
            pytest.skip("adaptive quality applies on a software rasteriser only")
        assert app.adaptive is not None
        assert app.adaptive.budget_s == pytest.approx(0.9 / kept_fps)
    finally:
        app.close()
