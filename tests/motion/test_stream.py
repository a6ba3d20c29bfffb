"""Streaming invariants of the model every consumer gets from ``create_stream``."""

from __future__ import annotations

import numpy as np
import pytest

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.motion.lipsync import LipSyncStream
from avatarkit.motion.stream import SUPPORTED_FPS, SUPPORTED_SAMPLE_RATES, create_stream

pytestmark = pytest.mark.timeout(60)


def test_create_stream_is_the_trained_model():
    assert isinstance(create_stream(16000, 30), LipSyncStream)  # more in test_model_choice.py


@pytest.mark.parametrize("rate", SUPPORTED_SAMPLE_RATES)
@pytest.mark.parametrize("fps", SUPPORTED_FPS)
def test_chunking_never_changes_the_frames(mt, greeting, rate, fps):
    pcm, src_rate, _ = greeting
    pcm = mt.resample(pcm[: src_rate * 3 // 2], src_rate, rate)  # 1.5 s of speech
    whole = mt.run_stream(pcm, rate, fps, chunk_bytes=len(pcm) * 2)
    odd = mt.run_stream(pcm, rate, fps, chunk_bytes=333)  # odd byte counts split samples
    tiny = mt.run_stream(pcm, rate, fps, chunk_bytes=rate // 50 * 2 + 1)
    expected = -(-len(pcm) * fps // rate)
    for frames in (whole, odd, tiny):
        assert [f.index for f in frames] == list(range(expected))
        assert all(f.fps == fps for f in frames)
    w0, h0, g0 = mt.stacked(whole)
    for other in (odd, tiny):
        w, h, g = mt.stacked(other)
        np.testing.assert_allclose(w, w0, atol=1e-5)
        np.testing.assert_allclose(h, h0, atol=1e-6)
        np.testing.assert_allclose(g, g0, atol=1e-6)
    assert w0.dtype == np.float32 and w0.shape == (expected, 52)
    assert w0.min() >= 0.0 and w0.max() <= 1.0
    assert w0.max() > 0.2  # it is speech: the face moves


def test_single_bytes_and_empty_pushes(mt, greeting):
    pcm, rate, _ = greeting
    pcm = pcm[: rate // 4]
    stream = create_stream(rate, 30)
    frames = stream.push(b"")
    for byte in pcm.tobytes():
        frames += stream.push(bytes([byte]))
    frames += stream.finish()
    reference = mt.run_stream(pcm, rate)
    np.testing.assert_allclose(mt.stacked(frames)[0], mt.stacked(reference)[0], atol=1e-5)


@pytest.mark.parametrize("count", [0, 1, 2, 533, 534])
def test_frame_count_is_ceil_of_samples(mt, count):
    pcm = (np.random.default_rng(count).standard_normal(count) * 3000).astype("<i2")
    frames = mt.run_stream(pcm, 16000, 30, chunk_bytes=100)
    assert len(frames) == -(-count * 30 // 16000)


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize("fps", SUPPORTED_FPS)
def test_frames_are_ready_within_the_lookahead(mt, greeting, rate, fps):
    """Frame i is out once audio up to i/fps + lookahead has arrived, and lookahead <= 60 ms."""
    pcm, src_rate, _ = greeting
    pcm = mt.resample(pcm[:src_rate], src_rate, rate)
    stream = create_stream(rate, fps)
    assert stream.lookahead_s <= 0.060
    received, ready = 0, 0
    step = max(1, rate // 200)  # 5 ms pushes
    while received < len(pcm):
        ready += len(stream.push(pcm[received : received + step].tobytes()))
        received = min(len(pcm), received + step)
        # every frame whose time + lookahead is covered must be out
        due = int(np.floor((received / rate - stream.lookahead_s) * fps)) + 1
        assert ready >= min(due, -(-received * fps // rate))


def test_silence_is_the_rest_pose(mt):
    frames = mt.run_stream(np.zeros(16000 * 2, np.int16), 16000, 30)
    weights, head, gaze = mt.stacked(frames)
    assert np.abs(weights).max() < 0.05
    assert np.abs(head).max() < 1e-3 and np.abs(gaze).max() < 1e-3


def test_face_returns_smoothly_to_rest_after_speech(mt, greeting):
    pcm, rate, _ = greeting
    pcm = np.concatenate([pcm, np.zeros(rate * 2, np.int16)])
    weights, head, _ = mt.stacked(mt.run_stream(pcm, rate, 60))
    tail = weights[-30:]  # the last half second of silence
    assert np.abs(tail).max() < 0.05 and np.abs(head[-30:]).max() < 0.01
    jaw = weights[:, 17]
    assert np.abs(np.diff(jaw)).max() < 0.45  # no full-range snap within one 60 fps frame


def test_mouth_moves_with_syllables_without_chattering(mt):
    """Opening/closing movements per second stay near what the phoneme alignment implies."""
    from avatarkit.motion.face import lip_aperture
    from avatarkit.motion.face import mouth_moves as moves
    from avatarkit.motion.visemes import ARTICULATION, frame_labels, segments

    ours = truth = 0
    for line_id in ("greeting", "kiosk_cafe", "quiz_q2", "conv_cleo_1"):
        pcm, rate, line = mt.load_line(line_id)
        weights, _, _ = mt.stacked(mt.run_stream(pcm, rate, 60))
        aperture = lip_aperture(weights)
        spans = segments([(n, int(round(t * rate))) for n, t in line["phonemes"]], len(pcm))
        gt = ARTICULATION[frame_labels(spans, np.arange(len(weights)) / 60, rate), 0]
        ours += moves(aperture / np.percentile(aperture, 90))
        truth += moves(gt)
    assert 0.6 * truth <= ours <= 1.4 * truth


def test_deterministic(mt, greeting):
    pcm, rate, _ = greeting
    a, b = mt.run_stream(pcm, rate), mt.run_stream(pcm, rate)
    np.testing.assert_array_equal(mt.stacked(a)[0], mt.stacked(b)[0])
    np.testing.assert_array_equal(mt.stacked(a)[1], mt.stacked(b)[1])


def test_bad_parameters_and_use_after_finish():
    with pytest.raises(AvatarKitError) as err:
        create_stream(11025, 30)
    assert err.value.code == ErrorCode.UNSUPPORTED_SAMPLE_RATE
    with pytest.raises(AvatarKitError) as err:
        create_stream(16000, 24)
    assert err.value.code == ErrorCode.INVALID_REQUEST
    stream = create_stream(16000, 30)
    stream.push(b"\0\0" * 100)
    stream.finish()
    for call in (lambda: stream.push(b"\0\0"), stream.finish):
        with pytest.raises(AvatarKitError) as err:
            call()
        assert err.value.code == ErrorCode.INVALID_REQUEST
