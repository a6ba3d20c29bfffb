"""Views in an engine scene: four avatars speaking at once through one audio device."""

from __future__ import annotations

import time

import numpy as np
import pytest

from avatarkit.controller import ConnectionState, ConversationState
from avatarkit.manager import AvatarManager
from avatarkit.paths import AVATARS_DIR
from avatarkit.sdk import AvatarSDK
from avatarkit.view import AvatarView

pytestmark = pytest.mark.timeout(90)

AVATARS = ("ava", "kai", "mei", "noor")


@pytest.fixture(scope="module")
def avatars():
    manager = AvatarManager(str(AVATARS_DIR))
    return [manager.load_blocking(avatar_id) for avatar_id in AVATARS]


def test_four_avatars_speak_at_once_with_one_device(sdk, server, rig, avatars, make_speech):
    from engine import App

    sdk(server.app_id, ingress_url=server.ingress_url, strict_sync=True)
    with App.headless(size=(320, 180), fps=30) as app:
        app.add_frame_listener(
            lambda app, frame: rig.device.advance(
                rig.device.frames_for_video_frame(frame.index, 30)
            )
        )
        views, first, fps_reports = [], [], []
        for i, avatar in enumerate(avatars):
            entity = app.scene.create_entity(avatar.id)
            entity.transform.translation[:] = ((i - 1.5) * 0.5, 0.0, 0.0)
            view = entity.add_component(AvatarView(avatar, mixer=rig.mixer, seed=i))
            view.on_first_rendering = lambda i=i: first.append(i)
            view.on_frame_rate_info = fps_reports.append
            views.append(view)
        views[0].frame(app.scene.camera, distance_scale=4.0)
        for view in views:
            AvatarSDK.set_session_token(server.issue_token())  # one token per connection
            view.controller.start()
            deadline = time.monotonic() + 10
            while view.controller.connection_state != ConnectionState.CONNECTED:
                assert time.monotonic() < deadline
                time.sleep(0.01)
        app.step()
        assert sorted(first) == [0, 1, 2, 3]  # idle already drawn, before any speech
        clips = [make_speech(1.0 + 0.2 * i, seed=i) for i in range(4)]
        for view, clip in zip(views, clips, strict=True):
            view.controller.send(clip, end=True)
        playing_together = 0
        pixels = []
        deadline = time.monotonic() + 30
        while not all(
            v.controller.conversation_state == ConversationState.IDLE
            and v.controller._source.consumed
            for v in views
        ):
            assert time.monotonic() < deadline
            app.step()
            time.sleep(0.002)
            states = [v.controller.conversation_state for v in views]
            playing_together = max(playing_together, states.count(ConversationState.PLAYING))
            pixels.append(app.read_pixels())
        assert playing_together == 4
        assert sorted(first) == [0, 1, 2, 3]  # on_first_rendering fired once per view
        assert [v.controller._source.consumed for v in views] == [len(c) // 2 for c in clips]
        assert len(rig.mixer.sources) == 4
        assert np.abs(np.diff(np.array(pixels, np.float32), axis=0)).max() > 20  # faces move
        app.run(frames=61)  # two more seconds of (virtual) clock: frame-rate reports
        assert fps_reports and all(r == pytest.approx(30.0) for r in fps_reports)
        app.scene.find("ava").destroy()  # the scene dropping a view cleans it up
        assert len(rig.mixer.sources) == 3
        assert views[0].controller.connection_state == ConnectionState.DISCONNECTED
    assert not rig.mixer.sources  # closing the app disposed the rest
