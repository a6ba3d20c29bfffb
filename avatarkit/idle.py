"""Idle animation: breathing, blinks, saccades and a small head drift.

A pure function of time (plus a seed), so any frame can be sampled in any order and an
offline render is deterministic. It plays whenever no speech does and keeps blinking
under speech (the controller blends the two).
"""

from __future__ import annotations

import math

import numpy as np

from avatarkit.arkit import ARKIT_INDEX
from avatarkit.controller.pose import FacePose

BREATH_PERIOD = 4.2  # seconds per breath
BREATH_PITCH = 0.012  # radians of head nod per breath
BLINK_INTERVAL = (2.0, 6.0)  # seconds between blinks (uniform)
BLINK_CLOSE, BLINK_OPEN = 0.07, 0.13  # seconds to close, to reopen
SACCADE_INTERVAL = (0.6, 2.5)  # seconds between gaze jumps
SACCADE_RANGE = (0.12, 0.06)  # max gaze yaw, pitch in radians
SACCADE_TIME = 0.04  # seconds a gaze jump takes
DRIFT = (0.02, 0.035, 0.012)  # head pitch, yaw, roll drift amplitudes in radians
SCHEDULE_SECONDS = 3600.0  # precomputed event schedule length (it repeats after that)

_BLINK = (ARKIT_INDEX["eyeBlinkLeft"], ARKIT_INDEX["eyeBlinkRight"])
_LOOK = {
    name: ARKIT_INDEX[name]
    for name in (
        "eyeLookOutLeft", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutRight",
        "eyeLookUpLeft", "eyeLookUpRight", "eyeLookDownLeft", "eyeLookDownRight",
    )
}  # fmt: skip


def _schedule(rng: np.random.Generator, interval: tuple[float, float]) -> np.ndarray:
    gaps = rng.uniform(*interval, size=int(SCHEDULE_SECONDS / interval[0]) + 1)
    times = np.cumsum(gaps)
    return times[times < SCHEDULE_SECONDS]


def blink_amount(since: float) -> float:
    """Eyelid closure ``since`` seconds after a blink began (0 open .. 1 closed)."""
    if since < 0 or since > BLINK_CLOSE + BLINK_OPEN:
        return 0.0
    if since < BLINK_CLOSE:
        return math.sin(0.5 * math.pi * since / BLINK_CLOSE)
    return math.cos(0.5 * math.pi * (since - BLINK_CLOSE) / BLINK_OPEN)


class IdleAnimator:
    """``sample(t)`` gives the idle face at ``t`` seconds; ``enabled=False`` keeps it still."""

    def __init__(self, seed: int = 0, enabled: bool = True) -> None:
        rng = np.random.default_rng(seed)
        self.enabled = enabled
        self._blinks = _schedule(rng, BLINK_INTERVAL)
        self._saccades = _schedule(rng, SACCADE_INTERVAL)
        self._targets = rng.uniform(-1, 1, size=(len(self._saccades) + 1, 2)) * SACCADE_RANGE
        self._phase = rng.uniform(0, 2 * math.pi, size=6)

    def sample(self, t: float) -> FacePose:
        pose = FacePose()
        if not self.enabled:
            return pose
        # Only the event schedules repeat; the sinusoids below run on unwrapped time
        # (wrapping them too made the head pop once per SCHEDULE_SECONDS).
        scheduled = t % SCHEDULE_SECONDS
        self._blink(pose, scheduled)
        self._saccade(pose, scheduled)
        p = self._phase
        breath = math.sin(2 * math.pi * t / BREATH_PERIOD + p[0])
        pose.head[0] = BREATH_PITCH * breath + DRIFT[0] * math.sin(0.21 * t + p[1])
        pose.head[1] = DRIFT[1] * (
            0.7 * math.sin(0.13 * t + p[2]) + 0.3 * math.sin(0.31 * t + p[3])
        )
        pose.head[2] = DRIFT[2] * math.sin(0.17 * t + p[4])
        return pose

    def _blink(self, pose: FacePose, t: float) -> None:
        i = np.searchsorted(self._blinks, t, side="right") - 1
        if i >= 0:
            amount = blink_amount(t - self._blinks[i])
            pose.weights[list(_BLINK)] = amount

    def _saccade(self, pose: FacePose, t: float) -> None:
        i = int(np.searchsorted(self._saccades, t, side="right"))
        target = self._targets[i]
        if i > 0:  # ease from the previous fixation over a short jump
            a = min(1.0, (t - self._saccades[i - 1]) / SACCADE_TIME)
            target = self._targets[i - 1] + (target - self._targets[i - 1]) * a
        pose.gaze[:] = target
        apply_gaze(pose)


def apply_gaze(pose: FacePose) -> None:
    """Mirror ``pose.gaze`` (yaw right +, pitch up +) into the eyeLook* blendshapes."""
    yaw, pitch = float(pose.gaze[0]), float(pose.gaze[1])
    w, k = pose.weights, 1 / 0.5  # 0.5 rad of gaze is a full eyeLook weight
    right, left = max(0.0, yaw) * k, max(0.0, -yaw) * k
    w[_LOOK["eyeLookOutRight"]] = w[_LOOK["eyeLookInLeft"]] = min(1.0, right)
    w[_LOOK["eyeLookOutLeft"]] = w[_LOOK["eyeLookInRight"]] = min(1.0, left)
    up, down = max(0.0, pitch) * k, max(0.0, -pitch) * k
    w[_LOOK["eyeLookUpLeft"]] = w[_LOOK["eyeLookUpRight"]] = min(1.0, up)
    w[_LOOK["eyeLookDownLeft"]] = w[_LOOK["eyeLookDownRight"]] = min(1.0, down)
