"""The app's layer over motion and idle: expressions with fades, look-at (eyes and head
node), and the stereo pan of an avatar's voice. Real views in a headless App on its
virtual clock (exactly 1/30 s per frame), audio through a virtual device."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avatarkit.arkit import ARKIT_INDEX
from avatarkit.controller import ConversationState
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.manager import AvatarManager
from avatarkit.paths import AVATARS_DIR
from avatarkit.view import AvatarView
from engine import App, ManualClock

pytestmark = pytest.mark.timeout(60)

FPS = 30
SMILE = ARKIT_INDEX["mouthSmileLeft"]
FROWN = ARKIT_INDEX["mouthFrownLeft"]
JAW = ARKIT_INDEX["jawOpen"]


@pytest.fixture(scope="module")
def ava():
    return AvatarManager(str(AVATARS_DIR)).load_blocking("ava")


@pytest.fixture
def stage(sdk, rig, ava):
    """``stage(idle=..., mode=...)`` -> (app, view); the device advances with each frame."""
    apps = []

    def make(idle: bool = False, mode: str = "direct"):
        sdk(driving_mode=mode)
        app = App.headless(size=(96, 96), clock=ManualClock(FPS), samples=0)
        apps.append(app)
        app.add_frame_listener(
            lambda app, frame: rig.device.advance(
                rig.device.frames_for_video_frame(frame.index, FPS)
            )
        )
        view = app.scene.create_entity("ava").add_component(
            AvatarView(ava, mixer=rig.mixer, idle=idle)
        )
        return app, view

    yield make
    for app in apps:
        app.close()


def steps(app, view, frames: int, index: int) -> list[float]:
    """Run ``frames`` frames; the composed weight of ARKit channel ``index`` after each."""
    out = []
    for _ in range(frames):
        app.step()
        out.append(float(view.pose.weights[index]))
    return out


def model_weight(view, name: str) -> float:
    return float(view.model.weights[view.model.target_names.index(name)])


def test_expression_fades_in_holds_and_fades_out_on_the_clock(stage):
    app, view = stage()
    app.step()
    view.set_expression({"mouthSmileLeft": 0.8, "mouthSmileRight": 0.8}, fade_s=0.5)
    rise = steps(app, view, 15, SMILE)  # exactly 0.5 s of virtual clock
    assert rise == sorted(rise) and rise[0] < 0.05  # smooth start (smoothstep)
    assert rise[7] == pytest.approx(0.8 * 0.5, abs=0.08)  # half way at 0.25 s
    assert rise[-1] == pytest.approx(0.8)
    assert steps(app, view, 10, SMILE) == [pytest.approx(0.8)] * 10  # held
    assert model_weight(view, "mouthSmileLeft") == pytest.approx(0.8)  # on the GPU morph weights
    assert view.expression == {
        "mouthSmileLeft": pytest.approx(0.8),
        "mouthSmileRight": pytest.approx(0.8),
    }
    view.set_expression(None, fade_s=0.2)
    fall = steps(app, view, 6, SMILE)
    assert fall == sorted(fall, reverse=True) and fall[-1] == 0.0
    assert view.expression == {}


def test_switching_expressions_cross_fades_without_a_jump(stage):
    app, view = stage()
    view.set_expression({"mouthSmileLeft": 1.0}, fade_s=0.3)
    steps(app, view, 5, SMILE)  # part way in
    view.set_expression({"mouthFrownLeft": 1.0}, fade_s=0.3)
    smile, frown = [], []
    for _ in range(12):
        app.step()
        smile.append(float(view.pose.weights[SMILE]))
        frown.append(float(view.pose.weights[FROWN]))
    assert max(abs(b - a) for a, b in zip(smile, smile[1:], strict=False)) < 0.25  # no pop
    assert smile[-1] == 0.0 and frown[-1] == pytest.approx(1.0) and frown == sorted(frown)
    view.set_expression({"mouthSmileLeft": 1.0}, fade_s=0)  # zero fade: at once
    app.step()
    assert view.pose.weights[SMILE] == 1.0 and view.pose.weights[FROWN] == 0.0


def test_expression_is_the_floor_under_idle_and_speech(stage, make_speech, motion_payloads):
    """Composed by maximum: idle blinks still close the eyes, speech still opens the jaw."""
    app, view = stage(idle=True, mode="backend")
    view.set_expression({"eyeBlinkLeft": 0.3, "mouthSmileLeft": 0.7}, fade_s=0)
    blink = steps(app, view, 8 * FPS, ARKIT_INDEX["eyeBlinkLeft"])  # idle blinks every 2-6 s
    assert min(blink) >= 0.3 - 1e-6 and max(blink) > 0.9
    controller = view.controller
    pcm = make_speech(1.0)
    cid = controller.yield_audio_data(pcm, end=True)
    controller.yield_frames_data(motion_payloads(pcm), cid)
    jaw, smile = [], []
    for _ in range(40):
        app.step()
        if controller.conversation_state == ConversationState.PLAYING:
            jaw.append(float(view.pose.weights[JAW]))
            smile.append(float(view.pose.weights[SMILE]))
    assert max(jaw) - min(jaw) > 0.05  # speech drives the mouth under the smile
    assert min(smile) >= 0.7 - 1e-6


def test_bad_overrides_are_invalid_requests_and_change_nothing(stage):
    app, view = stage()
    view.set_expression({"mouthSmileLeft": 0.5}, fade_s=0)
    view.look_at(0.2, 0.1)
    bad_calls = [
        lambda: view.set_expression({"smile": 1.0}),
        lambda: view.set_expression({"jawOpen": 1.5}),
        lambda: view.set_expression({"jawOpen": float("nan")}),
        lambda: view.set_expression({"jawOpen": "wide"}),
        lambda: view.set_expression({"jawOpen": 0.5}, fade_s=-1),
        lambda: view.look_at(float("inf"), 0.0),
        lambda: view.look_at(0.1, 0.0, head=1.5),
        lambda: view.controller.set_pan(1.5),
        lambda: view.controller.set_pan(float("nan")),
    ]
    for call in bad_calls:
        with pytest.raises(AvatarKitError) as info:
            call()
        assert info.value.code == ErrorCode.INVALID_REQUEST
    app.step()
    assert view.expression == {"mouthSmileLeft": 0.5}
    assert view.look == pytest.approx((0.2, 0.1))
    assert view.controller.pan == 0.0
    view.look_at(3.0, -2.0)  # beyond what a neck and eyes do: clamped, not refused
    assert view.look == pytest.approx((1.2, -0.7))


def _forward(view) -> np.ndarray:
    """Where the head node faces: +Z rotated by its rotation relative to its rest."""
    from engine.transform import quat_multiply

    index = view._head_nodes[0]
    rest = view._rest[0]
    inverse_rest = np.array([-rest[0], -rest[1], -rest[2], rest[3]], np.float32)
    x, y, z, w = quat_multiply(inverse_rest, view.model.nodes[index].rotation)
    # third column of the rotation matrix of (x, y, z, w)
    return np.array([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)])


def test_look_at_turns_the_head_node_and_the_eyes_smoothly_and_releases(stage):
    app, view = stage()
    # The avatar's head node turns, not the whole bust.
    assert [view.model.asset.nodes[i].name for i in view._head_nodes] == ["Head"]
    app.step()
    view.look_at(0.6, 0.2, head=0.5)
    app.step()
    first = _forward(view)
    for _ in range(2 * FPS):
        app.step()
    settled = _forward(view)
    yaw, pitch = math.atan2(settled[0], settled[2]), math.asin(settled[1])
    assert yaw == pytest.approx(0.3, abs=0.01) and pitch == pytest.approx(
        0.1, abs=0.01
    )  # half the look
    assert 0 < math.atan2(first[0], first[2]) < 0.3 * 0.3  # followed, not snapped
    # The eyes do the other half: towards +X is the avatar's left (ARKit eyeLookOutLeft).
    assert view.pose.gaze[0] == pytest.approx(-0.3, abs=0.01) and view.pose.gaze[
        1
    ] == pytest.approx(0.1, abs=0.01)
    assert model_weight(view, "eyeLookOutLeft") > 0.5 and model_weight(view, "eyeLookInRight") > 0.5
    assert (
        model_weight(view, "eyeLookUpLeft") > 0.1 and model_weight(view, "eyeLookOutRight") == 0.0
    )
    view.look_at(None)
    for _ in range(2 * FPS):
        app.step()
    assert np.allclose(_forward(view), [0, 0, 1], atol=1e-3)  # back to rest
    assert model_weight(view, "eyeLookOutLeft") < 0.01


def test_speech_and_idle_head_motion_stay_on_top_of_a_look(stage):
    app, view = stage(idle=True)
    view.look_at(-0.5, 0.0, head=1.0)
    for _ in range(FPS):
        app.step()
    yaws = []
    for _ in range(3 * FPS):
        app.step()
        f = _forward(view)
        yaws.append(math.atan2(f[0], f[2]))
    assert all(y < -0.4 for y in yaws)  # the look holds
    assert max(yaws) - min(yaws) > 0.005  # idle drift still moves the head on top


def test_look_at_point_aims_at_a_world_position(stage):
    app, view = stage()
    view.entity.transform.translation[:] = (0.5, 0.0, 0.0)
    head_y = view.avatar.framing.head_center[1]
    view.look_at_point((1.5, head_y, 1.0))  # 1 m to its +X side, 1 m ahead
    assert view.look == pytest.approx((math.pi / 4, 0.0), abs=1e-5)
    view.look_at_point(None)
    assert view.look is None


def test_pan_reaches_the_mixer_output_channels(stage, rig, make_speech):
    app, view = stage(mode="backend")
    controller = view.controller

    def play(pan: float) -> np.ndarray:
        controller.set_pan(pan)
        assert controller.pan == pan
        cid = controller.yield_audio_data(make_speech(0.5), end=True)
        controller.yield_frames_data([], cid)  # audio only
        heard = []
        for _ in range(25):
            controller.tick(1 / FPS)
            heard.append(rig.device.advance(rig.device.frames_for_video_frame(rig.frame, FPS)))
            rig.frame += 1
        return np.abs(np.concatenate(heard)).sum(axis=0)

    left, right = play(-1.0)
    assert left > 100 and right == 0.0
    left, right = play(0.5)
    assert right > 100 and left == pytest.approx(0.5 * right, rel=1e-3)
