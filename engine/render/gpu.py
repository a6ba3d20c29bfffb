"""GPU uploads of a ``GltfAsset``: vertex/index buffers, morph delta textures (or, on a
software rasteriser, the host-side target matrices of ``engine.render.host_morph``),
material textures. One upload is shared by every model instance of the same asset
(refcounted)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import moderngl
import numpy as np

from engine import errors
from engine.errors import EngineError
from engine.gltf import GltfAsset, GltfPrimitive
from engine.gltf_asset import GltfMaterial, TextureSlot
from engine.render.batching import merge_by_material
from engine.render.edge_capture import triangle_neighbours
from engine.render.host_morph import HostTargets
from engine.render.mipmaps import upload_mipmaps
from engine.render.shaders import DELTA_TEXTURE_WIDTH
from engine.render.skinning import rigid_runs

_SERIALS = itertools.count()


@dataclass
class RigidDraw:
    """A skinned primitive's triangles that follow one joint each (``rigid_runs``), drawn
    by ``program``, the variant without skin code: its vertex array (None with host
    morphs: each instance's ``HostMorphs`` makes its own from ``static_content``), the
    runs ``(joint, first, count)`` and where the skinned rest of the indices begins."""

    program: moderngl.Program
    vao: moderngl.VertexArray | None
    static_content: list[tuple[Any, ...]]
    runs: list[tuple[int, int, int]]
    skinned_first: int


@dataclass
class GpuPrimitive:
    vao: moderngl.VertexArray
    program: moderngl.Program  # the lit shader variant ``vao`` draws with (its material's)
    buffers: list[moderngl.Buffer]
    deltas: moderngl.Texture | None  # None when the primitive has no morph targets
    vertex_count: int
    material: int | None
    # Model-space box holding every vertex at any morph weights in 0..1 (the rest box
    # grown by each target's most negative and most positive delta): the screen area it
    # can cover, for the post pass (Renderer.drawn_region).
    bounds: np.ndarray | None = None
    # Indices of the triangles some morph target moves come first: the vertex shader's
    # target loop runs for those only (the rest is drawn as not morphed). None: all.
    morph_indices: int | None = None
    index_count: int = 0
    influences: int = 0  # skin joints per vertex on the GPU: 0 (not skinned), 1-4 or 8
    used_joints: np.ndarray | None = None  # palette entries some vertex weights (bounds)
    # Host morphs (software rasteriser): this primitive's part of its mesh's HostTargets
    # (None: no targets), its rest positions and normals (n, 6), and what an instance's
    # own vertex array binds besides them.
    host_part: int | None = None
    host_rest: np.ndarray | None = None
    static_content: list[tuple[Any, ...]] = field(default_factory=list)
    index_buffer: moderngl.Buffer | None = None
    rigid: RigidDraw | None = None  # software rasteriser, skinned (RigidDraw)
    # The indices as drawn and the rest positions: the triangles' neighbours for an edge
    # capture come from them (``neighbours()``, worked out on the first capture).
    edge_source: tuple[np.ndarray, np.ndarray] | None = None
    _neighbours: np.ndarray | None = field(default=None, init=False, repr=False)

    def neighbours(self) -> np.ndarray | None:
        """``edge_capture.triangle_neighbours`` of this primitive as drawn (kept)."""
        if self._neighbours is None and self.edge_source is not None:
            self._neighbours = triangle_neighbours(*self.edge_source)
        return self._neighbours

    def release(self) -> None:
        self.vao.release()
        if self.rigid is not None and self.rigid.vao is not None:
            self.rigid.vao.release()
        for b in self.buffers:
            b.release()
        if self.deltas is not None:
            self.deltas.release()


def delta_texture(ctx: moderngl.Context, prim: GltfPrimitive) -> moderngl.Texture | None:
    """All targets' position and normal deltas in one RGBA32F texture (see the shader)."""
    if not prim.targets:
        return None
    n = prim.vertex_count
    texels = np.zeros((len(prim.targets), n, 2, 4), np.float32)
    for t, target in enumerate(prim.targets):
        texels[t, :, 0, :3] = target.positions
        texels[t, :, 1, :3] = target.normals
    flat = texels.reshape(-1, 4)
    rows = -(-len(flat) // DELTA_TEXTURE_WIDTH)
    if rows > ctx.info["GL_MAX_TEXTURE_SIZE"]:
        raise EngineError(
            errors.RENDER_NOT_SUPPORTED,
            f"morph data too large for one texture ({len(flat)} texels)",
        )
    padded = np.zeros((rows * DELTA_TEXTURE_WIDTH, 4), np.float32)
    padded[: len(flat)] = flat
    tex = ctx.texture((DELTA_TEXTURE_WIDTH, rows), 4, padded.tobytes(), dtype="f4")
    tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
    return tex


def _morphed_first(prim: GltfPrimitive) -> tuple[np.ndarray, int | None]:
    """The indices with every triangle a target moves first, and how many indices those
    are (None: no split). On a software rasteriser the target loop costs per vertex
    shaded, and a face's targets leave most of a head, and all of its back, still."""
    if not prim.targets or not len(prim.indices):
        return prim.indices, None
    moving = np.zeros(prim.vertex_count, bool)
    for target in prim.targets:
        moving |= np.any(target.positions != 0, axis=1) | np.any(target.normals != 0, axis=1)
    triangles = prim.indices.reshape(-1, 3)
    moved = moving[triangles].any(axis=1)
    if moved.all():
        return prim.indices, None
    order = np.concatenate([triangles[moved], triangles[~moved]]).reshape(-1)
    return order, int(moved.sum()) * 3


def color_texture(
    ctx: moderngl.Context,
    image: np.ndarray,
    slot: TextureSlot | None = None,
    host_mipmaps: bool = False,
) -> moderngl.Texture:
    """An RGBA8 image (top row first, as glTF UVs expect: v=0 is the top row), sampled
    as ``slot`` says (mirrored repeat is drawn as repeat); ``host_mipmaps``: its mipmaps
    made by numpy where that is quicker (``engine.render.mipmaps``)."""
    slot = slot or TextureSlot()
    h, w = image.shape[:2]
    pixels = np.ascontiguousarray(image, np.uint8)
    tex = ctx.texture((w, h), 4, pixels.tobytes())
    if not (host_mipmaps and upload_mipmaps(tex, pixels)):
        tex.build_mipmaps()
    mag = moderngl.NEAREST if slot.nearest else moderngl.LINEAR
    tex.filter = (moderngl.LINEAR_MIPMAP_LINEAR, mag)
    tex.repeat_x, tex.repeat_y = (mode != "clamp" for mode in slot.wrap)
    return tex


class GpuAsset:
    """Everything of one asset on the GPU; each primitive built for the lit shader variant
    ``program_for(material, primitive, skinned)`` picks for it (``skinned`` False: the one
    without skin code). ``host_morphs``: targets blended on the host (``host_targets`` per
    mesh) instead of in the vertex shader; ``rigid_skin``: a skinned primitive's rigidly
    bound triangles drawn apart (``RigidDraw``); ``host_mipmaps``: textures' mipmaps made
    by numpy (``engine.render.mipmaps``)."""

    def __init__(
        self,
        ctx: moderngl.Context,
        program_for: Callable[[GltfMaterial | None, GltfPrimitive, bool], moderngl.Program],
        asset: GltfAsset,
        host_morphs: bool = False,
        rigid_skin: bool = False,
        host_mipmaps: bool = False,
    ) -> None:
        self.asset = asset
        self.serial = next(_SERIALS)  # told apart from an asset later at the same id()
        self.host_morphs = host_morphs
        self.rigid_skin = rigid_skin
        self._program_for = program_for
        self.refcount = 0
        self.textures = [
            color_texture(ctx, m.base_color_texture, m.base_color_slot, host_mipmaps)
            if m.base_color_texture is not None
            else None
            for m in asset.materials
        ]
        self.emissive_textures = [
            color_texture(ctx, m.emissive_texture, m.emissive_slot, host_mipmaps)
            if m.emissive_texture is not None
            else None
            for m in asset.materials
        ]
        # What is drawn per mesh: its primitives, those sharing a material merged.
        drawn = [merge_by_material(mesh.primitives, asset.materials) for mesh in asset.meshes]
        self.host_targets: list[HostTargets | None] = [
            HostTargets(prims) if host_morphs and any(p.targets for p in prims) else None
            for prims in drawn
        ]
        self.meshes = [
            [self._primitive(ctx, program_for(_material(asset, p), p, True), p) for p in prims]
            for prims in drawn
        ]
        for mesh_targets, prims in zip(self.host_targets, self.meshes, strict=True):
            for k, prim in enumerate(prims):
                if mesh_targets is not None and mesh_targets.parts[k] is not None:
                    prim.host_part = k

    def _primitive(
        self, ctx: moderngl.Context, program: moderngl.Program, prim: GltfPrimitive
    ) -> GpuPrimitive:
        n = prim.vertex_count
        uvs = prim.uvs if prim.uvs is not None else np.zeros((n, 2), np.float32)
        interleaved = np.hstack([prim.positions, prim.normals, uvs]).astype(np.float32)
        vbo = ctx.buffer(interleaved.tobytes())
        host = self.host_morphs and bool(prim.targets)
        # Host morphs need no split: the blended vertices cost the shader nothing extra.
        indices, morph_indices = (prim.indices, None) if host else _morphed_first(prim)
        content: list[tuple[Any, ...]] = [(vbo, "3f 3f 2f", "in_position", "in_normal", "in_uv")]
        static: list[tuple[Any, ...]] = [(vbo, "24x 2f", "in_uv")]  # skips position, normal
        if "in_uv" not in program:  # a variant sampling no texture reads no UVs
            content, static = [(vbo, "3f 3f 8x", "in_position", "in_normal")], []
        buffers = [vbo]
        if prim.colors is not None:  # the variant reads them (renderer.lit_variant)
            colors = ctx.buffer(np.ascontiguousarray(prim.colors, np.float32).tobytes())
            content.append((colors, "4f", "in_color"))
            static.append(content[-1])
            buffers.append(colors)
        if prim.uvs1 is not None and "in_uv1" in program:
            uv1 = ctx.buffer(np.ascontiguousarray(prim.uvs1, np.float32).tobytes())
            content.append((uv1, "2f", "in_uv1"))
            static.append(content[-1])
            buffers.append(uv1)
        influences = 0
        used = None
        runs: list[tuple[int, int, int]] = []
        skinned_first = 0
        unskinned, unskinned_static = list(content), list(static)
        if prim.joints is not None and prim.skin_weights is not None:
            joints, weights = compact_influences(prim)
            influences = joints.shape[1]
            if self.rigid_skin and morph_indices is None:
                indices, runs, skinned_first = rigid_runs(joints, weights, indices)
            # Joints as floats: exact below 2**24, and one float attribute path for all.
            # Per vertex: the first set's joints and weights (up to 4 each), then the second's.
            first = min(influences, 4)
            parts = [joints[:, :first], weights[:, :first], joints[:, 4:], weights[:, 4:]]
            skin_vbo = ctx.buffer(np.hstack(parts).astype(np.float32).tobytes())
            names = ["in_joints0", "in_weights0", "in_joints1", "in_weights1"]
            layout = [f"{first}f", f"{first}f", "4f", "4f"][: 2 if influences <= 4 else 4]
            content.append((skin_vbo, " ".join(layout), *names[: len(layout)]))
            static.append(content[-1])
            buffers.append(skin_vbo)
            used = np.unique(prim.joints[prim.skin_weights > 0]).astype(np.intp)
        ibo = ctx.buffer(np.ascontiguousarray(indices, np.uint32).tobytes())
        buffers.insert(1, ibo)
        vao = ctx.vertex_array(program, content, ibo, index_element_size=4)
        rigid = None
        if runs:
            rigid_program = self._program_for(_material(self.asset, prim), prim, False)
            rigid = RigidDraw(
                rigid_program,
                None if host else ctx.vertex_array(rigid_program, unskinned, ibo, 4),
                unskinned_static,
                runs,
                skinned_first,
            )
        lo, hi = prim.positions.min(axis=0), prim.positions.max(axis=0)
        for target in prim.targets:
            lo = lo + np.minimum(target.positions.min(axis=0), 0.0)
            hi = hi + np.maximum(target.positions.max(axis=0), 0.0)
        return GpuPrimitive(
            vao,
            program,
            buffers,
            None if host else delta_texture(ctx, prim),
            n,
            prim.material,
            np.array([lo, hi], np.float64) if n else None,
            morph_indices,
            len(indices),
            influences,
            used,
            host_rest=(
                np.hstack([prim.positions, prim.normals]).astype(np.float32) if host else None
            ),
            static_content=static if host else [],
            index_buffer=ibo,
            rigid=rigid,
            edge_source=(indices, prim.positions),
        )

    def release(self) -> None:
        for prims in self.meshes:
            for p in prims:
                p.release()
        for t in [*self.textures, *self.emissive_textures]:
            if t is not None:
                t.release()


def _material(asset: GltfAsset, prim: GltfPrimitive) -> GltfMaterial | None:
    return asset.materials[prim.material] if prim.material is not None else None


def skin_influences(prim: GltfPrimitive) -> int:
    """Skin joints per vertex on the GPU: as many as the busiest vertex weights (1-4, or 8
    past four), 0 for a primitive without a skin. llvmpipe gathers three palette rows per
    influence for every vertex: an avatar's head, mostly one or two joints a vertex, was
    paying for four."""
    if prim.joints is None or prim.skin_weights is None:
        return 0
    used = int(np.count_nonzero(prim.skin_weights > 0, axis=1).max(initial=0))
    return max(1, used) if used <= 4 else 8


def compact_influences(prim: GltfPrimitive) -> tuple[np.ndarray, np.ndarray]:
    """``prim``'s (joints, weights) with each vertex's weights heaviest first, cut to
    ``skin_influences`` columns (only zero weights are dropped: the same skin)."""
    assert prim.joints is not None and prim.skin_weights is not None
    order = np.argsort(-prim.skin_weights, axis=1, kind="stable")
    count = skin_influences(prim)
    joints = np.take_along_axis(prim.joints, order, axis=1)[:, :count]
    weights = np.take_along_axis(prim.skin_weights, order, axis=1)[:, :count]
    return joints, weights
