"""One sample-rate / frame-rate check for every entry point (issue 18): the motion streams
and the SDK configuration refuse the same values with the same codes."""

from __future__ import annotations

import pytest

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.motion.envelope import EnvelopeStream
from avatarkit.motion.lipsync import LipSyncStream
from avatarkit.motion.stream import (
    SUPPORTED_FPS,
    SUPPORTED_SAMPLE_RATES,
    check_fps,
    check_sample_rate,
)
from avatarkit.sdk import Configuration


@pytest.mark.parametrize(
    "make", [EnvelopeStream, LipSyncStream, lambda rate, fps: Configuration(sample_rate=rate)]
)
def test_every_entry_point_refuses_a_rate_the_model_cannot_take(make):
    with pytest.raises(AvatarKitError) as err:
        make(11025, 30)
    assert err.value.code == ErrorCode.UNSUPPORTED_SAMPLE_RATE and "16000" in err.value.message


@pytest.mark.parametrize("make", [EnvelopeStream, LipSyncStream])
def test_streams_refuse_an_unsupported_frame_rate(make):
    with pytest.raises(AvatarKitError) as err:
        make(16000, 24)
    assert err.value.code == ErrorCode.INVALID_REQUEST and "30" in err.value.message


def test_supported_values_pass_through():
    assert [check_sample_rate(r) for r in SUPPORTED_SAMPLE_RATES] == list(SUPPORTED_SAMPLE_RATES)
    assert [check_fps(f) for f in SUPPORTED_FPS] == list(SUPPORTED_FPS)
