"""Pins the model's output on a bundled line to what it was before the per-push speed work.

``data/lipsync_reference.npz`` holds weights|head|gaze [frames, 57] per ``{rate}_{fps}``,
made with 20 ms pushes; every chunking (odd byte counts included) must reproduce them.
After a deliberate change (new weights, a new face mapping) rebuild it with
``.venv/bin/python tests/motion/test_regression.py`` and say why in the commit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REFERENCE = Path(__file__).parent / "data" / "lipsync_reference.npz"
CASES = [(16000, 25), (16000, 30), (16000, 60), (44100, 30), (8000, 60), (22050, 25)]


@pytest.fixture(scope="module")
def reference():
    with np.load(REFERENCE) as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize(("rate", "fps"), CASES)
@pytest.mark.parametrize("push_ms", [1, 20, 40, 100, 1000])
def test_output_matches_the_pinned_reference(mt, greeting, reference, rate, fps, push_ms):
    pcm, line_rate, _ = greeting
    if rate != line_rate:
        pcm = mt.resample(pcm, line_rate, rate)
    chunk = rate * push_ms // 1000 * 2 + (1 if push_ms == 1 else 0)  # 1 ms: odd byte counts
    weights, head, gaze = mt.stacked(mt.run_stream(pcm, rate, fps, chunk_bytes=chunk))
    got = np.concatenate([weights, head, gaze], axis=1)
    want = reference[f"{rate}_{fps}"]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_small_batch_paths_match_the_batched_ones():
    """A push's few frames take matrix-vector paths (MLP, mel filterbank); same numbers."""
    from avatarkit.motion.features import feature_spec
    from avatarkit.motion.lipsync import shared_net

    rng = np.random.default_rng(3)
    net = shared_net()
    inputs = rng.standard_normal((8, net.layers[0][0].shape[1])).astype(np.float32)
    batched = net(inputs)
    for n in (1, 2, 3):
        np.testing.assert_allclose(net(inputs[:n]), batched[:n], rtol=0, atol=1e-6)
    spec = feature_spec(16000)
    frames = (rng.standard_normal((8, spec.window)) * 0.1).astype(np.float32)
    batched = spec.log_mel(frames)
    for n in (1, 2, 3):
        np.testing.assert_allclose(spec.log_mel(frames[:n]), batched[:n], rtol=0, atol=1e-5)
    window = net.windows(np.arange(20 * 16, dtype=np.float32).reshape(20, 16))
    assert window.shape == (20 - net.width + 1, net.width * 16)
    np.testing.assert_array_equal(window[2], np.arange(2 * 16, (2 + net.width) * 16))


def rebuild() -> None:
    """Write the reference from the current model (20 ms pushes)."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import load_line, resample, run_stream, stacked

    pcm, line_rate, _ = load_line("greeting")
    out = {}
    for rate, fps in CASES:
        x = pcm if rate == line_rate else resample(pcm, line_rate, rate)
        weights, head, gaze = stacked(run_stream(x, rate, fps, chunk_bytes=rate // 50 * 2))
        out[f"{rate}_{fps}"] = np.concatenate([weights, head, gaze], axis=1).astype(np.float32)
    np.savez_compressed(REFERENCE, **out)
    print(f"wrote {REFERENCE}")


if __name__ == "__main__":
    rebuild()
