"""One motion frame: what the face does at one instant of an utterance's timeline."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from avatarkit.arkit import NUM_BLENDSHAPES


def _zeros(n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.float32)


@dataclass(slots=True)
class MotionFrame:
    """Frame ``index`` covers time ``index / fps`` seconds from the utterance's first sample.

    ``weights``: float32[52] in 0..1, ARKit order (:data:`avatarkit.arkit.ARKIT_NAMES`).
    ``head``: float32[3] pitch, yaw, roll in radians. ``gaze``: float32[2] yaw, pitch in
    radians (eyes relative to head).
    """

    index: int
    fps: int
    weights: np.ndarray = field(default_factory=lambda: _zeros(NUM_BLENDSHAPES))
    head: np.ndarray = field(default_factory=lambda: _zeros(3))
    gaze: np.ndarray = field(default_factory=lambda: _zeros(2))

    @property
    def time(self) -> float:
        return self.index / self.fps
