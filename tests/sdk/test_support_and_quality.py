"""AvatarSDK.support() on this machine's real EGL (and with EGL taken away), and the
render quality setting honoured by an App showing an AvatarView (real pixels)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from avatarkit import AvatarSDK, SupportStatus
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.manager import AvatarManager
from avatarkit.paths import AVATARS_DIR
from avatarkit.sdk import Configuration
from avatarkit.view import AvatarView
from engine import App, ManualClock

pytestmark = pytest.mark.timeout(90)


def test_support_probes_gl_and_frame_time(egl_app_possible):
    report = AvatarSDK.support(size=(64, 64), fps=5)  # 100 ms budget: any renderer makes it
    assert report.status is SupportStatus.SUPPORTED and report.supported
    assert report.gl_version is not None and report.gl_version >= (3, 3)
    # auto as a live window resolves it: never the offline-only geometric
    assert report.renderer and report.quality in ("low", "medium", "high")
    assert 0 < report.frame_ms <= report.budget_ms == pytest.approx(100.0)
    # The same machine asked for far more than it can do in the budget.
    slow = AvatarSDK.support(size=(64, 64), fps=1e5)
    assert slow.status is SupportStatus.INSUFFICIENT_PERFORMANCE and not slow.supported
    assert "takes" in slow.reason and slow.frame_ms > slow.budget_ms


@pytest.mark.parametrize(
    ("quality", "status", "probed"),
    [
        (None, SupportStatus.SUPPORTED, "low"),  # auto: a live window drops the pass
        ("medium", SupportStatus.INSUFFICIENT_PERFORMANCE, "medium"),  # named: it keeps it
    ],
)
def test_auto_is_judged_at_the_quality_a_live_window_drops_to(
    egl_app_possible, monkeypatch, quality, status, probed
):
    """Frame times scripted (the first probe misses 30 fps's half-frame budget, a second
    would make it): the probe's own timing is the test above."""
    from avatarkit import support

    times = iter([30.0, 10.0])
    qualities = []

    def probe(app, model):
        qualities.append(app.quality.name)
        return next(times)

    monkeypatch.setattr(support, "_probe", probe)
    report = AvatarSDK.support(size=(64, 64), fps=30, quality=quality)
    if not qualities or (quality is None and qualities[0] == "high"):
        pytest.skip("a GPU: auto is 4x MSAA and does not adapt")
    assert report.status is status and report.quality == probed
    assert qualities == (["medium", "low"] if quality is None else ["medium"])
    if quality is None:
        assert "medium took 30.0 ms, so a live window drops to low" in report.reason


def test_support_without_opengl_says_render_not_supported(tmp_path):
    """libglvnd pointed at no EGL vendor: no context can be made, as on a machine without
    Mesa or a driver."""
    env = {**os.environ, "__EGL_VENDOR_LIBRARY_FILENAMES": str(tmp_path / "none.json")}
    code = (
        "import json; from avatarkit import AvatarSDK; r = AvatarSDK.support(size=(64, 64));"
        "print(json.dumps([r.status, r.reason, r.gl_version]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    status, reason, version = json.loads(result.stdout.strip().splitlines()[-1])
    assert status == "renderNotSupported" and "EGL" in reason and version is None


@pytest.fixture
def egl_app_possible(make_headless_app):
    make_headless_app(size=(16, 16)).close()


def partial_alpha(app: App) -> int:
    alpha = app.read_pixels(alpha=True)[..., 3]
    return int(((alpha > 0) & (alpha < 255)).sum())


@pytest.mark.parametrize(("quality", "smoothed"), [("low", False), ("high", True)])
def test_configured_render_quality_is_what_the_app_draws_with(
    sdk, rig, egl_app_possible, quality, smoothed
):
    sdk(driving_mode="backend", render_quality=quality)
    ava = AvatarManager(str(AVATARS_DIR)).load_blocking("ava")
    with App.headless(size=(96, 96), clock=ManualClock(30), samples=4) as app:
        view = app.scene.create_entity("ava").add_component(
            AvatarView(ava, mixer=rig.mixer, idle=False, background="transparent")
        )
        view.frame(app.scene.camera, distance_scale=1.5)
        app.step()
        assert app.quality.name == quality
        # Aliased edges (low: no MSAA, no post pass) leave no partly covered pixel.
        assert (partial_alpha(app) > 20) is smoothed


def test_an_unknown_render_quality_is_refused():
    with pytest.raises(AvatarKitError) as info:
        Configuration(render_quality="ultra")
    assert info.value.code == ErrorCode.INVALID_REQUEST and "low" in info.value.message


def test_the_probe_times_frames_that_draw_the_avatar(egl_app_possible, monkeypatch):
    """While a real-time audio device plays, the probe's App runs on the wall clock and
    uploads the avatar aside (engine.render.upload_data): the frames it times must be
    ones that draw it, or an empty scene would answer for the machine."""
    from avatarkit import support
    from engine import App as EngineApp

    monkeypatch.setattr("engine.audio.devices.realtime_device_playing", lambda: True)
    drawn: list[bool] = []
    real_probe, real_step = support._probe, EngineApp.step

    def probe(app, model):
        def step(self):
            frame = real_step(self)
            drawn.append(model.uploaded)
            return frame

        monkeypatch.setattr(EngineApp, "step", step)
        try:
            return real_probe(app, model)
        finally:
            monkeypatch.setattr(EngineApp, "step", real_step)

    monkeypatch.setattr(support, "_probe", probe)
    AvatarSDK.support(size=(64, 64), fps=5)
    timed = drawn[-(support.WARMUP_FRAMES + support.PROBE_FRAMES) :]
    assert timed and all(timed), drawn
