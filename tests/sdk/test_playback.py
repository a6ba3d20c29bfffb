"""Controller playback in Backend Mode: jitter buffer, audio clock, interrupt, pause/resume,
strict sync, errors. Driven by a virtual audio device, so fully deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from avatarkit.controller import AvatarController, ConversationState
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.protocol import encode_animation
from avatarkit.testing import heard_sample, timeline_frames, timeline_offset, timeline_pcm


@pytest.fixture
def backend(sdk, rig):
    sdk(driving_mode="backend")
    controller = AvatarController("avatar-1", rig.mixer)
    states = []
    controller.on_conversation_state = lambda s, r: states.append(s)
    errors = []
    controller.on_error = errors.append
    yield controller, states, errors
    controller.dispose()


def test_plays_in_sync_then_returns_to_idle(backend, rig, make_speech, motion_payloads):
    controller, states, _ = backend
    pcm = make_speech(1.0)
    cid = controller.yield_audio_data(pcm, end=True)
    controller.yield_frames_data(motion_payloads(pcm), cid)
    jaw = []
    for _ in range(40):
        pose = rig.step(controller)[0]
        if controller.face_time is not None:
            jaw.append(pose.weights[17])
    assert states == [ConversationState.PLAYING, ConversationState.IDLE]
    assert len(jaw) == 30
    assert max(jaw) - min(jaw) > 0.05  # the mouth moves with the bursts
    src = controller._source
    assert src.consumed == len(pcm) // 2  # every sample played exactly once


def test_the_face_drawn_matches_the_sample_heard(backend, rig):
    """Checked at the output, not against the controller's own clock: each audio sample
    says which it is, the motion draws its own time; while a frame shows, the face must be
    at the first sample heard during it (the virtual device has no latency)."""
    controller = backend[0]
    seconds = 2.0
    cid = controller.yield_audio_data(timeline_pcm(seconds), end=True)
    frames = timeline_frames(seconds)
    controller.yield_frames_data([encode_animation("c", cid, frames, end=True)], cid)
    offsets = []
    for _ in range(70):
        pose = rig.step(controller)[0]
        heard = heard_sample(float(rig.heard[0]))
        if heard is not None and controller.conversation_state == ConversationState.PLAYING:
            offset = timeline_offset(pose.weights, heard)
            if offset is not None and controller._speech_weight == 1.0:  # blended in
                offsets.append(offset)
    assert len(offsets) >= 40
    # Weights travel as 8 bits: the sawtooth reads back to +-2.5 ms (1.024 s / 0.8 / 255 / 2).
    assert max(map(abs, offsets)) < 0.003, (min(offsets), max(offsets))


def test_jitter_buffer_waits_for_both_audio_and_motion(backend, rig, make_speech, motion_payloads):
    """The start rule (60 ms jitter buffer, no device latency): 60 ms of audio and of
    motion; a frame covers 33 ms."""
    controller, states, _ = backend
    pcm = make_speech(1.0)
    payloads = motion_payloads(pcm, per_message=1)
    cid = controller.yield_audio_data(pcm[: 800 * 2])  # 50 ms of audio
    controller.yield_frames_data(payloads[:3], cid)  # 100 ms of motion
    rig.step(controller, frames=3)
    assert controller.conversation_state == ConversationState.BUFFERING
    assert controller._source.consumed == 0
    controller.yield_audio_data(pcm[800 * 2 : 3200 * 2], cid)  # 200 ms of audio ...
    rig.step(controller)
    assert controller.conversation_state == ConversationState.PLAYING  # ... both covered
    assert controller.buffer_health.audio_ms >= 0


def test_start_rule_counts_the_device_latency_towards_motion(
    backend, rig, make_speech, motion_payloads
):
    """Motion is needed only once the audio is heard, a device latency later: with 40 ms
    of it, the first frame (33 ms >= 60 - 40) starts the utterance; without, it does not."""
    controller, states, _ = backend
    pcm = make_speech(1.0)
    payloads = motion_payloads(pcm, per_message=1)
    cid = controller.yield_audio_data(pcm[: 3200 * 2])  # 200 ms of audio
    controller.yield_frames_data(payloads[:1], cid)  # 33 ms of motion
    rig.step(controller, frames=2)
    assert controller.conversation_state == ConversationState.BUFFERING
    assert controller._playback.start_need() == pytest.approx((0.06, 0.06))
    rig.mixer.latency_frames = int(0.04 * rig.mixer.sample_rate)
    assert controller._playback.start_need() == pytest.approx((0.06, 0.02))
    rig.step(controller)
    assert controller.conversation_state == ConversationState.PLAYING


def test_interrupt_clears_both_and_next_send_is_new_conversation(
    backend, rig, make_speech, motion_payloads
):
    controller, states, _ = backend
    pcm = make_speech(2.0)
    cid = controller.yield_audio_data(pcm)
    controller.yield_frames_data(motion_payloads(pcm), cid)
    rig.step(controller, frames=10)
    played = controller._source.consumed
    controller.interrupt()
    rig.step(controller, frames=5)
    assert controller.conversation_state == ConversationState.IDLE
    assert controller._source.consumed == played  # nothing more of it played
    controller.yield_frames_data(motion_payloads(pcm)[:3], cid)  # late frames: dropped quietly
    second = controller.yield_audio_data(make_speech(0.5), end=True)
    assert second != cid


def test_pause_freezes_clock_and_keeps_buffers(backend, rig, make_speech, motion_payloads):
    controller, states, _ = backend
    pcm = make_speech(1.0)
    cid = controller.yield_audio_data(pcm, end=True)
    controller.yield_frames_data(motion_payloads(pcm), cid)
    rig.step(controller, frames=9)
    controller.pause()
    rig.step(controller, frames=2)
    frozen = (controller.audio_time, controller._source.consumed)
    rig.step(controller, frames=20)
    assert controller.conversation_state == ConversationState.PAUSED
    assert (controller.audio_time, controller._source.consumed) == frozen
    controller.resume()
    rig.step(controller, frames=40)
    assert controller._source.consumed == len(pcm) // 2  # all of it, once
    assert states == [
        ConversationState.PLAYING,
        ConversationState.PAUSED,
        ConversationState.PLAYING,
        ConversationState.IDLE,
    ]


def test_motion_short_default_keeps_audio_and_decays_face(
    backend, rig, make_speech, motion_payloads
):
    controller, _, _ = backend
    pcm = make_speech(2.0)
    cid = controller.yield_audio_data(pcm, end=True)
    controller.yield_frames_data(motion_payloads(pcm)[:1], cid)  # only 333 ms of motion
    rig.step(controller, frames=45)
    assert controller.conversation_state == ConversationState.PLAYING
    assert controller.audio_time == pytest.approx(44 / 30, abs=1 / 16000)  # audio kept playing
    assert controller.buffer_health.motion_underruns == 1


def test_strict_sync_stalls_until_motion_arrives(sdk, rig, make_speech, motion_payloads):
    sdk(driving_mode="backend", strict_sync=True)
    controller = AvatarController("avatar-1", rig.mixer)
    pcm = make_speech(2.0)
    payloads = motion_payloads(pcm)
    cid = controller.yield_audio_data(pcm, end=True)
    controller.yield_frames_data(payloads[:1], cid)
    rig.step(controller, frames=30)
    assert controller.conversation_state == ConversationState.BUFFERING
    stalled_at = controller.audio_time
    assert stalled_at == pytest.approx(1 / 3, abs=0.05)
    controller.yield_frames_data(payloads[1:], cid)
    rig.step(controller, frames=80)
    assert controller.conversation_state == ConversationState.IDLE
    assert controller._source.consumed == len(pcm) // 2
    controller.dispose()


def test_bad_input_is_refused_with_stable_codes(backend, make_speech):
    controller, _, errors = backend
    cases = [
        (lambda: controller.yield_audio_data(b"\x00\x01\x02"), ErrorCode.INVALID_AUDIO),
        (lambda: controller.yield_audio_data(b""), ErrorCode.NO_AUDIO),
        (lambda: controller.yield_audio_data("text"), ErrorCode.INVALID_AUDIO),
        (
            lambda: controller.yield_audio_data(make_speech(0.1), sample_rate=44100),
            ErrorCode.UNSUPPORTED_SAMPLE_RATE,
        ),
        (lambda: controller.yield_frames_data([b"\xff\xff\xff"], "x"), ErrorCode.PROTOCOL_ERROR),
        (lambda: controller.start(), ErrorCode.NETWORK_LAYER_NOT_AVAILABLE),
        (lambda: controller.send(make_speech(0.1)), ErrorCode.NETWORK_LAYER_NOT_AVAILABLE),
        (lambda: controller.set_volume(1.5), ErrorCode.INVALID_REQUEST),
    ]
    for call, code in cases:
        with pytest.raises(AvatarKitError) as err:
            call()
        assert err.value.code == code
    assert controller.conversation_id is None  # nothing half-applied


def test_frames_for_unknown_conversation_are_discarded_and_reported(
    backend, rig, make_speech, motion_payloads
):
    controller, _, errors = backend
    pcm = make_speech(0.5)
    controller.yield_audio_data(pcm, end=True)
    controller.yield_frames_data(motion_payloads(pcm), "someone-else")
    rig.step(controller)
    assert [e.code for e in errors] == [ErrorCode.CONVERSATION_MISMATCH]


def test_empty_frames_list_switches_to_audio_only(backend, rig, make_speech):
    controller, states, _ = backend
    pcm = make_speech(0.5)
    cid = controller.yield_audio_data(pcm, end=True)
    controller.yield_frames_data([], cid)
    rig.step(controller, frames=20)
    assert controller._source.consumed == len(pcm) // 2
    assert states[-1] == ConversationState.IDLE


def test_direct_calls_need_direct_mode_and_a_connection(sdk, rig, make_speech):
    sdk()  # direct mode
    controller = AvatarController("avatar-1", rig.mixer)
    with pytest.raises(AvatarKitError) as err:
        controller.yield_audio_data(make_speech(0.1))
    assert err.value.code == ErrorCode.NETWORK_LAYER_NOT_AVAILABLE
    with pytest.raises(AvatarKitError) as err:
        controller.send(make_speech(0.1))  # never started
    assert err.value.code == ErrorCode.CONNECTION_CLOSED
    controller.dispose()


def test_volume_scales_the_output(backend, rig, make_speech):
    controller, _, _ = backend
    controller.set_volume(0.5)
    pcm = make_speech(0.3)
    cid = controller.yield_audio_data(pcm, end=True)
    controller.yield_frames_data([], cid)
    controller.tick(0.0)
    out = rig.device.advance(len(pcm) // 2)
    expected = np.frombuffer(pcm, "<i2") / 32768 * 0.5
    np.testing.assert_allclose(out[:, 0], expected, atol=1e-6)


def test_buffer_health_reported_twice_a_second(backend, rig, make_speech, motion_payloads):
    controller, _, _ = backend
    reports = []
    controller.on_buffer_health = reports.append
    pcm = make_speech(1.0)
    cid = controller.yield_audio_data(pcm)
    controller.yield_frames_data(motion_payloads(pcm)[:2], cid)
    rig.step(controller, frames=60)  # two seconds
    assert len(reports) == 4
    assert reports[-1].audio_underruns == 1  # the utterance never ended: audio ran dry


def test_interrupt_while_paused_leaves_the_next_utterance_playable(
    backend, rig, make_speech, motion_payloads
):
    controller, states, _ = backend
    pcm = make_speech(1.0)
    cid = controller.yield_audio_data(pcm, end=True)
    controller.yield_frames_data(motion_payloads(pcm), cid)
    rig.step(controller, frames=5)
    controller.pause()
    rig.step(controller, frames=2)
    controller.interrupt()
    rig.step(controller, frames=2)
    assert controller.conversation_state == ConversationState.IDLE
    before = controller._source.consumed
    second = make_speech(0.5, seed=2)
    cid = controller.yield_audio_data(second, end=True)
    controller.yield_frames_data(motion_payloads(second), cid)
    rig.step(controller, frames=25)
    assert controller._source.consumed - before == len(second) // 2
