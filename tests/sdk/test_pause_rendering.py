"""pause_rendering(): the view stops drawing (real EGL pixels) while audio, motion
buffering and playback go on; resume_rendering() shows the face where the audio is."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from avatarkit.controller import ConversationState
from avatarkit.manager import AvatarManager
from avatarkit.paths import AVATARS_DIR
from avatarkit.view import AvatarView
from engine import App, ManualClock

pytestmark = pytest.mark.timeout(60)

FPS = 30
SIZE = (128, 128)


@pytest.fixture(scope="module")
def ava():
    return AvatarManager(str(AVATARS_DIR)).load_blocking("ava")


@pytest.fixture
def apps():
    made: list[App] = []

    def make(rig=None) -> App:
        app = App.headless(size=SIZE, clock=ManualClock(FPS), samples=0)
        made.append(app)
        if rig is not None:

            def play(app, frame) -> None:  # what is heard while this frame shows
                n = rig.device.frames_for_video_frame(frame.index, FPS)
                rig.heard = rig.device.advance(n)[:, 0]

            app.add_frame_listener(play)
        return app

    yield make
    for app in made:
        app.close()


def add_view(app: App, avatar, rig, name: str = "ava") -> AvatarView:
    view = app.scene.create_entity(name).add_component(AvatarView(avatar, mixer=rig.mixer))
    view.frame(app.scene.camera)
    return view


def test_a_paused_view_draws_nothing_and_comes_back(sdk, rig, ava, apps):
    sdk(driving_mode="backend")
    empty = apps()
    app = apps(rig)
    view = add_view(app, ava, rig)
    view.frame(empty.scene.camera)  # same camera for the empty scene's background
    fired = []
    view.on_first_rendering = lambda: fired.append(app.frame_index)
    controller = view.controller
    controller.pause_rendering()
    assert controller.is_rendering is False  # reads back at once
    for _ in range(3):
        app.step()
        empty.step()
    background = empty.read_pixels()
    assert np.array_equal(app.read_pixels(), background)  # not drawn at all
    assert fired == []  # nothing was rendered, so no first rendering yet

    threading.Thread(target=controller.resume_rendering).start()  # from any thread
    while not controller.is_rendering:
        pass
    app.step()
    shown = app.read_pixels()
    differs = np.abs(shown.astype(int) - background).sum(axis=2) > 30
    assert differs.mean() > 0.1  # the face fills a good part of the view
    assert fired == [3]  # after the first frame really drawn


def test_audio_and_motion_go_on_while_paused(sdk, rig, ava, apps, make_speech, motion_payloads):
    """Two views fed the same speech; one paused through the start of it. Sound plays and
    the paused one's conversation advances; back on, its face is the other's, frame for
    frame (posed at the audio time, not where it was paused)."""
    sdk(driving_mode="backend")
    app = apps(rig)
    paused, steady = add_view(app, ava, rig, "a"), add_view(app, ava, rig, "b")
    for view in (paused, steady):
        view.controller.set_volume(0.5)
    pcm = make_speech(2.0)
    paused.controller.pause_rendering()
    for view in (paused, steady):
        cid = view.controller.yield_audio_data(pcm, end=True)
        view.controller.yield_frames_data(motion_payloads(pcm), cid)
    app.step()
    frozen = paused.pose.weights.copy()
    heard = []
    for _ in range(20):
        app.step()
        heard.append(float(np.abs(rig.heard).max()))
    assert paused.controller.conversation_state == ConversationState.PLAYING
    assert paused.controller.audio_time == pytest.approx(steady.controller.audio_time)
    assert paused.controller.audio_time > 0.4  # it kept playing
    assert max(heard) > 0.2  # both voices at the output
    assert np.array_equal(paused.pose.weights, frozen)  # no face work while paused
    paused.controller.resume_rendering()
    for _ in range(3):
        app.step()
        assert np.array_equal(paused.pose.weights, steady.pose.weights)
    assert paused.pose.weights.max() > 0.05  # speaking, not a still face
