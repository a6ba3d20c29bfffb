"""Morph targets blended on the host, for software rasterisers.

llvmpipe shades vertices on the render thread, and the lit shader's target loop fetches
each active target's deltas from a texture with scalar gathers: about 3 ms a frame for a
bundled avatar (5k moving vertices, 22 active targets). The same blend as one numpy
multiply-add per active target over the vertices some target moves takes about 0.2 ms;
each instance streams the result into its own position/normal buffer and draws with no
target loop. On a GPU the shader path stays: there the loop is free and per-frame uploads of
every avatar would cost the host time and bus bandwidth instead.

Everything here runs on the render thread (it makes GL objects and writes buffers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import moderngl
import numpy as np

from engine import errors
from engine.errors import EngineError
from engine.gltf_asset import GltfPrimitive

if TYPE_CHECKING:
    from engine.render.gpu import GpuPrimitive

_EPSILON = 1e-6  # weights below this are off (as in the shader path's active list)
# Rows of zeros inside one target's slice rather than a second slice: a slice costs about a
# microsecond of Python, 64 rows (384 floats) of multiply-add about a tenth of that.
SEGMENT_GAP = 64
# Largest dense target matrix built for one primitive (the shader path's delta texture is
# capped by the GL texture size in the same way): a hostile file cannot ask for gigabytes.
MAX_TARGET_BYTES = 256 * 1024 * 1024


class HostTargets:
    """One mesh's targets as a dense (targets x moving vertex components) matrix: each
    primitive contributes the vertices some target moves (position and normal, 6 floats
    each). Shared by every instance of the asset."""

    def __init__(self, prims: Sequence[GltfPrimitive]) -> None:
        count = max((len(p.targets) for p in prims), default=0)
        rests, deltas = [], []
        # Per primitive (None: no targets): (moving vertex indices, first row, end row).
        self.parts: list[tuple[np.ndarray, int, int] | None] = []
        # Per part whose moving vertices leave gaps: their components' flat indices (a run
        # with no gaps is written to the buffer straight from the blend).
        self.scattered: dict[int, np.ndarray] = {}
        row = 0
        for prim in prims:
            if not prim.targets:
                self.parts.append(None)
                continue
            if count * prim.vertex_count * 6 * 4 > MAX_TARGET_BYTES:
                raise EngineError(
                    errors.RENDER_NOT_SUPPORTED,
                    f"morph data too large: {count} targets x {prim.vertex_count} vertices",
                )
            d = np.zeros((count, prim.vertex_count, 6), np.float32)
            for t, target in enumerate(prim.targets):
                d[t, :, :3] = target.positions
                d[t, :, 3:] = target.normals
            moving = np.flatnonzero(np.any(d != 0, axis=(0, 2)))
            rests.append(np.hstack([prim.positions, prim.normals])[moving])
            deltas.append(d[:, moving])
            self.parts.append((moving, row, row + len(moving)))
            if len(moving) and moving[-1] - moving[0] + 1 > len(moving):
                flat = (moving[:, None] * 6 + np.arange(6)).reshape(-1)
                self.scattered[len(self.parts) - 1] = flat
            row += len(moving)
        self.target_count = count
        self.rest = (np.concatenate(rests) if rests else np.zeros((0, 6))).astype(np.float32)
        self.deltas = (
            np.ascontiguousarray(np.concatenate(deltas, axis=1).reshape(count, -1), np.float32)
            if deltas
            else np.zeros((count, 0), np.float32)
        )
        # Per target, the (start, end) spans of the flat rows it moves: a face's targets
        # each move a region (a blink the lids, a smile the mouth's corners), about 40% of
        # a bundled avatar's moving rows on average, so the blend skips the rest.
        self.segments = [_segments(target.reshape(-1, 6)) for target in self.deltas]

    def blend(self, weights: np.ndarray) -> np.ndarray:
        """(moving rows, 6) positions and normals at ``weights`` (one per target)."""
        out = self.rest.reshape(-1).copy()
        scaled = np.empty_like(out)
        # One multiply-add per active target, not a BLAS product: OpenBLAS threads its
        # gemv at this size and spins against the rasteriser's threads (8 ms, not 0.2).
        for t in np.flatnonzero(np.abs(weights) > _EPSILON):
            delta, weight = self.deltas[t], weights[t]
            for start, end in self.segments[t]:
                part = scaled[start:end]
                np.multiply(delta[start:end], weight, out=part)
                out[start:end] += part
        return out.reshape(-1, 6)


def _segments(rows: np.ndarray) -> list[tuple[int, int]]:
    """Flat (start, end) spans covering the non-zero rows of one target's (n, 6) deltas,
    runs closer than ``SEGMENT_GAP`` rows joined."""
    moving = np.flatnonzero(np.any(rows != 0, axis=1))
    if not len(moving):
        return []
    breaks = np.flatnonzero(np.diff(moving) > SEGMENT_GAP)
    starts = np.concatenate([moving[:1], moving[breaks + 1]])
    ends = np.concatenate([moving[breaks], moving[-1:]]) + 1
    return [(int(a) * 6, int(b) * 6) for a, b in zip(starts, ends, strict=True)]


class HostMorphs:
    """The morphed vertex buffers of one mesh instance: ``set(weights)`` each frame, then
    ``vertex_array(prim)`` for each primitive drawn (blended once per weight change)."""

    def __init__(self, ctx: moderngl.Context, targets: HostTargets) -> None:
        self.ctx = ctx
        self.targets = targets
        self._weights = np.zeros(targets.target_count, np.float32)
        self._dirty = True
        # Per part index: (buffer, all of the primitive's vertices (n, 6), vertex array).
        self._parts: dict[int, tuple[moderngl.Buffer, np.ndarray, moderngl.VertexArray]] = {}
        self._outlines: dict[tuple[int, int], moderngl.VertexArray] = {}  # (part, program)
        self._rigid: dict[int, moderngl.VertexArray] = {}  # per part: its rigid draw's

    def set(self, weights: np.ndarray) -> None:
        weights = np.asarray(weights, np.float32)
        if not np.array_equal(weights, self._weights):  # idle frames keep their buffers
            self._weights = weights.copy()
            self._dirty = True

    def vertex_array(self, prim: GpuPrimitive, rigid: bool = False) -> moderngl.VertexArray:
        """This instance's vertex array for ``prim`` (which has a ``host_part``): its own
        positions and normals, the primitive's other attributes and indices; ``rigid``:
        the one of its rigid draw's program (``gpu.RigidDraw``), over the same buffer."""
        part = prim.host_part
        assert part is not None and prim.host_rest is not None
        if part not in self._parts:
            buffer = self.ctx.buffer(prim.host_rest.tobytes(), dynamic=True)
            content = [(buffer, "3f 3f", "in_position", "in_normal"), *prim.static_content]
            vao = self.ctx.vertex_array(
                prim.program, content, prim.index_buffer, index_element_size=4
            )
            self._parts[part] = (buffer, prim.host_rest.copy(), vao)
            self._dirty = True
        if self._dirty:
            self._upload()
        if not rigid:
            return self._parts[part][2]
        rigid_vao = self._rigid.get(part)
        if rigid_vao is None:
            assert prim.rigid is not None
            content = [
                (self._parts[part][0], "3f 3f", "in_position", "in_normal"),
                *prim.rigid.static_content,
            ]
            rigid_vao = self._rigid[part] = self.ctx.vertex_array(
                prim.rigid.program, content, prim.index_buffer, index_element_size=4
            )
        return rigid_vao

    def outline_array(self, prim: GpuPrimitive, program: moderngl.Program) -> moderngl.VertexArray:
        """This instance's vertex array for ``prim`` in an outline variant ``program``
        (after ``vertex_array(prim)`` this frame: the same blended buffer)."""
        part = prim.host_part
        assert part is not None
        key = (part, id(program))
        vao = self._outlines.get(key)
        if vao is None:
            content = [(self._parts[part][0], "3f 3f", "in_position", "in_normal")]
            vao = self._outlines[key] = self.ctx.vertex_array(
                program,
                [*content, *prim.static_content],
                prim.index_buffer,
                index_element_size=4,
                skip_errors=True,
            )
        return vao

    def _upload(self) -> None:
        rows = self.targets.blend(self._weights)
        for part, (buffer, vertices, _) in self._parts.items():
            span = self.targets.parts[part]
            if span is None:
                continue
            moving, start, end = span
            if not len(moving):
                continue
            first, last = int(moving[0]), int(moving[-1]) + 1  # write the moving range only
            flat = self.targets.scattered.get(part)
            if flat is None:  # every vertex of the range moves
                buffer.write(rows[start:end], offset=first * 24)
                continue
            # Scattered through a flat view: a row-indexed (n, 6) assignment costs half
            # as much again (13k vertices: 0.24 ms against 0.15).
            vertices.reshape(-1)[flat] = rows[start:end].reshape(-1)
            buffer.write(vertices[first:last], offset=first * 24)
        self._dirty = False

    def release(self) -> None:
        for vao in self._outlines.values():
            vao.release()
        self._outlines.clear()
        for rigid in self._rigid.values():
            rigid.release()
        for buffer, _, vao in self._parts.values():
            vao.release()
            buffer.release()
        self._parts.clear()
