"""Translation / rotation / scale, composed into 4x4 matrices.

Matrices are numpy float32 arrays in the column-vector convention (``p' = M @ p``);
upload them to GLSL with ``.T.tobytes()`` (GLSL is column-major). Quaternions are
``(x, y, z, w)`` as in glTF. The quaternion and matrix work is pyrr's (single values;
``engine.skeleton`` composes whole rigs in one numpy batch).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyrr

# A 3- or 4-vector: a tuple or list of floats, or a numpy array.
Vector = Sequence[float] | np.ndarray
# pyrr's function without its argument-converting decorator, which inspects the signature
# on every call (about half of a 64-avatar frame on a GPU); it is given an array already.
_FROM_QUATERNION = getattr(
    pyrr.matrix33.create_from_quaternion, "__wrapped__", pyrr.matrix33.create_from_quaternion
)
# The same for the quaternion product (bones turn several times a frame).
_CROSS = getattr(pyrr.quaternion.cross, "__wrapped__", pyrr.quaternion.cross)


def quat_to_matrix(q: Vector) -> np.ndarray:
    """The 3x3 rotation of ``q`` (normalised first; the zero quaternion: identity)."""
    quat = np.asarray(q, np.float64)
    if not np.any(quat):
        return np.eye(3, dtype=np.float32)
    # pyrr's 3x3 from a quaternion is already in the column-vector layout used here.
    return np.asarray(_FROM_QUATERNION(quat / np.linalg.norm(quat)), np.float32)


def quat_from_euler(pitch: float = 0.0, yaw: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """Radians about x (pitch), y (yaw), z (roll), applied roll, then pitch, then yaw."""
    qx = pyrr.quaternion.create_from_x_rotation(pitch)
    qy = pyrr.quaternion.create_from_y_rotation(yaw)
    qz = pyrr.quaternion.create_from_z_rotation(roll)
    return np.asarray(_CROSS(_CROSS(qy, qx), qz), np.float32)


def quat_multiply(a: Vector, b: Vector) -> np.ndarray:
    """The Hamilton product ``a * b``: rotate by ``b``, then by ``a``."""
    return np.asarray(_CROSS(np.asarray(a), np.asarray(b)), np.float32)


def quat_from_matrix(r: np.ndarray) -> np.ndarray:
    """The unit quaternion (x, y, z, w) of a 3x3 rotation matrix."""
    quat = np.asarray(pyrr.quaternion.create_from_matrix(np.asarray(r, np.float64)), np.float64)
    return (quat / np.linalg.norm(quat)).astype(np.float32)


def rotation_of(matrix: np.ndarray) -> np.ndarray:
    """The unit quaternion of a 3x3 or 4x4 matrix's rotation: its scale taken out, and a
    mirror's flip (a proper rotation kept)."""
    linear = np.asarray(matrix, np.float64)[:3, :3]
    scale = np.linalg.norm(linear, axis=0)
    rotation = linear / np.where(scale > 1e-12, scale, 1.0)
    if np.linalg.det(rotation) < 0:
        rotation[:, 0] = -rotation[:, 0]
    return quat_from_matrix(rotation)


def compose(translation, rotation, scale) -> np.ndarray:
    m = np.eye(4, dtype=np.float32)
    m[:3, :3] = quat_to_matrix(rotation) * np.asarray(scale, dtype=np.float32)[None, :]
    m[:3, 3] = translation
    return m


class Transform:
    """Local TRS (or an explicit local matrix) relative to the parent."""

    __slots__ = ("translation", "rotation", "scale", "matrix", "_composed", "_composed_from")

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
        self._composed: np.ndarray | None = None  # the last TRS matrix, and its TRS bytes
        self._composed_from = b""

    def local_matrix(self) -> np.ndarray:
        """The local 4x4 matrix (read-only: it is cached). Composed again only when the
        translation, rotation or scale changed, assigned or edited in place: most entities
        stand still, and composing every one every frame cost a 64-avatar scene 40% of its
        frame."""
        if self.matrix is not None:
            return self.matrix
        key = self.state()
        if self._composed is None or key != self._composed_from:
            self._composed = compose(self.translation, self.rotation, self.scale)
            self._composed.flags.writeable = False
            self._composed_from = key
        return self._composed

    def state(self) -> bytes:
        """Translation, rotation, scale and explicit matrix as bytes: equal bytes, equal
        local matrix (what ``local_matrix`` and ``Skeleton.world`` cache by)."""
        key = self.translation.tobytes() + self.rotation.tobytes() + self.scale.tobytes()
        return key if self.matrix is None else key + self.matrix.tobytes()

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


# Row by row over (n, 4) quaternions (x, y, z, w): pyrr's functions take one a call, and a
# rig's joints are posed a batch at a time (avatarkit.spring_bones).
def quat_multiply_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a * b`` row by row: rotate by ``b``, then by ``a``."""
    ax, ay, az, aw = a.T
    bx, by, bz, bw = b.T
    return np.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        axis=1,
    )


def quat_between_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The shortest rotation taking unit ``a`` onto unit ``b``, row by row (three.js's
    ``Quaternion.setFromUnitVectors``)."""
    r = (a * b).sum(axis=1) + 1.0
    ax, ay, az = a.T
    bx, by, bz = b.T
    q = np.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx, r], axis=1)
    opposite = r < 1e-6  # half a turn: about any axis perpendicular to a
    if opposite.any():
        x, y, z = a[opposite].T
        zero = np.zeros_like(x)
        q[opposite] = np.where(
            (np.abs(x) > np.abs(z))[:, None],
            np.stack([-y, x, zero, zero], axis=1),
            np.stack([zero, -z, y, zero], axis=1),
        )
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def quat_slerp(a: Vector, b: Vector, t: float) -> np.ndarray:
    """From unit ``a`` to unit ``b`` by ``t`` (0..1) the short way round. (pyrr's ``slerp``
    lerps near ``b`` without the sign flip it takes elsewhere, and does not normalise.)"""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = min(max(float(t), 0.0), 1.0)
    dot = float(a @ b)
    if dot < 0.0:
        b, dot = -b, -dot
    if dot > 0.9995:  # nearly the same: a normalised lerp
        out = a + t * (b - a)
    else:
        angle = np.arccos(dot)
        out = (np.sin((1 - t) * angle) * a + np.sin(t * angle) * b) / np.sin(angle)
    return (out / np.linalg.norm(out)).astype(np.float32)
