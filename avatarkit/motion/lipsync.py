"""The streaming audio-to-motion model the Motion Server runs per session.

PCM in (any supported rate, any chunking) -> 10 ms log-mel frames at the input's own
rate -> level normalisation -> viseme posteriors from a window of frames (``past``
behind, ``ahead`` in front) -> articulation -> smoothed ARKit face + head + eyes at the
motion frame rate. Frame ``i`` shows time ``i / fps``; it is ready once the audio up to
``i / fps + lookahead_s`` has arrived.

Per-push cost matters (a server core holds 100+ sessions): a push only buffers bytes
until the next frame can be completed, then one vectorised pass handles every feature
frame that became computable.
"""

from __future__ import annotations

import numpy as np

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.motion.face import Coarticulation, FaceAnimator
from avatarkit.motion.features import (
    LOG_FLOOR,
    NUM_MELS,
    QUIET_LEVEL,
    LevelNorm,
    SpeechMean,
    feature_spec,
)
from avatarkit.motion.frame import MotionFrame
from avatarkit.motion.model import VisemeNet
from avatarkit.motion.stream import check_fps, check_sample_rate
from avatarkit.motion.visemes import ARTICULATION, VISEME_INDEX

_SIL = VISEME_INDEX["sil"]
_NUM_ART = ARTICULATION.shape[1]
_net: VisemeNet | None = None


def shared_net() -> VisemeNet:
    """The model weights, loaded once per process and shared (read-only) by all streams."""
    global _net
    if _net is None:
        _net = VisemeNet()
    return _net


class LipSyncStream:
    def __init__(
        self, sample_rate: int = 16000, fps: int = 30, seed: int = 0, net: VisemeNet | None = None
    ) -> None:
        self.sample_rate, self.fps = check_sample_rate(sample_rate), check_fps(fps)
        self.net = net or shared_net()
        self._spec = feature_spec(sample_rate)
        self._norm = LevelNorm()
        self._speech_mean = SpeechMean(self.net.mean)
        self._coarticulate = Coarticulation()
        self._face = FaceAnimator(fps, seed)
        self._raw = bytearray()  # received bytes not yet analysed (an odd byte waits here too)
        self._buf = np.zeros(self._spec.half, np.float32)  # samples from stream position -half
        self._buf_start = -self._spec.half
        self._hop = (
            sample_rate // 100 if sample_rate % 100 == 0 else 0
        )  # float32 samples per feature frame
        self._bytes = 0  # bytes received
        self._received = 0  # whole samples received
        self._next_feature = 0
        # Normalised frames still needed by later windows; the stream starts as if
        # preceded by silence (the training corpus pads the same way).
        start = np.full((1, NUM_MELS), np.log(LOG_FLOOR) - QUIET_LEVEL, np.float32)
        self._window_rows = np.repeat(
            self.net.window_vectors(start, self.net.mean[None]), self.net.span, axis=0
        )
        # The running speech mean after each of those frames (the prior before any audio).
        self._window_means = np.repeat(
            self.net.frame_vectors(self.net.mean[None]), self.net.span, axis=0
        )
        self._levels = np.zeros(0, np.float32)  # loudness of frames still waiting for a posterior
        # Per feature frame from ``_track_base`` on: articulation, speech probability, loudness.
        self._track = np.zeros((0, _NUM_ART + 2), np.float32)
        self._track_base = 0
        self._next_frame = 0
        self._wake = self._samples_for(0)
        self._done = False

    @property
    def lookahead_s(self) -> float:
        """Audio needed past a frame's own time before it is emitted (worst case over frames)."""
        interp = 0.0 if 100 % self.fps == 0 else 0.01  # frames falling between feature frames
        return (
            interp
            + self.net.ahead * 0.01
            + (self._spec.window - self._spec.half) / self.sample_rate
        )

    def push(self, pcm: bytes) -> list[MotionFrame]:
        if self._done:
            raise AvatarKitError(ErrorCode.INVALID_REQUEST, "stream already finished")
        self._raw += pcm
        self._bytes += len(pcm)
        self._received = self._bytes // 2
        if self._received < self._wake:  # the next frame cannot complete yet: just buffer
            return []
        self._take_raw()
        return self._advance(self._received)

    def finish(self) -> list[MotionFrame]:
        if self._done:
            raise AvatarKitError(ErrorCode.INVALID_REQUEST, "stream already finished")
        self._done = True
        self._take_raw()
        total = -(-self._received * self.fps // self.sample_rate)  # ceil
        if total <= self._next_frame:
            return []
        # Silence after the end completes the last frames' windows.
        need = self._samples_for(total - 1) - self._received
        self._buf = np.concatenate([self._buf, np.zeros(max(0, need), np.float32)])
        return self._advance(self._received + max(0, need), total=total)

    # -- internals ---------------------------------------------------------------

    def _samples_for(self, frame: int) -> int:
        """Samples frame ``frame`` needs: its posterior ``ceil(frame * 100 / fps)`` looks
        ``ahead``."""
        centre = -(-frame * 100 // self.fps)
        return self._spec.needed(centre + self.net.ahead)

    def _take_raw(self) -> None:
        cut = len(self._raw) & ~1
        if cut:
            samples = np.frombuffer(self._raw, dtype="<i2", count=cut // 2).astype(np.float32)
            samples *= 1.0 / 32768.0
            self._buf = np.concatenate([self._buf, samples])
            del self._raw[:cut]

    def _advance(self, available: int, total: int | None = None) -> list[MotionFrame]:
        self._analyse(available)
        ready = self._track_base + len(self._track)  # posteriors known for feature frames < ready
        count = (
            ((ready - 1) * self.fps) // 100 + 1 if ready > 0 else 0
        )  # frame i needs ceil(i*100/fps)
        limit = -(-self._received * self.fps // self.sample_rate)
        count = total if total is not None else min(count, limit)
        if count <= self._next_frame:
            return []
        frames = self._emit(range(self._next_frame, count))
        self._wake = self._samples_for(self._next_frame)
        return frames

    def _analyse(self, available: int) -> None:
        """Features and posteriors for every feature frame whose window is complete."""
        spec, net = self._spec, self.net
        # Feature frames k with needed(k) <= available, i.e. floor(k * rate / 100) <= spare.
        spare = available - (spec.window - spec.half)
        k1 = (100 * (spare + 1) - 1) // self.sample_rate + 1 if spare >= 0 else 0
        if k1 <= self._next_feature:
            return
        if self._hop:  # a whole number of samples per 10 ms: the windows are a strided view
            first = (self._next_feature * self.sample_rate) // 100 - spec.half - self._buf_start
            shape, strides = (k1 - self._next_feature, spec.window), (self._hop * 4, 4)
            windows = np.ndarray(shape, np.float32, self._buf, first * 4, strides)
        else:  # 22050 Hz: 220.5 samples per 10 ms, gather the windows
            starts = (
                (np.arange(self._next_feature, k1) * self.sample_rate) // 100
                - spec.half
                - self._buf_start
            )
            windows = self._buf[starts[:, None] + spec.offsets]
        mels = self._norm(spec.log_mel(windows))
        new_levels = mels.sum(axis=1) * (1.0 / mels.shape[1])
        # Frames and running means through one projection call (row-wise: same numbers).
        vectors = net.frame_vectors(np.concatenate([mels, self._speech_mean(mels, new_levels)]))
        n_new = len(mels)
        rows = vectors[:n_new] - vectors[n_new:] if net.speaker_norm else vectors[:n_new]
        window_means = np.concatenate([self._window_means, vectors[n_new:]])
        levels = np.concatenate([self._levels, new_levels])
        self._next_feature = k1
        drop = (
            (k1 * self.sample_rate) // 100 - spec.half - self._buf_start
        )  # no later window needs these
        self._buf, self._buf_start = self._buf[drop:], self._buf_start + drop
        window_rows = np.concatenate([self._window_rows, rows])
        n_out = len(window_rows) - net.history + 1
        if n_out > 0:
            # Each window also sees the speaker's running mean as of its newest frame.
            post = net(net.inputs(window_rows, window_means[net.history - 1 :]))
            track = np.empty((n_out, _NUM_ART + 2), np.float32)
            speech = 1.0 - post[:, _SIL]
            track[:, :_NUM_ART] = self._coarticulate(post @ ARTICULATION, speech)
            track[:, _NUM_ART] = speech
            track[:, _NUM_ART + 1] = levels[:n_out]
            self._track = np.concatenate([self._track, track])
        self._window_rows = window_rows[max(n_out, 0) :]
        self._window_means = window_means[max(n_out, 0) :]
        self._levels = levels[max(n_out, 0) :]

    def _emit(self, indices: range) -> list[MotionFrame]:
        # Positions in feature frames, in Python floats (a push brings one to a few frames;
        # the float64 arithmetic is the same as numpy's, so are the results).
        fps, base, last = self.fps, self._track_base, len(self._track) - 1
        pos = [i * 100 / fps - base for i in indices]
        whole = [int(p) for p in pos]
        frac = np.array([p - w for p, w in zip(pos, whole, strict=True)], np.float32)[:, None]
        lo = [min(w, last) for w in whole]
        hi = [min(w + 1, last) for w in whole]
        track = self._track[lo] * (1 - frac) + self._track[hi] * frac
        weights, head, gaze = self._face.animate(
            track[:, :_NUM_ART], track[:, _NUM_ART], track[:, _NUM_ART + 1]
        )
        frames = [MotionFrame(i, fps, weights[j], head[j], gaze[j]) for j, i in enumerate(indices)]
        self._next_frame = indices[-1] + 1
        # Forget posteriors no later frame interpolates from.
        keep_from = min(self._next_frame * 100 // self.fps - self._track_base, len(self._track) - 1)
        if keep_from > 0:
            self._track = self._track[keep_from:]
            self._track_base += keep_from
        return frames
