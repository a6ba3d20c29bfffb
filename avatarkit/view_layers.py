"""The app's layers over speech and idle, composed per frame by ``AvatarView`` (render
thread): an expression held at least at its weights, with cross-fades, and a look target
the eyes and the head node follow. Each takes one immutable target from any thread."""

from __future__ import annotations

import math

import numpy as np

from avatarkit.arkit import ARKIT_INDEX, NUM_BLENDSHAPES
from avatarkit.controller import FacePose
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.idle import apply_gaze

EYE_FOLLOW = 18.0  # 1/s: eyes reach a new target in about 0.15 s (exponential)
HEAD_FOLLOW = 5.0  # 1/s: the head follows more slowly, about 0.5 s
_EYE_LOOKS = [i for name, i in ARKIT_INDEX.items() if name.startswith("eyeLook")]


def finite(value: float, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise AvatarKitError(
            ErrorCode.INVALID_REQUEST, f"{what} must be a number, got {value!r}"
        ) from None
    if not math.isfinite(number):
        raise AvatarKitError(ErrorCode.INVALID_REQUEST, f"{what} must be finite, got {value!r}")
    return number


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


class ExpressionLayer:
    """Cross-fades between expression targets; each channel shows at least its weight."""

    def __init__(self) -> None:
        self.target: tuple[np.ndarray, float] | None = None  # set by set_expression (any thread)
        self._seen: tuple[np.ndarray, float] | None = None
        self._from = np.zeros(NUM_BLENDSHAPES, np.float32)
        self._to = self._from
        self._now = self._from
        self._progress = 1.0  # of the current fade
        self._fade = 0.0

    def apply(self, pose: FacePose, dt: float) -> None:
        target = self.target
        if target is not None and target is not self._seen:  # a new request: fade from now
            self._seen = target
            self._from, (self._to, self._fade) = self._now, target
            self._progress = 0.0
        if self._progress < 1.0:
            self._progress = 1.0 if self._fade <= 0 else min(1.0, self._progress + dt / self._fade)
            self._now = self._from + (self._to - self._from) * _smoothstep(self._progress)
        if self._now.any():
            np.maximum(pose.weights, self._now, out=pose.weights)

    def shown(self) -> dict[str, float]:
        return {name: float(self._now[i]) for name, i in ARKIT_INDEX.items() if self._now[i] > 0}


class LookLayer:
    """Eyes and head follow a look target; released, the head returns and the eyes hand
    back to the underlying (idle or speech) gaze."""

    def __init__(self) -> None:
        self.target: tuple[float, float, float] | None = None  # yaw, pitch, head share
        self._eyes = np.zeros(2, np.float32)  # yaw, pitch the eyes add (look convention)
        self._head = np.zeros(2, np.float32)  # yaw, pitch the head node adds
        self._weight = 0.0  # how much the eyes follow us rather than the face's own gaze

    def apply(self, pose: FacePose, dt: float) -> None:
        target = self.target
        eye_k, head_k = 1.0 - math.exp(-EYE_FOLLOW * dt), 1.0 - math.exp(-HEAD_FOLLOW * dt)
        if target is not None:
            yaw, pitch, share = target
            look = np.array([yaw, pitch], np.float32)
            self._eyes += (look * (1 - share) - self._eyes) * eye_k
            self._head += (look * share - self._head) * head_k
            self._weight += (1.0 - self._weight) * eye_k
        else:
            self._head -= self._head * head_k
            self._weight -= self._weight * eye_k
        if self._weight > 1e-3:
            # Eye gaze yaw is ARKit's (+ towards the avatar's own right): mirror ours.
            eyes = FacePose(
                pose.weights.copy(), gaze=np.array([-self._eyes[0], self._eyes[1]], np.float32)
            )
            apply_gaze(eyes)
            w = self._weight
            pose.weights[_EYE_LOOKS] += (eyes.weights[_EYE_LOOKS] - pose.weights[_EYE_LOOKS]) * w
            pose.gaze += (eyes.gaze - pose.gaze) * w
        if np.abs(self._head).max() > 1e-5:
            pose.head[0] -= self._head[1]  # head pitch + nods down; ours + looks up
            pose.head[1] += self._head[0]
