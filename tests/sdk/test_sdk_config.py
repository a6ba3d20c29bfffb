"""AvatarSDK set-up, the idle animation, and idle <-> speech blending."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from avatarkit import AvatarSDK, Configuration, DrivingMode, LogLevel
from avatarkit.arkit import ARKIT_INDEX
from avatarkit.controller import AvatarController
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.idle import IdleAnimator
from engine.audio import VirtualDevice


def test_use_before_initialize_is_a_clear_error(rig):
    AvatarSDK.cleanup()
    with pytest.raises(AvatarKitError) as err:
        AvatarController("ava", rig.mixer)
    assert err.value.code == ErrorCode.NOT_INITIALIZED
    with pytest.raises(AvatarKitError) as err:
        AvatarSDK.audio_mixer()
    assert err.value.code == ErrorCode.NOT_INITIALIZED


def test_configuration_validation_and_reinitialize(sdk):
    with pytest.raises(AvatarKitError) as err:
        Configuration(sample_rate=11025)
    assert err.value.code == ErrorCode.UNSUPPORTED_SAMPLE_RATE
    with pytest.raises(ValueError):
        Configuration(driving_mode="carrier-pigeon")
    with pytest.raises(AvatarKitError) as err:
        AvatarSDK.initialize("", Configuration())
    assert err.value.code == ErrorCode.APP_ID_UNRECOGNIZED
    AvatarSDK.set_session_token("early")  # allowed before initialize
    sdk("app-1", log_level=LogLevel.ERROR)
    assert AvatarSDK.session_token() == "early" and AvatarSDK.app_id() == "app-1"
    assert logging.getLogger("avatarkit").level == logging.ERROR
    sdk("app-1", driving_mode="backend", sample_rate=24000)  # again: updates in place
    assert AvatarSDK.configuration().driving_mode == DrivingMode.BACKEND
    assert AvatarSDK.audio_mixer().sample_rate == 24000
    assert isinstance(AvatarSDK.audio_device(), VirtualDevice)


def test_mixer_rate_must_match_the_configuration(sdk, rig):
    sdk(sample_rate=48000)
    with pytest.raises(AvatarKitError) as err:
        AvatarController("ava", rig.mixer)  # rig runs at 16 kHz
    assert err.value.code == ErrorCode.UNSUPPORTED_SAMPLE_RATE


def test_idle_animation_breathes_blinks_and_looks_around():
    idle = IdleAnimator(seed=3)
    poses = [idle.sample(k / 30) for k in range(30 * 20)]
    blink = np.array([p.weights[ARKIT_INDEX["eyeBlinkLeft"]] for p in poses])
    gaze = np.array([p.gaze for p in poses])
    head = np.array([p.head for p in poses])
    assert blink.max() > 0.9 and (blink > 0.5).mean() < 0.1  # blinks, short ones
    assert len(np.unique(np.round(gaze, 4), axis=0)) > 5  # saccades
    assert 0.005 < np.abs(head).max() < 0.1  # breathing + drift: small head motion
    assert all(0 <= p.weights.min() and p.weights.max() <= 1 for p in poses)
    again = IdleAnimator(seed=3).sample(7.3)
    np.testing.assert_array_equal(again.weights, poses[219].weights)  # a pure function of time
    assert not IdleAnimator(enabled=False).sample(5.0).weights.any()


def test_speech_blends_in_and_back_to_idle_without_jumps(sdk, rig, make_speech, motion_payloads):
    sdk(driving_mode="backend")
    controller = AvatarController("ava", rig.mixer, seed=1)
    rig.step(controller, frames=15)
    pcm = make_speech(1.0)
    cid = controller.yield_audio_data(pcm, end=True)
    controller.yield_frames_data(motion_payloads(pcm), cid)
    jaw = [pose.weights[ARKIT_INDEX["jawOpen"]] for _ in range(60) for pose in rig.step(controller)]
    assert max(jaw) - min(jaw) > 0.05
    tail = np.array(jaw[31:])  # after the utterance: back to idle, gradually
    assert np.abs(np.diff(tail)).max() < 0.15 and tail[-1] < 0.02
    controller.dispose()
