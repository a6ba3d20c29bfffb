"""Ensembles of lip-sync nets (``training/distill.py``): the merged weights file and the
distillation targets of ``train.py --teachers`` compute the average of the members' logits,
as the runtime's numpy inference gives them member by member."""

from __future__ import annotations

import numpy as np
import pytest

from avatarkit.motion.features import NUM_MELS
from avatarkit.motion.model import VisemeNet
from avatarkit.motion.training.distill import merge, teacher_probabilities
from avatarkit.motion.training.train import AHEAD, PAST
from avatarkit.motion.visemes import VISEMES

WIDTH = PAST + 1 + AHEAD


def _teacher(path, rng: np.random.Generator, projected: int, hidden: int, norm=None) -> None:
    inputs = (WIDTH + 1) * projected
    sizes = [(inputs, hidden), (hidden, hidden), (hidden, len(VISEMES))]
    np.savez(
        path,
        past=PAST,
        ahead=AHEAD,
        taps=np.zeros(0, np.int64),
        pool=1,
        lead=1,
        num_layers=3,
        mean=rng.normal(-3, 1, NUM_MELS).astype(np.float32) if norm is None else norm[0],
        std=rng.uniform(0.5, 2, NUM_MELS).astype(np.float32) if norm is None else norm[1],
        visemes=np.array(VISEMES),
        project=rng.normal(0, 0.3, (NUM_MELS, projected)).astype(np.float32),
        **{f"w{i}": rng.normal(0, 0.3, s).astype(np.float32) for i, s in enumerate(sizes)},
        **{f"b{i}": rng.normal(0, 0.1, s[1]).astype(np.float32) for i, s in enumerate(sizes)},
    )


def _average(log_posteriors: list[np.ndarray]) -> np.ndarray:
    """The softmax of the mean logits: of the mean log-posteriors (their offsets cancel)."""
    mean_log = np.mean(log_posteriors, axis=0)
    out = np.exp(mean_log - mean_log.max(1, keepdims=True))
    return out / out.sum(1, keepdims=True)


def _log_posteriors(path, raw_rows, raw_means) -> np.ndarray:
    net = VisemeNet(path)
    frames = net.frame_vectors(raw_rows.copy())
    return np.log(net(net.inputs(frames, net.frame_vectors(raw_means.copy()))))


def test_a_merged_file_is_the_average_of_its_members(tmp_path):
    rng = np.random.default_rng(5)
    norm = (
        rng.normal(-3, 1, NUM_MELS).astype(np.float32),
        rng.uniform(0.5, 2, NUM_MELS).astype(np.float32),
    )
    paths = [tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "c.npz"]
    for path, projected, hidden in zip(paths, (8, 12, 4), (32, 24, 16), strict=True):
        _teacher(path, rng, projected, hidden, norm)
    merge(paths, tmp_path / "ens.npz")
    rows = rng.normal(-3, 1.5, (80, NUM_MELS)).astype(np.float32)
    means = rng.normal(-3, 0.5, (80 - WIDTH + 1, NUM_MELS)).astype(np.float32)
    members = [_log_posteriors(p, rows, means) for p in paths]
    merged = np.exp(_log_posteriors(tmp_path / "ens.npz", rows, means))
    np.testing.assert_allclose(merged, _average(members), atol=2e-5)
    assert (np.exp(members[0]).argmax(1) != np.exp(members[1]).argmax(1)).any()
    # Members that normalise their features differently cannot share one file.
    _teacher(tmp_path / "other.npz", rng, 8, 16)
    with pytest.raises(SystemExit, match="normalisation"):
        merge([paths[0], tmp_path / "other.npz"], tmp_path / "bad.npz")


def test_teacher_targets_match_the_runtime_inference_of_their_weights(tmp_path):
    torch = pytest.importorskip("torch")  # training only (docs/motion-model.md)
    rng = np.random.default_rng(3)
    paths = [tmp_path / "a.npz", tmp_path / "b.npz"]
    _teacher(paths[0], rng, 8, 32)
    _teacher(paths[1], rng, 12, 24)
    # This run's own normalisation, unlike either teacher's.
    mean = rng.normal(-2, 1, NUM_MELS).astype(np.float32)
    std = rng.uniform(0.5, 2, NUM_MELS).astype(np.float32)
    raw_rows = rng.normal(-2, 1.5, (200, NUM_MELS)).astype(np.float32)
    raw_means = rng.normal(-2, 0.5, (200, NUM_MELS)).astype(np.float32)
    xt = torch.from_numpy((raw_rows - mean) / std)
    mt = torch.from_numpy((raw_means - mean) / std)
    centres = np.arange(PAST, 200 - AHEAD)
    offsets = torch.arange(-PAST, AHEAD + 1)

    def batch(x, m, c):  # as train.py's
        return x[c[:, None] + offsets].reshape(len(c), -1), m[c + AHEAD]

    soft = teacher_probabilities(
        paths, xt, mt, torch.from_numpy(centres), batch, (mean, std), (PAST, AHEAD)
    ).numpy()

    log_posteriors = [_log_posteriors(p, raw_rows, raw_means[centres + AHEAD]) for p in paths]
    assert soft.shape == (len(centres), len(VISEMES))
    np.testing.assert_allclose(soft, _average(log_posteriors), atol=2e-5)
    # Not a vacuous match: the teachers disagree with each other somewhere.
    assert (np.exp(log_posteriors[0]).argmax(1) != np.exp(log_posteriors[1]).argmax(1)).any()


def test_a_teacher_with_another_context_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    path = tmp_path / "t.npz"
    _teacher(path, rng, 8, 16)
    xt = torch.zeros((40, NUM_MELS))
    with pytest.raises(SystemExit, match="another context"):
        teacher_probabilities(
            [path], xt, xt, torch.arange(12, 20), None, (np.zeros(40), np.ones(40)), (PAST, 5)
        )
