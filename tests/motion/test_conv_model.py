"""Two optional model shapes a weights file may name: a dilated temporal convolution over the
window (``conv*``, ``conv_dilations``, ``speaker``) and speaker-normalised frames
(``speaker_norm``: each frame minus the running speech mean as of that frame). The
convolution sees exactly the frames its dilations name, both stream the same frames under
any chunking, and hostile convolution fields are the model's code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.motion.lipsync import LipSyncStream
from avatarkit.motion.model import VisemeNet
from avatarkit.motion.visemes import VISEMES
from avatarkit.paths import MODELS_DIR

pytestmark = pytest.mark.timeout(60)

CHANNELS, HIDDEN = 24, 32


def conv_file(
    path: Path, dilations=(1, 2, 3), speaker_norm: bool = False, seed: int = 0, taps=()
) -> Path:
    """The in-repo projection and normalisation with a random convolution and dense head."""
    with np.load(MODELS_DIR / "motion_mlp.npz") as data:
        arrays = {k: data[k] for k in ("past", "ahead", "lead", "mean", "std", "project")}
    rng = np.random.default_rng(seed)
    d = arrays["project"].shape[1]

    def draw(*shape):
        return (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)

    for i in range(len(dilations)):
        arrays[f"conv{i}"] = draw(3 * (d if i == 0 else CHANNELS), CHANNELS)
        arrays[f"conv_b{i}"] = draw(CHANNELS)
    arrays |= {
        "conv_dilations": np.array(dilations, np.int64),
        "speaker": draw(d, CHANNELS),
        "w0": draw(CHANNELS, HIDDEN),
        "b0": draw(HIDDEN),
        "w1": draw(HIDDEN, len(VISEMES)),
        "b1": draw(len(VISEMES)),
        "num_layers": np.int64(2),
        "speaker_norm": np.int64(speaker_norm),
        "taps": np.array(taps, np.int64),
        "pool": np.int64(4),
    }
    np.savez(path, **arrays)
    return path


def reference(net: VisemeNet, path: Path, inputs: np.ndarray) -> np.ndarray:
    """The convolution written out position by position, then the dense head."""
    with np.load(path) as data:
        arrays = dict(data)
    d = arrays["project"].shape[1]
    out = []
    for row in inputs:
        h = row[: net.width * d].reshape(net.width, d)
        for i, dil in enumerate(arrays["conv_dilations"]):
            k = arrays[f"conv{i}"].reshape(3, h.shape[1], CHANNELS)
            positions = range(len(h) - 2 * dil)
            h = (
                np.array([sum(h[p + j * dil] @ k[j] for j in range(3)) for p in positions])
                + arrays[f"conv_b{i}"]
            )
            if i == 0:
                h = h + row[net.width * d :] @ arrays["speaker"]
            h = np.maximum(h, 0)
        x = np.maximum(h[-1] @ arrays["w0"] + arrays["b0"], 0) @ arrays["w1"] + arrays["b1"]
        e = np.exp(x - x.max())
        out.append(e / e.sum())
    return np.array(out)


@pytest.mark.parametrize("n", [1, 3, 7])
def test_the_convolution_sees_the_frames_its_dilations_name(tmp_path, n):
    path = conv_file(tmp_path / "c.npz")
    net = VisemeNet(path)
    assert net.history == net.width == 13
    rng = np.random.default_rng(1)
    frames = rng.standard_normal((n + net.history - 1, 16)).astype(np.float32)
    means = rng.standard_normal((n, 16)).astype(np.float32)
    inputs = net.inputs(frames, means)
    np.testing.assert_allclose(net(inputs), reference(net, path, inputs), atol=1e-5)


@pytest.mark.parametrize("speaker_norm", [False, True])
@pytest.mark.parametrize("rate,fps", [(16000, 30), (22050, 60)])
def test_conv_and_speaker_norm_stream_the_same_frames_under_any_chunking(
    mt, greeting, tmp_path, rate, fps, speaker_norm
):
    net = VisemeNet(conv_file(tmp_path / "c.npz", speaker_norm=speaker_norm))
    assert net.speaker_norm is speaker_norm
    pcm, src_rate, _ = greeting
    pcm = mt.resample(pcm[: src_rate * 2], src_rate, rate)

    def make(r, f):
        return LipSyncStream(r, f, net=net)

    whole = mt.stacked(mt.run_stream(pcm, rate, fps, len(pcm) * 2, make))[0]
    assert whole.std(axis=0).max() > 0.05  # the random net moves the face
    for chunk in (333, rate // 50 * 2 + 1, 2):
        frames = mt.run_stream(pcm, rate, fps, chunk, make)
        np.testing.assert_allclose(mt.stacked(frames)[0], whole, atol=1e-5)


class _Spy(VisemeNet):
    """Records what the stream projects and what it builds windows from."""

    def __init__(self, path: Path) -> None:
        self.projected: list[np.ndarray] = []  # before the base class checks its shapes
        self.windowed: list[np.ndarray] = []
        super().__init__(path)

    def frame_vectors(self, mels: np.ndarray) -> np.ndarray:
        self.projected.append(mels.copy())
        return super().frame_vectors(mels)

    def inputs(self, frames: np.ndarray, means: np.ndarray) -> np.ndarray:
        self.windowed.append(frames.copy())
        return super().inputs(frames, means)


def test_speaker_norm_windows_hold_each_frame_minus_its_own_running_mean(mt, greeting, tmp_path):
    net = _Spy(conv_file(tmp_path / "c.npz", speaker_norm=True))
    pcm, rate, _ = greeting
    stream = LipSyncStream(rate, 30, net=net)
    net.projected.clear()  # the stream's silent start rows
    data = pcm[:rate].astype("<i2").tobytes()
    checked = 0
    for start in range(0, len(data), 640):
        calls = len(net.windowed)
        stream.push(data[start : start + 640])
        if len(net.windowed) == calls:
            continue
        both = net.projected[-1]  # this push's new frames, then the mean as of each
        mels, means = both[: len(both) // 2], both[len(both) // 2 :]
        expected = VisemeNet.frame_vectors(net, mels) - VisemeNet.frame_vectors(net, means)
        np.testing.assert_allclose(net.windowed[-1][-len(mels) :], expected, atol=1e-5)
        checked += 1
    assert checked > 20


@pytest.mark.parametrize(
    "dilations,taps",
    [
        ((1, 2), ()),  # a receptive field of 7 frames: not the 13-frame window
        ((1, 2, 4), ()),  # 15 frames: more than the window holds
        ((0, 3, 3), ()),
        ((1, 1, 1, 1, 1, 1, 1), ()),  # more layers than any file may have
        ((1, 2, 3), (-10,)),  # a convolution over the window has no pooled taps
    ],
)
def test_hostile_conv_fields_are_the_models_code(tmp_path, dilations, taps):
    path = conv_file(tmp_path / "c.npz", dilations, taps=taps)
    with pytest.raises(AvatarKitError) as info:
        VisemeNet(path)
    assert info.value.code == ErrorCode.MOTION_MODEL_UNAVAILABLE
    assert str(path) in info.value.message
