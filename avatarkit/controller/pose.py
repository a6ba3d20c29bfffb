"""A face pose: what the view applies to the avatar on one rendered frame."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from avatarkit.arkit import NUM_BLENDSHAPES


@dataclass(slots=True)
class FacePose:
    """ARKit-52 ``weights`` (0..1), ``head`` pitch/yaw/roll and ``gaze`` yaw/pitch in radians."""

    weights: np.ndarray = field(default_factory=lambda: np.zeros(NUM_BLENDSHAPES, np.float32))
    head: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    gaze: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))

    def scaled(self, k: float) -> FacePose:
        return FacePose(self.weights * k, self.head * k, self.gaze * k)


def lerp_pose(a: FacePose, b: FacePose, t: float) -> FacePose:
    """``a`` at t=0, ``b`` at t=1."""
    return FacePose(
        a.weights + (b.weights - a.weights) * t,
        a.head + (b.head - a.head) * t,
        a.gaze + (b.gaze - a.gaze) * t,
    )
