"""How far a VRM model's eye bones turn for a gaze: the file's ``lookAt`` range maps.

A VRM says how its eyes follow a gaze of so many degrees, per direction: VRM 1.0
``VRMC_vrm.lookAt`` of type ``bone`` (``rangeMapHorizontalInner``, ``...Outer``,
``...VerticalDown``, ``...VerticalUp``: ``inputMaxValue`` and ``outputScale`` in degrees),
VRM 0.x ``firstPerson`` with ``lookAtTypeName`` ``Bone`` (``lookAtHorizontalInner`` ...:
``xRange`` input degrees, ``yRange`` output degrees, a ``curve`` between them). An eye turns
``curve(min(|gaze|, input) / input) * output``; "inner" is towards the nose (the left eye
looking to the avatar's right), "outer" away from it. Without such maps (no VRM, a
``expression``/``BlendShape`` look, malformed JSON) the eyes turn as far as the gaze.

Pure functions over the file's untrusted JSON, read once by ``BoneRig.find``; ``eye`` runs
each frame on the render thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from engine import GltfAsset

MAX_KEYS = 64  # curve keyframes read from a VRM 0.x map; more is malformed


@dataclass(frozen=True)
class RangeMap:
    """One direction: gaze degrees up to ``input`` -> eye degrees up to ``output``, shaped
    by ``curve`` ((time, value) keys over 0..1, linear between them)."""

    input: float
    output: float
    curve: tuple[tuple[float, float], ...] = ((0.0, 0.0), (1.0, 1.0))

    def __call__(self, radians: float) -> float:
        """The eye's turn (radians, >= 0) for a gaze of ``radians`` (>= 0)."""
        x = min(math.degrees(radians), self.input) / self.input
        times, values = zip(*self.curve, strict=True)
        return math.radians(float(np.interp(x, times, values)) * self.output)


@dataclass(frozen=True)
class LookRange:
    inner: RangeMap
    outer: RangeMap
    down: RangeMap
    up: RangeMap

    def eye(self, side: str, yaw: float, pitch: float) -> tuple[float, float]:
        """(yaw, pitch) radians one eye (``left``/``right``) turns for a gaze (yaw + to the
        avatar's right, pitch + up)."""
        inward = (yaw > 0) == (side == "left")  # the left eye looks right towards the nose
        turn = (self.inner if inward else self.outer)(abs(yaw))
        lift = (self.up if pitch > 0 else self.down)(abs(pitch))
        return math.copysign(turn, yaw), math.copysign(lift, pitch)


def look_range(asset: GltfAsset) -> LookRange | None:
    """The range maps of a VRM file whose eyes look by bones, or None."""
    ext = asset.extensions
    vrm1 = ext.get("VRMC_vrm")
    if isinstance(vrm1, dict):
        look = vrm1.get("lookAt")
        if not isinstance(look, dict) or look.get("type", "bone") != "bone":
            return None
        maps = [_map1(look.get("rangeMap" + k)) for k in _KEYS]
    else:
        vrm0 = ext.get("VRM")
        first = vrm0.get("firstPerson") if isinstance(vrm0, dict) else None
        if not isinstance(first, dict) or first.get("lookAtTypeName", "Bone") != "Bone":
            return None
        maps = [_map0(first.get("lookAt" + k)) for k in _KEYS]
    if any(m is None for m in maps):
        return None
    inner, outer, down, up = (m for m in maps if m is not None)
    return LookRange(inner, outer, down, up)


_KEYS = ("HorizontalInner", "HorizontalOuter", "VerticalDown", "VerticalUp")


def _degrees(value: Any, low: float) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isfinite(value) and low <= value <= 180.0:
            return float(value)
    return None


def _map1(entry: Any) -> RangeMap | None:
    if not isinstance(entry, dict):
        return None
    given, scale = _degrees(entry.get("inputMaxValue"), 1e-4), _degrees(entry.get("outputScale"), 0)
    return None if given is None or scale is None else RangeMap(given, scale)


def _map0(entry: Any) -> RangeMap | None:
    if not isinstance(entry, dict):
        return None
    given, scale = _degrees(entry.get("xRange"), 1e-4), _degrees(entry.get("yRange"), 0)
    if given is None or scale is None:
        return None
    return RangeMap(given, scale, _curve(entry.get("curve")))


def _curve(raw: Any) -> tuple[tuple[float, float], ...]:
    """(time, value) keys of a Unity AnimationCurve written as [t, v, in, out] * n (the
    tangents are not read: linear between keys); a malformed curve is the identity."""
    linear = ((0.0, 0.0), (1.0, 1.0))
    if not isinstance(raw, list) or not 8 <= len(raw) <= 4 * MAX_KEYS or len(raw) % 4:
        return linear
    if not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in raw
    ):
        return linear
    keys = tuple(
        (float(raw[i]), min(max(float(raw[i + 1]), 0.0), 1.0)) for i in range(0, len(raw), 4)
    )
    times = [t for t, _ in keys]
    if times != sorted(times) or len(set(times)) != len(times):
        return linear
    return keys
