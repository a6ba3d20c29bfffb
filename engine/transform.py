"""Translation / rotation / scale, composed into 4x4 matrices.

Matrices are numpy float32 arrays in the column-vector convention (``p' = M @ p``);
upload them to GLSL with ``.T.tobytes()`` (GLSL is column-major). Quaternions are
``(x, y, z, w)`` as in glTF.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# A 3- or 4-vector: a tuple or list of floats, or a numpy array.
Vector = Sequence[float] | np.ndarray


def quat_to_matrix(q: Vector) -> np.ndarray:
    x, y, z, w = (float(v) for v in q)
    n = x * x + y * y + z * z + w * w
    s = 2.0 / n if n > 0 else 0.0
    return np.array(
        [
            [1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
            [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
            [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)],
        ],
        dtype=np.float32,
    )


def quat_from_euler(pitch: float = 0.0, yaw: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """Radians about x (pitch), y (yaw), z (roll), applied roll, then pitch, then yaw."""
    cx, sx = np.cos(pitch / 2), np.sin(pitch / 2)
    cy, sy = np.cos(yaw / 2), np.sin(yaw / 2)
    cz, sz = np.cos(roll / 2), np.sin(roll / 2)
    qx = np.array([sx, 0, 0, cx])
    qy = np.array([0, sy, 0, cy])
    qz = np.array([0, 0, sz, cz])
    return quat_multiply(quat_multiply(qy, qx), qz).astype(np.float32)


def quat_multiply(a: Vector, b: Vector) -> np.ndarray:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        dtype=np.float32,
    )


def quat_from_matrix(r: np.ndarray) -> np.ndarray:
    """The unit quaternion (x, y, z, w) of a 3x3 rotation matrix."""
    m = np.asarray(r, np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    quat = np.array(q)
    return (quat / np.linalg.norm(quat)).astype(np.float32)


def compose(translation, rotation, scale) -> np.ndarray:
    m = np.eye(4, dtype=np.float32)
    m[:3, :3] = quat_to_matrix(rotation) * np.asarray(scale, dtype=np.float32)[None, :]
    m[:3, 3] = translation
    return m


class Transform:
    """Local TRS (or an explicit local matrix) relative to the parent."""

    __slots__ = ("translation", "rotation", "scale", "matrix")

    def __init__(
        self,
        translation: Vector = (0.0, 0.0, 0.0),
        rotation: Vector = (0.0, 0.0, 0.0, 1.0),
        scale: Vector = (1.0, 1.0, 1.0),
        matrix: np.ndarray | None = None,
    ) -> None:
        self.translation = np.array(translation, dtype=np.float32)
        self.rotation = np.array(rotation, dtype=np.float32)
        self.scale = np.array(scale, dtype=np.float32)
        # An explicit matrix (glTF ``node.matrix``) wins over TRS when set.
        self.matrix = None if matrix is None else np.array(matrix, dtype=np.float32)

    def local_matrix(self) -> np.ndarray:
        if self.matrix is not None:
            return self.matrix
        return compose(self.translation, self.rotation, self.scale)

    def to_trs(self) -> None:
        """Replace an explicit matrix by its translation, rotation and scale (shear, if
        any, is lost), so ``rotation`` can be edited; a TRS transform is left as is."""
        if self.matrix is None:
            return
        m = self.matrix.astype(np.float64)
        scale = np.linalg.norm(m[:3, :3], axis=0)
        if np.linalg.det(m[:3, :3]) < 0:
            scale[0] = -scale[0]  # a mirror: keep the rotation proper
        if np.all(np.abs(scale) > 1e-12):
            self.rotation = quat_from_matrix(m[:3, :3] / scale[None, :])
        self.translation = m[:3, 3].astype(np.float32)
        self.scale = scale.astype(np.float32)
        self.matrix = None

    def copy(self) -> Transform:
        return Transform(self.translation, self.rotation, self.scale, self.matrix)

    def __repr__(self) -> str:
        t, r, s = self.translation.tolist(), self.rotation.tolist(), self.scale.tolist()
        return f"Transform(t={t}, r={r}, s={s})"
