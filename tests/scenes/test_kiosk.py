"""Kiosk: greets with captions on the audio clock, speaks on input, HUD toggle,
survives a Motion Server restart, and its command writes an MP4 and a PNG."""

from __future__ import annotations

import numpy as np
import pytest

from avatarkit import ConnectionState, ConversationState
from avatarkit.arkit import ARKIT_INDEX
from engine.events import KEY_DOWN, MOUSE_DOWN, Event
from scenes import kiosk

pytestmark = pytest.mark.timeout(90)
JAW = ARKIT_INDEX["jawOpen"]


def test_greets_with_moving_lips_and_word_captions(make_stage, step_until):
    stage = make_stage()
    scene = kiosk.Kiosk(stage)
    assert list(scene.spoken) == ["greeting"]
    controller = scene.view.controller
    step_until(stage, lambda: controller.conversation_state == ConversationState.PLAYING)
    jaw, highlights = [], []
    for _ in range(45):  # 1.5 s of speech
        stage.step()
        jaw.append(float(scene.view.pose.weights[JAW]))
        highlights.append(scene.captions.text.highlight)
    assert scene.captions.visible and scene.captions.text.text.startswith("Hello!")
    assert max(jaw) > 0.15 and min(jaw) < max(jaw) / 2  # the mouth opens and closes
    assert highlights == sorted(highlights) and highlights[-1] >= 3  # words light up in order
    # The caption is really drawn: the bottom band differs from the same band without it.
    with_caption = stage.app.read_pixels()[-60:]
    scene.captions.text.visible = False
    stage.step()
    assert np.abs(with_caption.astype(int) - stage.app.read_pixels()[-60:]).mean() > 2


def test_key_and_click_speak_the_next_topics(make_stage, step_until):
    stage = make_stage()
    scene = kiosk.Kiosk(stage)
    stage.app.post_event(Event(KEY_DOWN, key="space"))
    stage.step()
    assert list(scene.spoken) == ["greeting", "kiosk_welcome"]
    assert scene.captions.text.text == scene.topics[0].text
    stage.app.post_event(Event(MOUSE_DOWN, button=1, pos=(10, 10)))
    stage.app.post_event(Event(KEY_DOWN, key="3"))
    stage.step()
    assert list(scene.spoken)[1:] == ["kiosk_welcome", "kiosk_tickets", scene.topics[2].id]
    controller = scene.view.controller
    step_until(stage, lambda: controller.conversation_state == ConversationState.PLAYING)
    assert scene.captions.text.text == scene.topics[2].text


def test_hud_toggles_and_reports_health(make_stage, step_until):
    stage = make_stage()
    scene = kiosk.Kiosk(stage)
    stage.step()
    before = stage.app.read_pixels()
    assert not scene.hud.visible
    stage.app.post_event(Event(KEY_DOWN, key="f1"))
    for _ in range(3):
        stage.step()
    assert scene.hud.visible
    text = scene.hud.text.text
    assert "fps" in text and "ava" in text and "audio" in text and "MB" in text
    assert f"render quality {stage.app.quality.name}" in text
    top_left = (slice(0, 60), slice(0, 200))
    assert np.abs(stage.app.read_pixels()[top_left].astype(int) - before[top_left]).mean() > 2
    stage.app.post_event(Event(KEY_DOWN, key="h"))
    stage.step()
    assert not scene.hud.visible


def test_survives_a_motion_server_restart(make_stage, step_until):
    stage = make_stage()
    scene = kiosk.Kiosk(stage)
    controller = scene.view.controller
    step_until(stage, lambda: controller.connection_state == ConnectionState.CONNECTED)
    stage.stop_server()
    step_until(stage, lambda: scene.banner.message is not None)
    assert "Motion Server" in scene.banner.message
    idle_heads = []
    for _ in range(10):  # idle keeps playing while the server is away
        stage.step()
        idle_heads.append(scene.view.pose.head.copy())
    assert np.ptp(np.array(idle_heads), axis=0).max() > 0
    port = stage.server.port
    stage.restart_server()
    assert stage.server.port == port
    step_until(
        stage,
        lambda: controller.connection_state == ConnectionState.CONNECTED,
        timeout=20,
        max_frames=2000,
    )
    step_until(stage, lambda: scene.banner.message == "Motion Server reconnected")
    assert scene.banner.outages == 1
    # Speech after the restart gets motion again.
    stage.app.post_event(Event(KEY_DOWN, key="1"))
    step_until(stage, lambda: controller.conversation_state == ConversationState.PLAYING)
    assert max_jaw(stage, scene, frames=30) > 0.15


def test_command_writes_video_and_image(tmp_path, capsys):
    code = kiosk.main(["--headless", "--seconds", "1", "--size", "256x144", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert (tmp_path / "kiosk.mp4").stat().st_size > 1000
    assert (tmp_path / "kiosk.png").stat().st_size > 1000
    assert "kiosk.mp4" in out and "kiosk.png" in out


def test_headless_visitor_asks_a_question(make_stage):
    stage = make_stage()
    scene = kiosk.Kiosk(stage)
    scene.entity.add_component(kiosk.ScriptedVisitor(stage.app, at=0.5))
    for _ in range(20):
        stage.step()
    assert list(scene.spoken) == ["greeting", "kiosk_welcome"]


def test_a_key_while_disconnected_does_not_crash(make_stage):
    stage = make_stage()
    scene = kiosk.Kiosk(stage)
    scene.view.controller.close()  # no connection at all: the SDK refuses speech
    stage.app.post_event(Event(KEY_DOWN, key="space"))
    stage.step()
    stage.step()
    assert list(scene.spoken) == ["greeting"]
    assert scene.banner.message is not None  # the operator sees why


def test_a_users_own_file_greets_too(make_stage, step_until, tmp_path):
    """``--avatar PATH``: a file whose derived id (``my-head``) no bundled package has; the
    scene's Motion Server must accept it, or the guide never connects."""
    import shutil

    from avatarkit.paths import AVATARS_DIR

    path = tmp_path / "My Head.glb"
    shutil.copy(AVATARS_DIR / "kai" / "kai.glb", path)
    stage = make_stage(avatar=str(path))
    scene = kiosk.Kiosk(stage, str(path))
    assert scene.view.avatar.id == "my-head"
    assert scene.view.avatar.framing.extra["anchor"] == "morphRegion"  # measured, no manifest
    controller = scene.view.controller
    step_until(stage, lambda: controller.conversation_state == ConversationState.PLAYING)
    assert max_jaw(stage, scene, frames=30) > 0.15


def max_jaw(stage, scene, frames: int) -> float:
    """The widest jawOpen over the next ``frames`` frames."""
    jaw = []
    for _ in range(frames):
        stage.step()
        jaw.append(float(scene.view.pose.weights[JAW]))
    return max(jaw)


HEADS = {
    "rpm": ("rpm_head.glb", ("viseme_aa", "viseme_O", "viseme_U", "jawOpen"), "Head"),
    "vrm1": ("vrm1_head.vrm", ("Fcl_MTH_A", "Fcl_MTH_O", "Fcl_MTH_U"), "J_Bip_C_Head"),
    "vrm0": ("vrm0_head.vrm", ("Fcl_MTH_A", "Fcl_MTH_O", "Fcl_MTH_U"), "J_Bip_C_Head"),
}


@pytest.mark.parametrize("head", list(HEADS))
def test_skinned_heads_nod_look_and_speak(make_stage, step_until, head):
    """``--avatar`` an RPM-shaped and a VRM 1.0 / 0.x skinned head (assets/test): the
    greeting opens the mouth through the model's own targets (visemes, VRM expressions)
    and the speech's head motion turns the head bone, so the drawn head moves."""
    from assets.test.make_rpm_head import HERE

    name, mouth, head_bone = HEADS[head]
    path = str(HERE / name)
    stage = make_stage(avatar=path)
    scene = kiosk.Kiosk(stage, path)
    view = scene.view
    assert view._bones is not None and view._head_nodes == []  # bones, not the model root
    bone = view.model.asset.find_node(head_bone)
    assert bone is not None and view._bones.head.node == bone
    rest = view.model.asset.nodes[bone].transform.rotation
    eye = view._bones.eyes[0].node
    eye_rest = view.model.asset.nodes[eye].transform.rotation
    angle = lambda q, r: 2 * np.arccos(min(1.0, abs(float(np.dot(q, r)))))  # noqa: E731
    step_until(stage, lambda: view.controller.conversation_state == ConversationState.PLAYING)
    opened, turns, looks, frames = [], [], [], []
    for _ in range(45):  # 1.5 s of speech
        stage.step()
        weights = view.model.weights
        opened.append(max(float(weights[view.model.target_names.index(t)]) for t in mouth))
        turns.append(angle(view.model.nodes[bone].rotation, rest))
        looks.append(angle(view.model.nodes[eye].rotation, eye_rest))
        frames.append(stage.app.read_pixels()[:, :, :3].astype(np.int16))
    assert max(opened) > 0.3 and min(opened) < max(opened) / 2  # the mouth opens and closes
    assert max(turns) > 0.01 and max(turns) - min(turns) > 0.005  # the head bone moves
    assert max(looks) > 0.005  # the eyes look about (idle gaze) with their bones
    # The frames show it: the skull's outline (the top of the picture, above the eyes and
    # the mouth) moves while it speaks, as only a head turn moves it.
    h, w = frames[0].shape[:2]
    skull = (slice(0, h * 2 // 5), slice(w // 4, w * 3 // 4))
    moved = np.abs(frames[0][skull] - frames[-1][skull]).max(axis=-1) > 12
    assert moved.sum() > 100, moved.sum()  # ~250; the eyes' gaze alone changes ~30
