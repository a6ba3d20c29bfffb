"""Multi-avatar demo: four avatars, each its own stream, overlapping lines, voices panned
by screen position, listeners glancing at the speaker."""

from __future__ import annotations

import numpy as np
import pytest

from avatarkit import ConnectionState, ConversationState
from avatarkit.arkit import ARKIT_INDEX
from scenes import multi

pytestmark = pytest.mark.timeout(120)
JAW = ARKIT_INDEX["jawOpen"]


def test_four_avatars_speak_overlapping_on_their_own_streams(make_stage, step_until):
    stage = make_stage()
    demo = multi.Conversation(stage)
    assert list(demo.views) == list(multi.CAST)
    controllers = [view.controller for view in demo.views.values()]
    step_until(
        stage, lambda: all(c.connection_state == ConnectionState.CONNECTED for c in controllers)
    )
    pans = [view.controller.pan for view in demo.views.values()]
    assert pans == sorted(pans) and pans[0] < -0.5 and pans[-1] > 0.5  # left to right
    assert stage.server.active_sessions == 4  # one Motion Server session each
    jaw = {aid: 0.0 for aid in demo.views}
    max_together = 0
    for _ in range(int(8.0 * 30)):  # the first four cues, Mei and Noor overlapping
        stage.step()
        speaking = demo.speaking()
        max_together = max(max_together, len(speaking))
        for aid in speaking:
            jaw[aid] = max(jaw[aid], float(demo.views[aid].pose.weights[JAW]))
    assert [speaker for speaker, _ in list(demo.spoken)[:4]] == list(multi.CAST)
    assert all(value > 0.15 for value in jaw.values()), jaw  # each mouth moved with its own voice
    assert max_together >= 2  # overlapping lines


def test_listeners_glance_at_the_speaker(make_stage, step_until):
    stage = make_stage()
    demo = multi.Conversation(stage)
    ava = demo.views["ava"].controller
    step_until(stage, lambda: ava.conversation_state == ConversationState.PLAYING)
    for _ in range(15):
        stage.step()
    assert demo.speaking() == ["ava"]
    for aid in ("kai", "mei", "noor"):  # Ava is on their left: they look towards screen left
        yaw, _ = demo.views[aid].look
        assert yaw < -0.2, (aid, yaw)
    assert demo.views["ava"].look is None
    # The glance is visible: the listeners' eyes turned (eyeLook* weights on the model).
    kai = demo.views["kai"]
    look_in = (
        kai.model.target_names.index("eyeLookInLeft")
        if "eyeLookInLeft" in kai.model.target_names
        else None
    )
    assert look_in is not None
    assert (
        kai.model.weights[look_in] > 0.2
        or kai.model.weights[kai.model.target_names.index("eyeLookOutLeft")] > 0.2
    )


def test_stereo_mix_follows_the_speaker(make_stage):
    """Ava (far left) alone: her voice is louder in the left channel of the recording."""
    stage = make_stage()
    demo = multi.Conversation(stage)
    recording = stage.record("pan")
    for _ in range(int(2.5 * 30)):
        stage.step()
    recording.close()
    import av

    with av.open(str(recording.mp4)) as container:
        audio = np.concatenate(
            [
                f.to_ndarray().reshape(-1, 2) if f.format.is_packed else f.to_ndarray().T
                for f in container.decode(audio=0)
            ]
        )
    left, right = np.abs(audio[:, 0]).mean(), np.abs(audio[:, 1]).mean()
    assert demo.speaking() in (["ava"], [])
    assert left > 2 * right > 0  # pan -0.6: right at 0.4 of left


def test_a_closed_avatar_skips_its_lines_and_the_rest_go_on(make_stage):
    stage = make_stage()
    demo = multi.Conversation(stage)
    demo.views["kai"].controller.close()
    for _ in range(int(6.5 * 30)):
        stage.step()
    speakers = [speaker for speaker, _ in demo.spoken]
    assert "kai" not in speakers and speakers[:2] == ["ava", "mei"]


def test_a_guest_in_centimetres_takes_avas_seat(make_stage, step_until, tmp_path):
    """``--avatar PATH``: a user's file (Kai wrapped in a x100 root: centimetres) sits in
    the first seat at the size and head height of the others, connects and speaks."""
    from avatarkit.paths import AVATARS_DIR
    from engine.gltf_write import pack_glb, unpack_glb

    doc, blob = unpack_glb((AVATARS_DIR / "kai" / "kai.glb").read_bytes())
    scene = doc["scenes"][doc.get("scene", 0)]
    doc["nodes"].append({"name": "cm", "scale": [100.0] * 3, "children": scene["nodes"]})
    scene["nodes"] = [len(doc["nodes"]) - 1]
    path = tmp_path / "Guest cm.glb"
    path.write_bytes(pack_glb(doc, blob))
    stage = make_stage(avatar=str(path))
    demo = multi.Conversation(stage)
    guest, kai = demo.views["ava"], demo.views["kai"]
    assert guest.avatar.id == "guest-cm" and list(demo.views) == list(multi.CAST)

    def head(view) -> np.ndarray:
        return (view.entity.world_matrix() @ np.append(view.avatar.framing.head_center, 1))[:3]

    assert guest.entity.transform.scale[0] == pytest.approx(0.01, rel=0.02)
    assert head(guest)[1] == pytest.approx(head(kai)[1], abs=0.005)  # heads level
    step_until(stage, lambda: guest.controller.conversation_state == ConversationState.PLAYING)
    jaw = 0.0
    for _ in range(30):
        stage.step()
        jaw = max(jaw, float(guest.pose.weights[JAW]))
    assert jaw > 0.15  # Ava's first line, on the guest's face
