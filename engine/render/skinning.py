"""The joint palette on the GPU: one uniform buffer per skinned node instance, written
once per frame on the render thread (``ModelRenderer``), bound by ``Renderer`` for each
skinned draw. A uniform block, not a float texture: on llvmpipe a block read is a plain
load where a texel fetch goes through the sampler path, and 256 joints fit the 16 KiB
any GL 3.3 guarantees.

On a software rasteriser the vertex stage runs on the render thread and the skin's
palette gathers are most of it; an avatar's head is mostly bound to the head bone alone.
``rigid_runs`` orders a primitive's triangles so those whose vertices all follow one joint
(or none) come first, grouped by joint: each group is drawn with that joint's matrix
folded into the model matrix by the variant without skin code, the rest skinned.

Also the screen-area bound of a skinned primitive (for the post pass): each skinned vertex
is a convex combination of its joints' transforms of it (plus the identity), so the union
of the rest box moved by each joint it uses bounds it.
"""

from __future__ import annotations

import itertools

import moderngl
import numpy as np

from engine.render.shaders import MAX_JOINTS

# A joint's triangles are drawn rigidly (their own draw call) only from this many on:
# fewer cost the draw's Python more than the skin code they skip.
MIN_RIGID_TRIANGLES = 256
_VERSIONS = itertools.count()
# Which of (lo, hi) each of a box's 8 corners takes, per axis.
BOX_CORNERS = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], bool)


class JointPalette:
    """A uniform buffer of ``MAX_JOINTS`` x 3 vec4 rows (engine.skeleton.palette)."""

    SIZE = MAX_JOINTS * 3 * 16

    def __init__(self, ctx: moderngl.Context) -> None:
        self.buffer = ctx.buffer(reserve=self.SIZE)
        self.rows = np.zeros((0, 3, 4), np.float32)  # the palette as last set (CPU copy)
        self._last = b""
        # Changes whenever the rows do, unique among all palettes (what is worked out
        # from the rows is kept by it: ``Renderer``'s rigid draws).
        self.version = next(_VERSIONS)

    def set(self, rows: np.ndarray) -> None:
        """``rows``: (J, 3, 4) float32, J <= MAX_JOINTS (the loader refuses more)."""
        if rows is self.rows and not rows.flags.writeable:  # the same pose, kept read-only
            return  # by ``Skeleton.palette`` (a writable array may have been edited in place)
        data = np.ascontiguousarray(rows[:MAX_JOINTS], np.float32).tobytes()
        if data != self._last:  # a still pose (idle off, paused) writes nothing
            self.buffer.write(data)
            self._last = data
            self.version = next(_VERSIONS)
        self.rows = rows

    def bounds(self, box: np.ndarray, used: np.ndarray) -> np.ndarray:
        """The (2, 3) box holding ``box`` (model-space rest bounds) skinned by the joints
        ``used`` (and by the identity, for vertices bound to none)."""
        corners = np.where(BOX_CORNERS, box[1], box[0])  # (8, 3)
        rows = self.rows[used[used < len(self.rows)]].astype(np.float64)  # (J, 3, 4)
        moved = rows[:, None, :, :3] @ corners[None, :, :, None]  # (J, 8, 3, 1)
        points = (moved[..., 0] + rows[:, None, :, 3]).reshape(-1, 3)
        lo = np.minimum(points.min(axis=0, initial=np.inf), corners.min(axis=0))
        hi = np.maximum(points.max(axis=0, initial=-np.inf), corners.max(axis=0))
        return np.array([lo, hi])

    def release(self) -> None:
        self.buffer.release()


def rigid_runs(
    joints: np.ndarray, weights: np.ndarray, indices: np.ndarray
) -> tuple[np.ndarray, list[tuple[int, int, int]], int]:
    """``indices`` reordered for rigid drawing, the runs ``(joint, first, count)`` (in
    indices; joint -1: bound to none, drawn with the model matrix alone) and where the
    skinned rest begins. ``joints`` / ``weights``: (n, k) per vertex, heaviest first
    (``gpu.compact_influences``). A vertex is rigid when its first weight is 1 within
    float rounding (its skinned position would differ by under a micrometre per metre)
    or all are 0."""
    total = weights.sum(axis=1)
    whole = np.abs(weights[:, 0] - 1.0) <= 1e-6
    joint = np.where(whole, joints[:, 0].astype(np.int64), -2)
    joint[total == 0.0] = -1
    triangles = indices.reshape(-1, 3)
    first = joint[triangles[:, 0]]
    rigid = (first != -2) & (first == joint[triangles[:, 1]]) & (first == joint[triangles[:, 2]])
    ids, counts = np.unique(first[rigid], return_counts=True)
    kept = ids[counts >= MIN_RIGID_TRIANGLES]
    rigid &= np.isin(first, kept)
    key = np.where(rigid, first, np.iinfo(np.int64).max)  # the skinned rest last
    order = np.argsort(key, kind="stable")
    runs, start = [], 0
    for j in kept.tolist():
        count = int(np.count_nonzero(rigid & (first == j))) * 3
        runs.append((int(j), start, count))
        start += count
    return triangles[order].reshape(-1), runs, start
