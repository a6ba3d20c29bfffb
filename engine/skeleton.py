"""Node world matrices for a whole asset at once, and the joint palettes of its skins.

``ModelRenderer`` calls ``Skeleton.world`` once per drawn frame on the render thread (it
only reads the editable node transforms; no GL). A first pose composes all nodes in one
batch, one matrix product per depth of the hierarchy, so a 70-joint rig costs about as
much Python as a 5-node one. (pyrr composes one matrix per call; with every node of a
rig changing per frame that would be ~80 calls a frame, so the batch is plain numpy.)
After that only the nodes whose transform changed, and what hangs under them, are
composed again: a speaking avatar turns its neck, head and eyes, and leaves the rest of
its 60-odd joints (spine, arms, fingers, legs) where they were.

A joint's palette entry is ``world(joint) @ inverseBind(joint)`` in the asset's space;
the skinned mesh is drawn with the entity's matrix only: the glTF spec ignores the
skinned node's own transform.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.gltf_asset import GltfAsset
from engine.transform import Transform


def local_matrices(nodes: Sequence[Transform]) -> np.ndarray:
    """(N, 4, 4) float64 local matrices of ``nodes`` (the same as each ``local_matrix()``)."""
    n = len(nodes)
    t = np.array([node.translation for node in nodes], np.float64).reshape(n, 3)
    q = np.array([node.rotation for node in nodes], np.float64).reshape(n, 4)
    s = np.array([node.scale for node in nodes], np.float64).reshape(n, 3)
    m = trs_matrices(t, q, s)
    for i, node in enumerate(nodes):  # glTF node.matrix wins over TRS
        if node.matrix is not None:
            m[i] = node.matrix
    return m


def trs_matrices(t: np.ndarray, q: np.ndarray, s: np.ndarray) -> np.ndarray:
    """(N, 4, 4) float64 matrices from (N, 3) translations, (N, 4) quaternions (x, y, z, w;
    any length) and (N, 3) scales: T * R * S."""
    n = len(t)
    x, y, z, w = q.T
    norm = (q * q).sum(axis=1)
    k = np.divide(2.0, norm, out=np.zeros(n), where=norm > 0)  # non-unit quaternions too
    m = np.zeros((n, 4, 4))
    m[:, 0, 0] = 1 - k * (y * y + z * z)
    m[:, 0, 1] = k * (x * y - z * w)
    m[:, 0, 2] = k * (x * z + y * w)
    m[:, 1, 0] = k * (x * y + z * w)
    m[:, 1, 1] = 1 - k * (x * x + z * z)
    m[:, 1, 2] = k * (y * z - x * w)
    m[:, 2, 0] = k * (x * z - y * w)
    m[:, 2, 1] = k * (y * z + x * w)
    m[:, 2, 2] = 1 - k * (x * x + y * y)
    m[:, :3, :3] *= s[:, None, :]
    m[:, :3, 3] = t
    m[:, 3, 3] = 1.0
    return m


class Skeleton:
    """The hierarchy of one asset, flattened for batched posing."""

    def __init__(self, asset: GltfAsset) -> None:
        count = len(asset.nodes)
        self.parent = np.full(count, -1, np.intp)
        for index, node in enumerate(asset.nodes):
            for child in node.children:
                self.parent[child] = index
        depth = np.zeros(count, np.intp)
        for index in self._top_down(asset):
            if self.parent[index] >= 0:
                depth[index] = depth[self.parent[index]] + 1
        self.levels = [np.flatnonzero(depth == d) for d in range(int(depth.max(initial=0)) + 1)]
        self.skins = asset.skins
        self._joints = [np.array(skin.joints, np.intp) for skin in asset.skins]
        self._inverse_bind = [skin.inverse_bind.astype(np.float64) for skin in asset.skins]
        self._palettes: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # skin: (pose, rows)
        self._world: np.ndarray | None = None  # the last pose, its local matrices and
        self._local = np.zeros((0, 4, 4))  # the transforms (``Transform.state``) they
        self._states: list[bytes] = []  # came from
        order = self._top_down(asset)
        rank = np.empty(count, np.intp)
        rank[order] = np.arange(count)
        self._rank = rank  # position in a parents-first walk
        self._subtree: list[list[int]] = [[] for _ in range(count)]  # node and all below
        for index in reversed(order):
            below = [index]
            for child in asset.nodes[index].children:
                below.extend(self._subtree[child])
            self._subtree[index] = below

    def _top_down(self, asset: GltfAsset) -> list[int]:
        """Every node, parents first (the loader refuses cycles)."""
        order = [i for i in range(len(asset.nodes)) if self.parent[i] < 0]
        for index in order:  # grows while iterating: a breadth-first walk
            order.extend(asset.nodes[index].children)
        return order

    def world(self, nodes: Sequence[Transform]) -> np.ndarray:
        """(N, 4, 4) float64 asset-space matrices of every node (roots: their local);
        read-only, and composed again only when a node's transform changed: a model
        standing still (most nodes of most avatars) costs a byte comparison a frame, and
        a few moving nodes their subtrees."""
        states = [node.state() for node in nodes]
        if self._world is None or len(states) != len(self._states):
            return self._pose_all(nodes, states)
        changed = [i for i, (a, b) in enumerate(zip(states, self._states, strict=True)) if a != b]
        if not changed:
            return self._world
        dirty = sorted({i for c in changed for i in self._subtree[c]}, key=self._rank.__getitem__)
        if len(dirty) > len(states) // 2:
            return self._pose_all(nodes, states)
        local = self._local
        local[changed] = local_matrices([nodes[i] for i in changed])
        world = self._world.copy()  # the last one stays as handed out
        for i in dirty:
            parent = self.parent[i]
            world[i] = local[i] if parent < 0 else world[parent] @ local[i]
        return self._keep(world, states)

    def _pose_all(self, nodes: Sequence[Transform], states: list[bytes]) -> np.ndarray:
        self._local = local_matrices(nodes)
        world = self._local.copy()
        for level in self.levels[1:]:
            world[level] = world[self.parent[level]] @ world[level]
        return self._keep(world, states)

    def _keep(self, world: np.ndarray, states: list[bytes]) -> np.ndarray:
        world.flags.writeable = False
        self._world, self._states = world, states
        return world

    def palette(self, skin: int, world: np.ndarray) -> np.ndarray:
        """(J, 3, 4) float32: the top three rows of each joint's skinning matrix; the same
        array again while ``world`` is the same pose (read-only)."""
        kept = self._palettes.get(skin)
        if kept is not None and kept[0] is world:
            return kept[1]
        joints = world[self._joints[skin]] @ self._inverse_bind[skin]
        rows = np.ascontiguousarray(joints[:, :3, :], np.float32)
        rows.flags.writeable = False
        self._palettes[skin] = (world, rows)
        return rows
