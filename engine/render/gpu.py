"""GPU uploads of a ``GltfAsset``: vertex/index buffers, morph delta textures (or, on a
software rasteriser, the host-side target matrices of ``engine.render.host_morph``),
material textures. One upload is shared by every model instance of the same asset
(refcounted). Made on the render thread from what ``engine.render.upload_data`` worked
out beforehand (there, or aside)."""

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
from engine.render.edge_capture import triangle_neighbours
from engine.render.mipmaps import upload_mipmaps
from engine.render.shaders import DELTA_TEXTURE_WIDTH
from engine.render.upload_data import PrimitiveData, UploadData

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
    # Every vertex attribute as ``vao`` binds it: an outline pass's vertex arrays (per
    # program, made on first use) bind the same buffers.
    content: list[tuple[Any, ...]] = field(default_factory=list)
    outline_vaos: dict[int, moderngl.VertexArray] = field(default_factory=dict)
    _neighbours: np.ndarray | None = field(default=None, init=False, repr=False)

    def neighbours(self) -> np.ndarray | None:
        """``edge_capture.triangle_neighbours`` of this primitive as drawn (kept)."""
        if self._neighbours is None and self.edge_source is not None:
            self._neighbours = triangle_neighbours(*self.edge_source)
        return self._neighbours

    def outline_vao(self, ctx: moderngl.Context, program: moderngl.Program) -> moderngl.VertexArray:
        """The vertex array ``program`` (an outline variant) draws this primitive with."""
        vao = self.outline_vaos.get(id(program))
        if vao is None:
            vao = self.outline_vaos[id(program)] = ctx.vertex_array(
                program, self.content, self.index_buffer, 4, skip_errors=True
            )
        return vao

    def release(self) -> None:
        self.vao.release()
        for vao in self.outline_vaos.values():
            vao.release()
        if self.rigid is not None and self.rigid.vao is not None:
            self.rigid.vao.release()
        for b in self.buffers:
            b.release()
        if self.deltas is not None:
            self.deltas.release()


def delta_texture(ctx: moderngl.Context, texels: np.ndarray | None) -> moderngl.Texture | None:
    """A primitive's morph deltas (``upload_data.delta_texels``) as an RGBA32F texture."""
    if texels is None:
        return None
    rows = texels.shape[0]
    if rows > ctx.info["GL_MAX_TEXTURE_SIZE"]:
        raise EngineError(
            errors.RENDER_NOT_SUPPORTED,
            f"morph data too large for one texture ({rows * DELTA_TEXTURE_WIDTH} texels)",
        )
    tex = ctx.texture((DELTA_TEXTURE_WIDTH, rows), 4, texels.tobytes(), dtype="f4")
    tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
    return tex


def color_texture(
    ctx: moderngl.Context,
    image: np.ndarray,
    slot: TextureSlot | None = None,
    levels: list[np.ndarray] | None = None,
) -> moderngl.Texture:
    """An RGBA8 image (top row first, as glTF UVs expect: v=0 is the top row), sampled
    as ``slot`` says (mirrored repeat is drawn as repeat); ``levels``: its smaller levels
    made on the host (``engine.render.mipmaps``; None: the GPU makes them)."""
    slot = slot or TextureSlot()
    h, w = image.shape[:2]
    pixels = np.ascontiguousarray(image, np.uint8)
    tex = ctx.texture((w, h), 4, pixels.tobytes())
    if levels is None or not upload_mipmaps(tex, pixels, levels):
        tex.build_mipmaps()
    mag = moderngl.NEAREST if slot.nearest else moderngl.LINEAR
    tex.filter = (moderngl.LINEAR_MIPMAP_LINEAR, mag)
    tex.repeat_x, tex.repeat_y = (mode != "clamp" for mode in slot.wrap)
    return tex


class GpuAsset:
    """Everything of one asset on the GPU, made from its ``UploadData`` (render thread);
    each primitive built for the lit shader variant ``program_for(material, primitive,
    skinned)`` picks for it (``skinned`` False: the one without skin code)."""

    def __init__(
        self,
        ctx: moderngl.Context,
        program_for: Callable[[GltfMaterial | None, GltfPrimitive, bool], moderngl.Program],
        data: UploadData,
    ) -> None:
        asset = self.asset = data.asset
        self.serial = next(_SERIALS)  # told apart from an asset later at the same id()
        self._program_for = program_for
        self.refcount = 0
        self.textures = [
            None if m.base_color_texture is None
            else color_texture(ctx, m.base_color_texture, m.base_color_slot, levels)
            for m, levels in zip(asset.materials, data.base_mips, strict=True)
        ]  # fmt: skip
        self.emissive_textures = [
            None if m.emissive_texture is None
            else color_texture(ctx, m.emissive_texture, m.emissive_slot, levels)
            for m, levels in zip(asset.materials, data.emissive_mips, strict=True)
        ]  # fmt: skip
        self.matcap_textures = [  # MToon's, sampled only where the material is MToon
            None if m.matcap_texture is None or m.toon is None
            else color_texture(ctx, m.matcap_texture, m.matcap_slot, levels)
            for m, levels in zip(asset.materials, data.matcap_mips, strict=True)
        ]  # fmt: skip
        self.host_targets = data.host_targets
        self.meshes = [[self._primitive(ctx, p) for p in prims] for prims in data.meshes]
        for mesh_targets, prims in zip(self.host_targets, self.meshes, strict=True):
            for k, prim in enumerate(prims):
                if mesh_targets is not None and mesh_targets.parts[k] is not None:
                    prim.host_part = k

    def _primitive(self, ctx: moderngl.Context, data: PrimitiveData) -> GpuPrimitive:
        prim = data.source
        program = self._program_for(_material(self.asset, prim), prim, True)
        vbo = ctx.buffer(data.vertices)
        content: list[tuple[Any, ...]] = [(vbo, "3f 3f 2f", "in_position", "in_normal", "in_uv")]
        static: list[tuple[Any, ...]] = [(vbo, "24x 2f", "in_uv")]  # skips position, normal
        if "in_uv" not in program:  # a variant sampling no texture reads no UVs
            content, static = [(vbo, "3f 3f 8x", "in_position", "in_normal")], []
        buffers = [vbo]
        if data.colors is not None:  # the variant reads them (renderer.lit_variant)
            colors = ctx.buffer(data.colors)
            content.append((colors, "4f", "in_color"))
            static.append(content[-1])
            buffers.append(colors)
        if data.uvs1 is not None and "in_uv1" in program:
            uv1 = ctx.buffer(data.uvs1)
            content.append((uv1, "2f", "in_uv1"))
            static.append(content[-1])
            buffers.append(uv1)
        unskinned, unskinned_static = list(content), list(static)
        skin = data.skin
        if skin is not None:
            skin_vbo = ctx.buffer(skin.vertices)
            content.append((skin_vbo, skin.layout, *skin.names))
            static.append(content[-1])
            buffers.append(skin_vbo)
        ibo = ctx.buffer(data.indices.tobytes())
        buffers.insert(1, ibo)
        vao = ctx.vertex_array(program, content, ibo, index_element_size=4)
        rigid = None
        if skin is not None and skin.runs:
            rigid_program = self._program_for(_material(self.asset, prim), prim, False)
            rigid = RigidDraw(
                rigid_program,
                None if data.host else ctx.vertex_array(rigid_program, unskinned, ibo, 4),
                unskinned_static,
                skin.runs,
                skin.skinned_first,
            )
        gpu = GpuPrimitive(
            vao,
            program,
            buffers,
            delta_texture(ctx, data.deltas),
            prim.vertex_count,
            prim.material,
            data.bounds,
            data.morph_indices,
            len(data.indices),
            0 if skin is None else skin.influences,
            None if skin is None else skin.used_joints,
            host_rest=data.host_rest,
            static_content=static if data.host else [],
            index_buffer=ibo,
            rigid=rigid,
            edge_source=(data.indices, prim.positions),
            content=content,
        )
        gpu._neighbours = data.neighbours
        return gpu

    def release(self) -> None:
        for prims in self.meshes:
            for p in prims:
                p.release()
        for t in [*self.textures, *self.emissive_textures, *self.matcap_textures]:
            if t is not None:
                t.release()


def _material(asset: GltfAsset, prim: GltfPrimitive) -> GltfMaterial | None:
    return asset.materials[prim.material] if prim.material is not None else None
