"""The mesh edges that show in a frame, for the post pass's edge lines
(``engine.render.edge_lines``): silhouettes and open borders, in clip space.

1. While the scene is drawn, transform feedback writes each captured draw's triangles
   as they reach the rasteriser (clip space, 3 vertices a triangle) into one buffer;
   the draws are noted (primitive, first triangle, count).
2. Per primitive, once: the triangle across each edge (``triangle_neighbours``; vertices
   matched by position, so those split at UV or normal seams still join). Per set of
   draws (the same frame after frame), once: each edge of the captured triangles, once.
3. After the frame, numpy reads the triangles back (about 0.7 MB for a 15k-triangle
   avatar) and keeps the edges that show: an open border (no neighbour: where another
   material or nothing continues) beside a face that shows, or a silhouette (the two
   faces turn different ways on screen). About 0.5 ms for such an avatar. Where two
   still parts of one node cut through each other, the segments worked out with the
   plan (``engine.render.crossings``) are placed from their triangles' corners.

Why on the CPU: deciding in the line pass's vertex stage instead (the triangles as a
texture, every edge a line) cost llvmpipe 4.5 ms a frame in texture fetches, and a
geometry stage over the scene's triangles 35-40% of a frame (both measured).
"""

from __future__ import annotations

import ctypes
from concurrent.futures import Future
from dataclasses import dataclass

import moderngl
import numpy as np

from engine.render.aside import worker
from engine.render.crossings import crossings
from engine.render.gpu_wait import gl_function

TRANSFORM_FEEDBACK_BUFFER = 0x8C8E
TRIANGLES = 0x0004
CLIP_BYTES = 16  # a captured vertex: gl_Position, vec4


def triangle_neighbours(indices: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(T, 3, 2) int32: per triangle and edge k (corner k to k + 1), the triangle across
    it that runs the edge the other way and that triangle's own number for the edge; -1
    for both where there is none (an open border; a seam of inconsistent winding; a
    non-manifold fan's extra sheets). Vertices are matched by position, so those split
    at UV or normal seams still join."""
    tris = np.asarray(indices, np.int64).reshape(-1, 3)
    if not len(tris):
        return np.zeros((0, 3, 2), np.int32)
    # Matched to a millionth of the mesh's size: a seam's copies of a vertex often differ
    # in the last bits (a sphere's sin(2 pi) is not 0).
    points = np.asarray(positions, np.float64)
    step = max(float(np.ptp(points, axis=0).max(initial=0.0)), 1e-30) * 1e-6
    _, welded = np.unique(np.round(points / step), axis=0, return_inverse=True)
    welded = welded.reshape(-1).astype(np.int64)
    n = int(welded.max()) + 1
    start = welded[tris].reshape(-1)
    end = welded[np.roll(tris, -1, axis=1)].reshape(-1)
    key = start * n + end  # each half edge, directed
    order = np.argsort(key, kind="stable")
    sorted_keys = key[order]
    wanted = end * n + start
    at = np.minimum(np.searchsorted(sorted_keys, wanted), len(key) - 1)
    half = order[at]  # the matching half edge: 3 * its triangle + its edge number
    found = (sorted_keys[at] == wanted) & (half // 3 != np.arange(len(key)) // 3)
    pairs = np.stack([half // 3, half % 3], axis=1)
    return np.where(found[:, None], pairs, -1).reshape(-1, 3, 2).astype(np.int32)


# A part that holds still in its node: (the node's number in the frame, the part's
# indices as drawn, its positions). Two such parts of one node cut through each other
# along fixed lines (``engine.render.crossings``).
StillShape = tuple[int, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class _Draw:
    neighbours: np.ndarray  # the primitive's triangle_neighbours
    group: object  # draws of one primitive in one node share facings
    first: int  # first triangle
    count: int
    two_sided: bool  # a double-sided material: back faces show too
    mirrored: bool  # its node flips the winding: front faces run clockwise
    still: StillShape | None = None


@dataclass
class _Plan:
    """A frame's draws worked out once (the same draws come back frame after frame):
    the captured triangles' edges, each once: the open ones (no neighbour captured) and
    the pairs; each triangle's winding sign (-1 where its node mirrors) and sides."""

    key: tuple
    open_edges: np.ndarray  # (n, 2) intp: triangle, edge
    pairs: np.ndarray  # (m, 4) intp: triangle, edge, the neighbour, its edge
    sign: np.ndarray  # (C,) float32
    two_sided: np.ndarray  # (C,) bool
    # Where still parts cut through each other: per segment the two triangles crossing
    # (k, 2) and its ends as weights on the first one's corners (k, 2, 3).
    crossing: np.ndarray
    crossing_weights: np.ndarray


def _plan(draws: list[_Draw], key: tuple) -> _Plan:
    slots: dict[object, int] = {}  # group -> where its triangles start in ``captured``
    size = 0
    for draw in draws:
        if draw.group not in slots:
            slots[draw.group] = size
            size += len(draw.neighbours)
    captured = np.full(size, -1, np.int64)  # per group's triangle: its captured number
    done = 0
    for draw in draws:
        first = slots[draw.group] + draw.first
        captured[first : first + draw.count] = np.arange(done, done + draw.count)
        done += draw.count
    opens, pairs = [], []
    start = 0
    for draw in draws:
        across = draw.neighbours[draw.first : draw.first + draw.count].astype(np.int64)
        found = across[:, :, 0] >= 0
        other = np.where(found, captured[np.maximum(across[:, :, 0], 0) + slots[draw.group]], -1)
        mine = np.arange(start, start + draw.count)[:, None]
        t, k = np.nonzero(other < 0)
        opens.append(np.stack([t + start, k], axis=1))
        t, k = np.nonzero((other >= 0) & (mine < other))  # each pair once
        pairs.append(np.stack([t + start, k, other[t, k], across[t, k, 1]], axis=1))
        start += draw.count
    crossing, weights = _crossings(draws, slots, captured)
    return _Plan(
        key,
        np.concatenate(opens).astype(np.intp) if opens else np.zeros((0, 2), np.intp),
        np.concatenate(pairs).astype(np.intp) if pairs else np.zeros((0, 4), np.intp),
        np.concatenate([np.full(d.count, -1.0 if d.mirrored else 1.0, np.float32) for d in draws]),
        np.concatenate([np.full(d.count, d.two_sided) for d in draws]),
        crossing,
        weights,
    )


def _crossings(
    draws: list[_Draw], slots: dict[object, int], captured: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where the still parts of each node cut through each other, in captured triangles
    (segments on triangles this frame does not draw are left out)."""
    still = {d.group: d.still for d in draws if d.still is not None}
    groups = list(still)
    found, found_weights = [], []
    for i, ga in enumerate(groups):
        for gb in groups[i + 1 :]:
            a, b = still[ga], still[gb]
            if a[0] != b[0]:  # other nodes: they move apart
                continue
            ta, tb, weights = crossings(a[1:], b[1:])
            ca, cb = captured[ta + slots[ga]], captured[tb + slots[gb]]
            drawn = (ca >= 0) & (cb >= 0)
            found.append(np.stack([ca[drawn], cb[drawn]], axis=1))
            found_weights.append(weights[drawn])
    if not found:
        return np.zeros((0, 2), np.intp), np.zeros((0, 2, 3), np.float32)
    return np.concatenate(found).astype(np.intp), np.concatenate(found_weights)


class EdgeCapture:
    """The shown edges of one frame's lit draws. Render thread only: ``begin_frame()``,
    ``draw(...)`` in place of each lit draw to capture, then ``lines()`` once the GPU
    has finished the frame."""

    def __init__(self, ctx: moderngl.Context, plan_aside: bool = False, triangles: int = 0) -> None:
        """``triangles``: how many a frame is expected to capture (its buffer's size)."""
        self.ctx = ctx
        # Live frames (``plan_aside``): a new set of draws has its plan worked out on the
        # ``edge-plan`` thread (pure numpy over the draws' copies), and frames draw no
        # lines until it is ready, rather than one frame stalling for it (four avatars:
        # 8 ms). Offline, every frame gets its lines: pixels must not depend on timing.
        self.plan_aside = plan_aside
        self._pending: tuple[tuple, Future[_Plan]] | None = None
        # Filled in turn; a frame that outgrows them gets another, and the next frame one
        # that holds everything.
        self._buffers = [ctx.buffer(reserve=max(256 * 1024, triangles * 3 * CLIP_BYTES))]
        self._draws: list[_Draw] = []
        self._used = [0]  # triangles written to each buffer this frame
        self._plan: _Plan | None = None
        self._bind = gl_function("glBindBufferRange")
        self._begin = gl_function("glBeginTransformFeedback")
        self._end = gl_function("glEndTransformFeedback")
        self._use_program = gl_function("glUseProgram")
        # Where GL's entry points cannot be reached, draws go through uncaptured.
        self.available = None not in (self._bind, self._begin, self._end, self._use_program)

    def begin_frame(self) -> None:
        if len(self._buffers) > 1:
            total = sum(b.size for b in self._buffers)
            for buffer in self._buffers:
                buffer.release()
            self._buffers = [self.ctx.buffer(reserve=total)]
        self._draws.clear()
        self._used = [0]

    def draw(
        self,
        vao: moderngl.VertexArray,
        neighbours: np.ndarray,
        group: object,
        first: int,
        count: int,
        two_sided: bool,
        mirrored: bool,
        still: StillShape | None = None,
    ) -> None:
        """``vao.render`` of indices first..first + count (3 per triangle), captured."""
        if not self.available:
            vao.render(first=first, vertices=count)
            return
        size = count * CLIP_BYTES
        index = len(self._buffers) - 1
        offset = self._used[index] * 3 * CLIP_BYTES
        if offset + size > self._buffers[index].size:
            self._buffers.append(self.ctx.buffer(reserve=max(size, self._buffers[index].size)))
            self._used.append(0)
            index, offset = index + 1, 0
        self._use_program(ctypes.c_uint(vao.program.glo))  # current when feedback begins
        self._bind(
            ctypes.c_uint(TRANSFORM_FEEDBACK_BUFFER),
            ctypes.c_uint(0),
            ctypes.c_uint(self._buffers[index].glo),
            ctypes.c_ssize_t(offset),
            ctypes.c_ssize_t(size),
        )
        self._begin(ctypes.c_uint(TRIANGLES))
        vao.render(first=first, vertices=count)
        self._end()
        # In capture order: lines() reads the buffers back one after another.
        self._draws.append(
            _Draw(neighbours, group, first // 3, count // 3, two_sided, mirrored, still)
        )
        self._used[index] += count // 3

    def lines(self) -> np.ndarray:
        """(n, 2, 4) float32: the clip-space ends of each shown edge of this frame's draws
        (the GPU must have finished them)."""
        if not self._draws:
            return np.zeros((0, 2, 4), np.float32)
        key = tuple(
            (id(d.neighbours), d.group, d.first, d.count, d.two_sided, d.mirrored, d.still is None)
            for d in self._draws
        )
        plan = self._plan_for(key)
        if plan is None:  # being worked out aside
            return np.zeros((0, 2, 4), np.float32)
        clip = np.concatenate(
            [
                np.frombuffer(b.read(used * 3 * CLIP_BYTES), np.float32)
                for b, used in zip(self._buffers, self._used, strict=True)
                if used
            ]
            or [np.zeros(0, np.float32)]
        ).reshape(-1, 3, 4)
        if not len(clip):
            return np.zeros((0, 2, 4), np.float32)
        x0, x1, x2 = clip[:, 0, 0], clip[:, 1, 0], clip[:, 2, 0]
        y0, y1, y2 = clip[:, 0, 1], clip[:, 1, 1], clip[:, 2, 1]
        w0, w1, w2 = clip[:, 0, 3], clip[:, 1, 3], clip[:, 2, 3]
        # Winding on screen, in homogeneous coordinates (no division): with every w
        # positive, the sign of det [x y w] is the sign of the projected area.
        det = x0 * (y1 * w2 - y2 * w1) - y0 * (x1 * w2 - x2 * w1) + w0 * (x1 * y2 - x2 * y1)
        ahead = (w0 > 1e-6) & (w1 > 1e-6) & (w2 > 1e-6)  # in front of the eye
        facing = np.sign(det) * plan.sign * ahead  # +1 front, -1 back, 0 not drawn
        shows = (facing > 0) | ((facing != 0) & plan.two_sided)
        # Open: no neighbour beside a face that shows (or one behind the eye).
        # Silhouette: the two faces turn different ways.
        t, k = plan.open_edges[:, 0], plan.open_edges[:, 1]
        keep = shows[t]
        edges = [(t[keep], k[keep])]
        t, k, u, j = plan.pairs.T
        mine, theirs = facing[t], facing[u]
        silhouette = mine * theirs < 0
        edges.append((t[silhouette], k[silhouette]))
        # A pair whose other face is behind the eye: open on the side that shows.
        for tri, edge, gone in ((t, k, theirs == 0), (u, j, mine == 0)):
            half = gone & shows[tri]
            edges.append((tri[half], edge[half]))
        t = np.concatenate([e[0] for e in edges])
        k = np.concatenate([e[1] for e in edges])
        lines = np.stack([clip[t, k], clip[t, (k + 1) % 3]], axis=1)
        if not len(plan.crossing):
            return lines
        # Where still parts cut through each other and both faces show: the segments
        # placed from the first triangle's corners (exact in clip space, a linear map).
        a, b = plan.crossing[:, 0], plan.crossing[:, 1]
        keep = shows[a] & shows[b]
        cuts = np.einsum("nek,nkc->nec", plan.crossing_weights[keep], clip[a[keep]])
        return np.concatenate([lines, cuts.astype(np.float32)])

    def _plan_for(self, key: tuple) -> _Plan | None:
        if self._plan is not None and self._plan.key == key:
            return self._plan
        if not self.plan_aside:
            self._plan = _plan(self._draws, key)
            return self._plan
        if self._pending is not None and self._pending[0] == key:
            if not self._pending[1].done():
                return None
            self._plan = self._pending[1].result()
            self._pending = None
            return self._plan
        self._pending = (key, worker("edge-plan").submit(_plan, list(self._draws), key))
        return None

    def release(self) -> None:
        for buffer in self._buffers:
            buffer.release()
