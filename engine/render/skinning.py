"""The joint palette on the GPU: one uniform buffer per skinned node instance, written
once per frame on the render thread (``ModelRenderer``), bound by ``Renderer`` for each
skinned draw. A uniform block, not a float texture: on llvmpipe a block read is a plain
load where a texel fetch goes through the sampler path, and 256 joints fit the 16 KiB
any GL 3.3 guarantees.

Also the screen-area bound of a skinned primitive (for the post pass): each skinned vertex
is a convex combination of its joints' transforms of it (plus the identity), so the union
of the rest box moved by each joint it uses bounds it.
"""

from __future__ import annotations

import moderngl
import numpy as np

from engine.render.shaders import MAX_JOINTS

# Which of (lo, hi) each of a box's 8 corners takes, per axis.
_CORNERS = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], bool)


class JointPalette:
    """A uniform buffer of ``MAX_JOINTS`` x 3 vec4 rows (engine.skeleton.palette)."""

    SIZE = MAX_JOINTS * 3 * 16

    def __init__(self, ctx: moderngl.Context) -> None:
        self.buffer = ctx.buffer(reserve=self.SIZE)
        self.rows = np.zeros((0, 3, 4), np.float32)  # the palette as last set (CPU copy)
        self._last = b""

    def set(self, rows: np.ndarray) -> None:
        """``rows``: (J, 3, 4) float32, J <= MAX_JOINTS (the loader refuses more)."""
        data = np.ascontiguousarray(rows[:MAX_JOINTS], np.float32).tobytes()
        if data != self._last:  # a still pose (idle off, paused) writes nothing
            self.buffer.write(data)
            self._last = data
        self.rows = rows

    def bounds(self, box: np.ndarray, used: np.ndarray) -> np.ndarray:
        """The (2, 3) box holding ``box`` (model-space rest bounds) skinned by the joints
        ``used`` (and by the identity, for vertices bound to none)."""
        corners = np.where(_CORNERS, box[1], box[0])  # (8, 3)
        rows = self.rows[used[used < len(self.rows)]].astype(np.float64)  # (J, 3, 4)
        moved = rows[:, None, :, :3] @ corners[None, :, :, None]  # (J, 8, 3, 1)
        points = (moved[..., 0] + rows[:, None, :, 3]).reshape(-1, 3)
        lo = np.minimum(points.min(axis=0, initial=np.inf), corners.min(axis=0))
        hi = np.maximum(points.max(axis=0, initial=-np.inf), corners.max(axis=0))
        return np.array([lo, hi])

    def release(self) -> None:
        self.buffer.release()
