"""The trained viseme classifier: a small MLP over a window of feature frames, numpy only."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.motion.features import NUM_MELS
from avatarkit.motion.visemes import VISEMES
from avatarkit.paths import MODELS_DIR

MODEL_PATH = MODELS_DIR / "motion_mlp.npz"
# Up to this many frames (a 20-40 ms push brings 2-4), one matrix-vector product per frame
# beats one small matrix-matrix product: OpenBLAS's gemm costs ~3x a gemv at n = 2.
_ROWWISE_MAX = 3
# Hostile-file limits on the pooled context: at most this many taps, frames per tap, and
# frames back from the current one (a tap at -64 pooled over 8 reaches 710 ms back).
_MAX_TAPS, _MAX_POOL, _MAX_TAP_BACK = 16, 8, 64
_MAX_CONV_LAYERS = 6


class VisemeNet:
    """Feature frames ``k - past .. k + ahead`` plus the speaker's running mean spectrum
    -> viseme posteriors at ``k``.

    Each 10 ms frame (normalised log-mels) is first projected to a few dimensions, so the
    window the MLP sees is small and a push costs little. Optionally (``taps`` in the file)
    the MLP also sees a coarse, longer past: per tap offset ``o`` (< 0) the mean of the
    projected frames ``k + o - pool + 1 .. k + o``. Files without taps load as before.
    """

    def __init__(self, path: Path | None = None) -> None:
        path = MODEL_PATH if path is None else path  # read at call time: tests point it elsewhere
        try:
            with np.load(path) as data:
                self.past, self.ahead = int(data["past"]), int(data["ahead"])
                taps = data["taps"] if "taps" in data else np.zeros(0, np.int64)
                self.taps = [int(t) for t in np.asarray(taps).reshape(-1)]
                self.pool = int(data["pool"]) if "pool" in data else 1
                self.mean, self.scale = (
                    data["mean"].astype(np.float32),
                    1.0 / data["std"].astype(np.float32),
                )
                self.projection = data["project"].astype(np.float32)  # [mels, projected]
                # Each frame minus the speaker's running mean spectrum (as of that frame).
                self.speaker_norm = bool(data["speaker_norm"]) if "speaker_norm" in data else False
                self.conv = _conv_layers(data)
                # Stored [out, in] C-contiguous and applied to column vectors: for the one to
                # three frames a push brings, BLAS's matrix-vector path is 2-3x faster.
                self.layers = [
                    (
                        np.ascontiguousarray(data[f"w{i}"].T, np.float32),
                        data[f"b{i}"].astype(np.float32)[:, None],
                    )
                    for i in range(int(data["num_layers"]))
                ]
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise AvatarKitError(
                ErrorCode.MOTION_MODEL_UNAVAILABLE, f"cannot load motion model {path}: {exc}"
            ) from exc
        last = len(self.layers) - 1
        self._rowwise_layers = [
            (w, b[:, 0].copy(), i < last) for i, (w, b) in enumerate(self.layers)
        ]
        self.width = self.past + 1 + self.ahead
        self.num_mels = len(self.mean)
        self._check_taps(path)
        # Frames before the current one that an input needs (the dense window or a tap).
        self.span = max([self.past] + [self.pool - 1 - t for t in self.taps])
        self.history = self.span + 1 + self.ahead  # frame vectors per input
        self._check_shapes(path)

    def _check_taps(self, path: Path) -> None:
        ok = (
            len(self.taps) <= _MAX_TAPS
            and 1 <= self.pool <= _MAX_POOL
            and all(-_MAX_TAP_BACK <= t <= -1 for t in self.taps)
            and 0 <= self.past <= _MAX_TAP_BACK
            and 0 <= self.ahead <= 10
            and (
                self.conv is None
                or (not self.taps and 1 + 2 * sum(self.conv.dilations) == self.width)
            )
        )
        if not ok:
            raise AvatarKitError(
                ErrorCode.MOTION_MODEL_UNAVAILABLE,
                f"motion model {path} does not fit: context past {self.past}, ahead "
                f"{self.ahead}, taps {self.taps[: _MAX_TAPS + 1]}, pool {self.pool}"
                + ("" if self.conv is None else f", convolution {self.conv.dilations}")
                + " out of range",
            )

    def _check_shapes(self, path: Path) -> None:
        """One pass over silence: weights that load but do not fit together (a file from
        another version, a bad edit) fail here, with the model's code, not mid-utterance."""
        try:
            if self.num_mels != NUM_MELS or len(self.scale) != NUM_MELS:
                raise ValueError(f"{self.num_mels} mel bands, the features have {NUM_MELS}")
            frames = self.frame_vectors(np.zeros((self.history, NUM_MELS), np.float32))
            out = self(self.inputs(frames, frames[-1:]))
            if out.shape != (1, len(VISEMES)):
                raise ValueError(f"{out.shape[1]} outputs, expected {len(VISEMES)} visemes")
        except ValueError as exc:
            raise AvatarKitError(
                ErrorCode.MOTION_MODEL_UNAVAILABLE, f"motion model {path} does not fit: {exc}"
            ) from exc

    def window_vectors(self, mels: np.ndarray, means: np.ndarray) -> np.ndarray:
        """Level-normalised log-mels and the running speech mean as of each -> the rows
        windows are made of (speaker-normalised when the weights say so)."""
        rows = self.frame_vectors(mels)
        return rows - self.frame_vectors(means) if self.speaker_norm else rows

    def frame_vectors(self, mels: np.ndarray) -> np.ndarray:
        """Level-normalised log-mels [n, mels] -> the per-frame vectors windows are made of."""
        z = (mels - self.mean) * self.scale
        return (
            np.minimum(np.maximum(z, -5.0, out=z), 5.0, out=z) @ self.projection
        )  # ufuncs: cheaper than clip

    def windows(self, frames: np.ndarray) -> np.ndarray:
        """[n + width - 1, d] consecutive frame vectors -> [n, width * d] inputs."""
        frames = np.ascontiguousarray(frames)
        n, step = len(frames) - self.width + 1, frames.strides[0]
        # Overlapping rows of one buffer: a view, no copy (each window is contiguous). The
        # ndarray constructor makes the same view as ``as_strided`` at a fraction of the cost.
        return np.ndarray(
            (n, self.width * frames.shape[1]), frames.dtype, frames, 0, (step, frames.strides[1])
        )

    def inputs(self, frames: np.ndarray, means: np.ndarray) -> np.ndarray:
        """[n + history - 1, d] consecutive frame vectors and [n, d] running means (each as
        of its window's newest frame) -> [n, inputs]: dense window, pooled taps, mean."""
        n = len(means)
        parts = [self.windows(frames[self.span - self.past :]), means]
        if self.taps:
            # Sums of ``pool`` consecutive frames, added in one fixed order: the same bits
            # whichever push a frame arrived in (streaming stays exact under any chunking).
            p = self.pool
            sums = frames[p - 1 :].copy()
            for i in range(1, p):
                sums += frames[p - 1 - i : len(frames) - i]
            first = np.array([self.span + t - p + 1 for t in self.taps])
            pooled = sums[first[None, :] + np.arange(n)[:, None]].reshape(n, -1)
            pooled *= 1.0 / p
            parts.insert(1, pooled)
        return np.concatenate(parts, axis=1)

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        """[n, inputs] -> [n, visemes] posteriors."""
        if self.conv is not None:
            inputs = self.conv(inputs, self.width)
        if len(inputs) <= _ROWWISE_MAX:
            return self._rowwise(inputs)
        x = inputs.T
        for w, b in self.layers[:-1]:
            x = w @ x
            x += b
            np.maximum(x, 0.0, out=x)
        w, b = self.layers[-1]
        logits = w @ x + b
        logits -= logits.max(axis=0)
        e = np.exp(logits)
        e /= e.sum(axis=0)
        return e.T

    def _rowwise(self, inputs: np.ndarray) -> np.ndarray:
        """``__call__`` for a few frames: a gemv per frame, rows kept contiguous throughout."""
        x, n, matmul = inputs, len(inputs), np.matmul
        for w, b, hidden in self._rowwise_layers:
            h = np.empty((n, len(b)), np.float32)
            for j in range(n):
                matmul(w, x[j], out=h[j])
            h += b
            if hidden:
                np.maximum(h, 0.0, out=h)
            x = h
        x -= x.max(axis=1, keepdims=True)
        np.exp(x, out=x)
        x /= x.sum(axis=1, keepdims=True)
        return x


class _Convolution:
    """A dilated temporal convolution over the window (kernel 3 per layer, ReLU), the
    speaker's mean added to the first layer; its last position feeds the dense layers."""

    def __init__(
        self, kernels: list[np.ndarray], biases: list[np.ndarray], dilations, speaker: np.ndarray
    ) -> None:
        self.kernels = [k.reshape(3, -1, k.shape[1]) for k in kernels]  # [tap, in, out]
        self.biases, self.dilations, self.speaker = biases, [int(d) for d in dilations], speaker

    def __call__(self, inputs: np.ndarray, width: int) -> np.ndarray:
        n, d = len(inputs), self.speaker.shape[0]
        h = inputs[:, : width * d].reshape(n, width, d)
        layers = zip(self.kernels, self.biases, self.dilations, strict=True)
        for i, (k, b, dil) in enumerate(layers):
            m = h.shape[1] - 2 * dil
            out = h[:, :m] @ k[0]
            out += h[:, dil : dil + m] @ k[1]
            out += h[:, 2 * dil :] @ k[2]
            out += b
            if i == 0:
                out += (inputs[:, width * d :] @ self.speaker)[:, None]
            h = np.maximum(out, 0.0, out=out)
        return np.ascontiguousarray(h[:, -1])


def _conv_layers(data) -> _Convolution | None:
    if "conv_dilations" not in data:
        return None
    dilations = np.asarray(data["conv_dilations"]).reshape(-1)
    if not 1 <= len(dilations) <= _MAX_CONV_LAYERS or not all(1 <= d <= 8 for d in dilations):
        raise ValueError(f"convolution dilations {dilations[: _MAX_CONV_LAYERS + 1]} out of range")
    count = range(len(dilations))
    return _Convolution(
        [data[f"conv{i}"].astype(np.float32) for i in count],
        [data[f"conv_b{i}"].astype(np.float32) for i in count],
        dilations,
        data["speaker"].astype(np.float32),
    )
