"""The model's optional longer past: pooled taps of projected frames (``taps``/``pool`` in
the weights file). Files with and without taps load; taps see exactly the frames they name,
the stream stays exact under any chunking, and hostile tap fields are the model's code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.motion.lipsync import LipSyncStream
from avatarkit.motion.model import VisemeNet
from avatarkit.paths import MODELS_DIR

pytestmark = pytest.mark.timeout(60)

TAPS, POOL = [-10, -14, -18, -22, -26], 4


def with_taps(
    path: Path, taps=TAPS, pool=POOL, fit: bool = True, seed: int = 0, scale: float = 0.3
) -> Path:
    """The in-repo weights with (re)drawn pooled taps: random first-layer weights for them,
    inserted after the dense window's (the file's input order: window, taps, mean)."""
    with np.load(MODELS_DIR / "motion_mlp.npz") as data:
        arrays = dict(data)
    d = arrays["project"].shape[1]
    old_taps = len(arrays["taps"]) if "taps" in arrays else 0
    width = int(arrays["past"]) + 1 + int(arrays["ahead"])
    w0 = arrays["w0"]
    w0 = np.concatenate([w0[: width * d], w0[(width + old_taps) * d :]])  # no taps
    extra = np.random.default_rng(seed).standard_normal((len(taps) * d, w0.shape[1]))
    if fit:
        w0 = np.concatenate([w0[: width * d], scale * extra.astype(np.float32), w0[width * d :]])
    arrays |= {"w0": w0, "taps": np.array(taps, np.int64), "pool": np.int64(pool)}
    np.savez(path, **arrays)
    return path


def test_taps_pool_exactly_the_frames_they_name(tmp_path):
    net = VisemeNet(with_taps(tmp_path / "m.npz"))
    assert net.span == 29 and net.history == 29 + 1 + net.ahead
    n, d = 5, 16
    frames = np.arange((n + net.history - 1) * d, dtype=np.float32).reshape(-1, d)
    means = -np.ones((n, d), np.float32)
    inputs = net.inputs(frames, means)
    assert inputs.shape == (n, (net.width + len(TAPS) + 1) * d)
    for j in range(n):
        current = j + net.span  # row of output j's current frame
        dense = frames[current - net.past : current + net.ahead + 1].reshape(-1)
        np.testing.assert_array_equal(inputs[j, : net.width * d], dense)
        for i, tap in enumerate(TAPS):
            pooled = frames[current + tap - POOL + 1 : current + tap + 1].mean(axis=0)
            got = inputs[j, (net.width + i) * d : (net.width + i + 1) * d]
            np.testing.assert_allclose(got, pooled, rtol=1e-6)
        np.testing.assert_array_equal(inputs[j, -d:], means[j])


def test_a_file_without_taps_is_the_plain_window():
    with np.load(MODELS_DIR / "motion_mlp.npz") as data:
        plain = "taps" not in data or len(data["taps"]) == 0
    net = VisemeNet(MODELS_DIR / "motion_mlp.npz")
    if plain:
        assert net.taps == [] and net.span == net.past
    frames = np.zeros((net.history, 16), np.float32)
    assert net.inputs(frames, frames[-1:]).shape == (1, net.layers[0][0].shape[1])


def test_taps_that_weigh_nothing_change_nothing(mt, greeting, tmp_path):
    """Zero tap weights: the frames of the plain model, so the longer history the stream
    keeps (silence before the start, as in training) does not shift or delay anything."""
    net = VisemeNet(with_taps(tmp_path / "m.npz", scale=0.0))
    plain = VisemeNet(MODELS_DIR / "motion_mlp.npz")
    pcm, rate, _ = greeting
    for fps in (25, 30, 60):
        frames = [
            mt.stacked(
                mt.run_stream(pcm, rate, fps, 640, lambda r, f, n=n: LipSyncStream(r, f, net=n))
            )
            for n in (net, plain)
        ]
        for a, b in zip(*frames, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("rate,fps", [(16000, 30), (22050, 60), (48000, 25)])
def test_a_tapped_model_streams_the_same_frames_under_any_chunking(
    mt, greeting, tmp_path, rate, fps
):
    net = VisemeNet(with_taps(tmp_path / "m.npz"))
    pcm, src_rate, _ = greeting
    pcm = mt.resample(pcm[: src_rate * 2], src_rate, rate)  # 2 s: taps reach past the start

    def make(r, f):
        return LipSyncStream(r, f, net=net)

    whole = mt.stacked(mt.run_stream(pcm, rate, fps, len(pcm) * 2, make))[0]
    for chunk in (333, rate // 50 * 2 + 1, 2):
        frames = mt.run_stream(pcm, rate, fps, chunk, make)
        np.testing.assert_allclose(mt.stacked(frames)[0], whole, atol=1e-5)
    # The taps are used: other tap weights give another face.
    other = VisemeNet(with_taps(tmp_path / "o.npz", seed=1))
    moved = mt.run_stream(pcm, rate, fps, 640, lambda r, f: LipSyncStream(r, f, net=other))
    assert np.abs(mt.stacked(moved)[0] - whole).max() > 0.05


@pytest.mark.parametrize(
    "taps,pool,fit",
    [
        ([-10, -14], 4, False),  # the first layer has no weights for the taps
        ([0, -14], 4, True),  # a tap on the current frame: not the past
        ([-10, -65], 4, True),  # further back than any stream keeps
        ([-10], 0, True),  # pooling nothing
        ([-10], 9, True),
        (list(range(-17, 0)), 2, True),  # too many taps
    ],
)
def test_hostile_tap_fields_are_the_models_code(tmp_path, taps, pool, fit):
    path = with_taps(tmp_path / "m.npz", taps, pool, fit)
    with pytest.raises(AvatarKitError) as info:
        VisemeNet(path)
    assert info.value.code == ErrorCode.MOTION_MODEL_UNAVAILABLE
    assert str(path) in info.value.message
