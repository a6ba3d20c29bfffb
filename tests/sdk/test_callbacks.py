"""App callbacks that raise (issue 18): logged with the callback's name, never allowed to
stop the frame loop, whichever object calls them."""

from __future__ import annotations

import logging

import pytest

from avatarkit.callbacks import call_app
from avatarkit.manager import AvatarManager
from avatarkit.paths import AVATARS_DIR
from avatarkit.view import AvatarView
from engine import App, ManualClock

pytestmark = pytest.mark.timeout(60)


def broken(*_args) -> None:
    raise RuntimeError("the app's bug")


def test_call_app_logs_and_reports_whether_it_ran(caplog):
    assert call_app(None, what="x") is False
    seen = []
    assert call_app(seen.append, 1, what="x") is True and seen == [1]
    with caplog.at_level(logging.ERROR, logger="avatarkit.callbacks"):
        assert call_app(broken, what="on_something") is False
    assert "on_something" in caplog.text and "the app's bug" in caplog.text


def _ava_in(app: App, sdk, rig) -> AvatarView:
    """The bundled ``ava`` in ``app`` (backend mode, the rig's mixer, no idle motion)."""
    sdk(driving_mode="backend")
    avatar = AvatarManager(str(AVATARS_DIR)).load_blocking("ava")
    return app.scene.create_entity("ava").add_component(
        AvatarView(avatar, mixer=rig.mixer, idle=False)
    )


def test_a_raising_view_callback_does_not_stop_the_frame_loop(sdk, rig, caplog):
    app = App.headless(size=(64, 64), clock=ManualClock(30), samples=0)
    try:
        view = _ava_in(app, sdk, rig)
        view.on_first_rendering = broken
        view.on_frame_rate_info = broken
        view.controller.on_buffer_health = broken
        with caplog.at_level(logging.ERROR, logger="avatarkit.callbacks"):
            for _ in range(70):  # past one frame-rate window (2 s at 30 fps)
                app.step()
        names = caplog.text
        assert "on_first_rendering" in names and "on_frame_rate_info" in names
    finally:
        app.close()


def test_first_rendering_waits_for_an_upload_made_aside(sdk, rig):
    """A live App makes an avatar's upload aside (engine.render.upload_data) and draws it
    from a later frame: ``on_first_rendering`` fires after that frame, not before."""
    from engine.clock import RealtimeClock

    app = App.headless(size=(64, 64), clock=RealtimeClock(30), samples=0)
    try:
        view = _ava_in(app, sdk, rig)
        fired: list[bool] = []  # whether the model was drawn when it fired
        view.on_first_rendering = lambda: fired.append(view.model.uploaded)
        app.step()
        assert fired == [] and not view.model.uploaded
        for _ in range(300):
            if fired:
                break
            app.step()
        app.step()
        assert fired == [True]  # once, after the frame that drew it
    finally:
        app.close()
