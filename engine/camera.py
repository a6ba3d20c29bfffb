"""Perspective camera: look-at, and framing a bounding box (matrices by pyrr)."""

from __future__ import annotations

import math

import numpy as np
import pyrr

from engine.transform import Vector


def _normalize(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


class Camera:
    """A perspective camera placed by ``look_at``; the aspect comes from the frame size."""

    def __init__(
        self,
        fov_y: float = 30.0,
        near: float = 0.05,
        far: float = 100.0,
        position: Vector = (0.0, 0.0, 3.0),
        target: Vector = (0.0, 0.0, 0.0),
        up: Vector = (0.0, 1.0, 0.0),
    ) -> None:
        self.fov_y = float(fov_y)  # degrees, vertical
        self.near = float(near)
        self.far = float(far)
        self.position = np.array(position, dtype=np.float32)
        self.target = np.array(target, dtype=np.float32)
        self.up = np.array(up, dtype=np.float32)
        self._view: tuple[bytes, np.ndarray] | None = None  # (placement it was made for, view)
        self._projection: tuple[tuple[float, ...], np.ndarray] | None = None  # the same

    def look_at(
        self,
        position: Vector,
        target: Vector,
        up: Vector = (0.0, 1.0, 0.0),
    ) -> Camera:
        self.position = np.array(position, dtype=np.float32)
        self.target = np.array(target, dtype=np.float32)
        self.up = np.array(up, dtype=np.float32)
        return self

    def frame_bounds(
        self,
        bounds_min: Vector,
        bounds_max: Vector,
        direction: Vector = (0.0, 0.0, 1.0),
        aspect: float = 16 / 9,
        margin: float = 1.1,
    ) -> Camera:
        """Place the camera along ``direction`` from the box centre so the whole box fits.

        Uses the bounding sphere, so the result holds for any view direction; ``margin``
        > 1 leaves some room around it. Near/far are adapted to the distance.
        """
        lo = np.asarray(bounds_min, dtype=np.float32)
        hi = np.asarray(bounds_max, dtype=np.float32)
        center = (lo + hi) / 2
        radius = max(float(np.linalg.norm(hi - lo)) / 2, 1e-4) * margin
        half_fov = math.radians(self.fov_y) / 2
        half_fov = min(half_fov, math.atan(math.tan(half_fov) * aspect))  # the tighter axis
        distance = radius / math.sin(half_fov)
        d = _normalize(np.asarray(direction, dtype=np.float32))
        self.look_at(center + d * distance, center, self.up)
        self.near = max(distance - radius * 2, distance * 0.01)
        self.far = distance + radius * 2
        return self

    def view_matrix(self) -> np.ndarray:
        """World -> camera (column vectors). Looking straight along ``up`` or at the
        camera's own position has no defined view: the rows left undefined are zeros.

        Made again only when the placement changed (the arrays may be edited in place):
        pyrr's look-at costs about 160 us, a frame's share of a render loop's budget."""
        key = self.position.tobytes() + self.target.tobytes() + self.up.tobytes()
        if self._view is None or self._view[0] != key:
            self._view = (key, self._make_view())
        return self._view[1].copy()

    def _make_view(self) -> np.ndarray:
        forward = self.target - self.position
        if not np.any(np.cross(forward, self.up)):
            return self._degenerate_view()
        # pyrr builds row-vector matrices: the transpose of ours.
        view = pyrr.matrix44.create_look_at(self.position, self.target, self.up)
        return np.ascontiguousarray(np.asarray(view, np.float32).T)

    def _degenerate_view(self) -> np.ndarray:
        f = _normalize(self.target - self.position)
        m = np.eye(4, dtype=np.float32)
        m[0, :3], m[1, :3], m[2, :3] = 0.0, 0.0, -f
        m[:3, 3] = -m[:3, :3] @ self.position
        return m

    def projection_matrix(self, aspect: float) -> np.ndarray:
        """Camera -> clip (column vectors); made again only when a parameter changed."""
        key = (float(self.fov_y), float(aspect), float(self.near), float(self.far))
        if self._projection is None or self._projection[0] != key:
            projection = pyrr.matrix44.create_perspective_projection(*key)
            matrix = np.ascontiguousarray(np.asarray(projection, np.float32).T)
            self._projection = (key, matrix)
        return self._projection[1].copy()
