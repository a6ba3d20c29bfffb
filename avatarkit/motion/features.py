"""Streaming log-mel features computed at the input's own sample rate.

Instead of resampling, each rate gets its own FFT size and mel filterbank (50-7600 Hz,
so 16 kHz and up see the same bands; at 8 kHz the bands above Nyquist read as
silence, which training covers by also feeding 8 kHz audio). Feature frame ``k`` is
centred on time ``k * HOP_S`` and needs samples up to ``k * HOP_S + WINDOW_S / 2``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

HOP_S = 0.010  # one feature frame every 10 ms
WINDOW_S = 0.025
NUM_MELS = 40
MEL_LO_HZ, MEL_HI_HZ = 50.0, 7600.0
LOG_FLOOR = 1e-10
_ROWWISE_MAX = 3  # up to this many frames, one matrix-vector product per frame (OpenBLAS's
# gemm costs about twice two gemvs for [2, 257] x [257, 40])


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


class FeatureSpec:
    """Window, FFT and filterbank for one sample rate (shared by all streams at that rate)."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.window = int(round(WINDOW_S * sample_rate))
        self.half = self.window // 2
        self.n_fft = 1 << (self.window - 1).bit_length()
        self.hann = np.hanning(self.window).astype(np.float32)
        self.offsets = np.arange(self.window)  # sample offsets within a window, for gathers
        bins = np.fft.rfftfreq(self.n_fft, 1.0 / sample_rate)
        edges = _mel_to_hz(np.linspace(_hz_to_mel(MEL_LO_HZ), _hz_to_mel(MEL_HI_HZ), NUM_MELS + 2))
        lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
        tri = np.maximum(0.0, np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)))
        # Parseval scaling: a band reads the signal power inside it, whatever the rate/FFT size.
        scale = 2.0 / (self.n_fft * float(np.sum(self.hann.astype(np.float64) ** 2)))
        self.fbank = (tri.T * scale).astype(np.float32)  # [bins, mels]
        self.fbank_t = np.ascontiguousarray(
            self.fbank.T
        )  # [mels, bins], for matrix-vector products

    def frame_start(self, k: np.ndarray) -> np.ndarray:
        """First sample of feature frame ``k``'s window, in a buffer that starts with ``half``
        zeros."""
        return (np.asarray(k) * self.sample_rate) // 100

    def needed(self, k: int) -> int:
        """Input samples (from the stream's start) that feature frame ``k`` needs."""
        return (k * self.sample_rate) // 100 + self.window - self.half

    def log_mel(self, frames: np.ndarray) -> np.ndarray:
        """[n, window] float32 samples in -1..1 -> [n, NUM_MELS] natural-log mel energies."""
        spectrum = np.fft.rfft(frames * self.hann, n=self.n_fft, axis=1)  # complex64 for float32 in
        if spectrum.dtype == np.complex64:  # re², im² interleaved: one square, one add, no casts
            squares = spectrum.view(np.float32)
            np.multiply(squares, squares, out=squares)
            power = squares[:, 0::2] + squares[:, 1::2]
        else:
            power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
        if len(power) <= _ROWWISE_MAX:  # a push's 1-3 frames: gemv per frame beats a small gemm
            bands = np.empty((len(power), NUM_MELS), np.float32)
            for j in range(len(power)):
                np.matmul(self.fbank_t, power[j], out=bands[j])
        else:
            bands = power @ self.fbank
        bands += LOG_FLOOR
        return np.log(bands, out=bands)


@lru_cache(maxsize=16)
def feature_spec(sample_rate: int) -> FeatureSpec:
    return FeatureSpec(sample_rate)


def log_mel_offline(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """All feature frames of a whole clip (training and tests; the stream computes the same)."""
    spec = feature_spec(sample_rate)
    count = int(np.ceil(len(audio) * 100 / sample_rate))
    padded = np.concatenate(
        [
            np.zeros(spec.half, np.float32),
            audio.astype(np.float32),
            np.zeros(spec.window, np.float32),
        ]
    )
    starts = spec.frame_start(np.arange(count))
    return spec.log_mel(padded[starts[:, None] + np.arange(spec.window)])


PEAK_DECAY = 0.004  # ln-units per frame the running speech peak falls (about 1.7 dB/s)
QUIET_LEVEL = -16.0  # ln band power: anything quieter counts as silence, never as the peak


class LevelNorm:
    """Gain-invariant features: each frame's log-mels relative to a slowly decaying peak level.

    ``peak[k] = max_j<=k (level[j] - PEAK_DECAY * (k - j))`` is a cumulative max of
    ``level[j] + PEAK_DECAY * j``, so a whole batch is one vectorised pass and any chunking
    gives identical results.
    """

    def __init__(self) -> None:
        self._count = 0
        self._best = QUIET_LEVEL  # max of level[j] + PEAK_DECAY * j so far

    def __call__(self, mels: np.ndarray) -> np.ndarray:
        if len(mels) == 0:
            return mels
        ramp = PEAK_DECAY * np.arange(self._count, self._count + len(mels), dtype=np.float64)
        tilted = mels.sum(axis=1) * (1.0 / mels.shape[1]) + ramp
        tilted[0] = max(tilted[0], self._best)  # max is exact: same as accumulating from best
        np.maximum.accumulate(tilted, out=tilted)
        self._best = float(tilted[-1])
        self._count += len(mels)
        peak = np.maximum(tilted - ramp, QUIET_LEVEL)
        return mels - peak[:, None].astype(np.float32)


SPEECH_LEVEL = -2.5  # ln: frames this close to the running peak count as speech
SPEECH_PRIOR_FRAMES = 50.0  # the prior (a typical voice) weighs like half a second of speech


class SpeechMean:
    """Running mean of the speech frames so far, starting from a prior: the voice's average
    spectrum, which lets the model calibrate vowels to the speaker (streaming, exact under
    any chunking: cumulative sums carried across calls)."""

    def __init__(self, prior: np.ndarray) -> None:
        self._sum = prior.astype(np.float64) * SPEECH_PRIOR_FRAMES
        self._count = SPEECH_PRIOR_FRAMES

    def __call__(self, mels: np.ndarray, levels: np.ndarray | None = None) -> np.ndarray:
        """Level-normalised log-mels [n, mels] -> the running mean after each frame [n, mels].

        ``levels``: ``mels.sum(axis=1) / mels.shape[1]`` when the caller already has it.
        """
        if len(mels) == 0:
            return mels
        if levels is None:
            levels = mels.sum(axis=1) * (1.0 / mels.shape[1])
        speech = (levels > SPEECH_LEVEL).astype(np.float64)
        sums = (mels * speech[:, None]).cumsum(axis=0)  # the method: no np.cumsum dispatch cost
        sums += self._sum
        counts = speech.cumsum()
        counts += self._count
        self._sum, self._count = sums[-1].copy(), float(counts[-1])
        return (sums / counts[:, None]).astype(np.float32)
