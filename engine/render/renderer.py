"""Per-context renderer: the lit morph shader, the background, shared GPU assets."""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, wait
from dataclasses import replace

import moderngl
import numpy as np

from engine.gltf import GltfAsset, GltfMaterial, GltfPrimitive
from engine.lighting import Lighting
from engine.render.aside import worker
from engine.render.edge_capture import EdgeCapture, StillShape
from engine.render.frame import Frame
from engine.render.gpu import GpuAsset, GpuPrimitive, RigidDraw
from engine.render.gpu_wait import flush_gpu
from engine.render.host_morph import HostMorphs
from engine.render.material_uniforms import material_uniforms, needs_extras
from engine.render.shaders import (
    BACKGROUND_FRAGMENT,
    BACKGROUND_VERTEX,
    MAX_ACTIVE_TARGETS,
    LitVariant,
)
from engine.render.skinning import BOX_CORNERS, JointPalette
from engine.render.upload_data import UploadData, UploadOptions, skin_influences, upload_data

MORPH_BLOCK_BINDING = 0
SKIN_BLOCK_BINDING = 1
DELTAS_UNIT = 0
BASE_TEXTURE_UNIT = 1
EMISSIVE_TEXTURE_UNIT = 2
MATCAP_TEXTURE_UNIT = 3
UPLOAD_WAIT_S = 0.002  # what a frame waits for an upload prepared aside (``acquire``)
MATRIX_CACHE_SIZE = 512  # model matrices whose derived parts are kept (``draw_node``)
_DEFAULT_MATERIAL = GltfMaterial()


# The uniforms begin_frame sets on every program that reads them.
FRAME_UNIFORMS = (
    "u_light_dir", "u_light_color", "u_ambient", "u_exposure", "u_camera_position",
    "u_view_projection", "u_aspect", "u_view_rotation",
)  # fmt: skip


def _aspect(projection: np.ndarray) -> bytes:
    """The projection's x scale over its y (1 / the aspect ratio of a perspective one)."""
    y = float(projection[1, 1])
    return np.float32(float(projection[0, 0]) / y if y else 1.0).tobytes()


def _mat4(m: np.ndarray) -> bytes:
    return np.ascontiguousarray(m.T, np.float32).tobytes()  # GLSL wants column-major


def _mat3(m: np.ndarray) -> bytes:
    return np.ascontiguousarray(m[:3, :3].T, np.float32).tobytes()


def _linear_parts(model_matrix: np.ndarray) -> tuple[float, float, bytes]:
    """Of ``model_matrix``'s 3x3 part: its determinant, the product of its columns'
    lengths, and its inverse as the shader's normal matrix ((inv^T)^T: GLSL reads the
    row-major bytes as columns). Closed forms on Python floats: beside llvmpipe's threads
    the three ``np.linalg`` calls took a median 50 us per node (131 us mean), these 11 us:
    about 1 ms of a four-avatar frame's 24 nodes."""
    (a, b, c), (d, e, f), (g, h, i) = model_matrix[:3, :3].tolist()
    co_a, co_b, co_c = e * i - f * h, f * g - d * i, d * h - e * g  # cofactors of row 0
    det = a * co_a + b * co_b + c * co_c
    lengths = math.sqrt((a * a + d * d + g * g) * (b * b + e * e + h * h) * (c * c + f * f + i * i))
    if det == 0.0:
        return det, lengths, b""
    adjugate = (
        (co_a, c * h - b * i, b * f - c * e),
        (co_b, a * i - c * g, c * d - a * f),
        (co_c, b * g - a * h, a * e - b * d),
    )
    normal = np.array(adjugate, np.float64) / det
    return det, lengths, normal.astype(np.float32).tobytes()


def lit_variant(
    material: GltfMaterial | None, prim: GltfPrimitive, shader_morphs: bool = True
) -> LitVariant:
    """The lit shader variant that draws ``prim`` with ``material``: only the parts it
    uses (a texture exactly where the material has one, TEXCOORD_1 where a sampled
    texture reads it, COLOR_0 where the primitive has it, the target loop where it has
    targets and ``shader_morphs``, not host morphs, blend them; MToon's matcap where
    its material has a matcap texture, whatever its factor: a bind may raise it)."""
    influences = skin_influences(prim)
    colors = prim.colors is not None
    morphs = shader_morphs and bool(prim.targets)
    if material is None:
        return LitVariant(influences=influences, vertex_colors=colors, morph_targets=morphs)
    base = material.base_color_texture is not None
    emissive = material.emissive_texture is not None
    return LitVariant(
        extras=needs_extras(material),
        influences=influences,
        base_texture=base,
        emissive_texture=emissive,
        matcap_texture=material.toon is not None and material.matcap_texture is not None,
        uv1=(base and material.base_color_slot.uv_set == 1)
        or (emissive and material.emissive_slot.uv_set == 1),
        vertex_colors=colors,
        morph_targets=morphs,
        alpha_mask=material.alpha_mode == "MASK",
    )


class MorphWeights:
    """A uniform buffer holding the compact active-target list of one mesh instance."""

    SIZE = 16 + MAX_ACTIVE_TARGETS * 4 * 2

    def __init__(self, ctx: moderngl.Context) -> None:
        self.buffer = ctx.buffer(reserve=self.SIZE)
        self._words = np.zeros(self.SIZE // 4, np.int32)
        self._floats = self._words.view(np.float32)
        self._last = b""
        self.active = 0

    def set(self, weights: np.ndarray) -> None:
        """Upload the non-zero entries of ``weights`` (indexed by the mesh's targets)."""
        active = np.flatnonzero(np.abs(weights) > 1e-6)
        if len(active) > MAX_ACTIVE_TARGETS:  # keep the strongest ones
            strongest = np.argsort(-np.abs(weights[active]), kind="stable")[:MAX_ACTIVE_TARGETS]
            active = np.sort(active[strongest])
        k = len(active)
        self._words[:] = 0
        self._words[0] = k
        self._words[4 : 4 + k] = active
        self._floats[4 + MAX_ACTIVE_TARGETS : 4 + MAX_ACTIVE_TARGETS + k] = weights[active]
        data = self._words.tobytes()
        if data != self._last:  # most frames change weights, idle ones do not
            self.buffer.write(data)
            self._last = data
        self.active = k

    def release(self) -> None:
        self.buffer.release()


class Renderer:
    """Owns shader programs and GPU assets of one GL context. Render thread only."""

    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        # Variants of the lit shader (shaders.LitVariant), compiled when a primitive first
        # needs one.
        self._variants: dict[LitVariant, moderngl.Program] = {}
        self._variant_of: dict[moderngl.Program, LitVariant] = {}
        # Per program, the frame uniforms it does not read (an outline variant reads few).
        self._absent: dict[moderngl.Program, frozenset[str]] = {}
        self._frame_uniforms: dict[str, bytes] = {}  # name -> data, as of begin_frame
        self._lighting_key = b""  # the lights' values, and their uniforms
        self._lighting_data: dict[str, bytes] = {}
        self._variant(LitVariant())  # the plainest (no material, no texture): compiled now
        self._background = ctx.program(
            vertex_shader=BACKGROUND_VERTEX, fragment_shader=BACKGROUND_FRAGMENT
        )
        self._background_vao = ctx.vertex_array(self._background, [])
        self._no_morph = MorphWeights(ctx)
        self._no_morph.set(np.zeros(0, np.float32))
        self._no_skin = JointPalette(ctx)  # a block must be bound even where unread
        # Morph targets blended by numpy instead of the vertex shader (host_morph.py): the
        # cheaper place on a software rasteriser. Set before the first asset is acquired.
        self.host_morphs = False
        # A skinned primitive's triangles that follow one joint drawn without the skin's
        # gathers (gpu.RigidDraw): on a software rasteriser, where they are most of the
        # vertex stage. Set before the first asset is acquired.
        self.rigid_skin = False
        # Texture mipmaps made by numpy (mipmaps.py): a software rasteriser compiles its
        # mipmap blit anew in every context. Set before the first asset is acquired.
        self.host_mipmaps = False
        # Whether this frame's lit draws are captured for the post pass's edge lines
        # (engine.render.edge_capture; the App sets it each frame, from its target).
        self.capture_edges = False
        self.edge_capture: EdgeCapture | None = None  # made on the first such frame
        # A live App's uploads: their host side (engine.render.upload_data) worked out on
        # the ``asset-prep`` thread while frames go on, the model drawn from the first
        # frame after (the App sets it each frame: real time only). Else in place.
        self.upload_aside = False
        self._preparing: dict[int, tuple[Future[UploadData], GltfAsset]] = {}
        # A live App that may switch to the edge lines (``prepare_edges``): each
        # primitive's edge neighbours worked out at upload, each new plan aside.
        self.edges_ahead = False
        # The draw being captured: (group, two-sided, mirrored, still shape: see
        # _draw_faces); None: not captured.
        self._capture: tuple[object, bool, bool, StillShape | None] | None = None
        self._node_serial = 0
        self._capturing = False  # this draw_node call's faces are captured
        self._mirrored_node = False
        self._skinning = False  # the primitive being drawn is skinned
        self._assets: dict[int, GpuAsset] = {}
        self._material_key: tuple[int, int | None, int] | None = None
        # What each program's uniforms hold (``_write``); each material's uniforms per
        # (asset serial, material index, program id).
        self._held: dict[moderngl.Program, dict[str, bytes]] = {}
        self._material_uniforms: dict[tuple[int, int | None, int], dict[str, bytes]] = {}
        # Materials the model being drawn shows in place of its asset's, by index (the same
        # textures and modes, other factors or UV transforms): set by ``ModelRenderer``.
        self.material_overrides: Mapping[int, GltfMaterial] = {}
        self.draw_calls = 0
        # Software rasteriser: flush after each node, with the GIL released (gpu_wait).
        self.flush_per_node = False
        # Model matrix bytes -> (determinant, axis lengths, normal matrix, its mat4 bytes):
        # a skinned avatar's nodes share their entity's matrix, and most stand still.
        self._matrix_parts: dict[bytes, tuple[float, float, bytes, bytes]] = {}
        # The background shaded once into a texture of the target's size, then copied
        # each frame (a memcpy on llvmpipe, where shading it cost 7 ms a frame at 720p).
        self._background_key: tuple | None = None
        self._background_cache: moderngl.Framebuffer | None = None
        # NDC rectangle (x0, y0, x1, y1) the meshes drawn this frame can cover; None: none.
        # The post anti-aliasing pass runs only there (edges alias where geometry is).
        self.drawn_region: tuple[float, float, float, float] | None = None
        # Whether draws grow drawn_region (the App sets it each frame: only a target with
        # a post pass reads it; a skinned node's box costs about 0.2 ms to work out).
        self.track_region = True
        self._view_projection = np.eye(4)
        self._node: tuple[np.ndarray, bytes, bytes] = (np.eye(4), b"", b"")
        # Primitives' ids -> the corners of the box holding them (_box_corners).
        self._corners: dict[tuple[int, ...], np.ndarray | None] = {}
        # (rigid draw, palette version, node matrix) -> its runs' matrices (_rigid_parts)
        self._rigid_cache: dict[tuple[int, int, bytes], list] = {}

    # -- assets ----------------------------------------------------------------
    def acquire(self, asset: GltfAsset) -> GpuAsset | None:
        """Upload ``asset`` once per context; later calls share it. Pair with ``release``.
        None while the upload's host side is being worked out aside (``upload_aside``):
        ask again on a later frame."""
        gpu = self._assets.get(id(asset))
        if gpu is None:
            data = self._upload_data(asset)
            if data is None:
                return None
            gpu = self._assets[id(asset)] = GpuAsset(self.ctx, self._program_for, data)
            if self.edges_ahead:  # (asked for since the data was made: worked out now)
                _work_out_neighbours(gpu)
        gpu.refcount += 1
        return gpu

    def _upload_data(self, asset: GltfAsset) -> UploadData | None:
        """``asset``'s ``UploadData``: made in place, or with ``upload_aside`` on the
        ``asset-prep`` thread (None until it is ready; its error, if any, raised here)."""
        pending = self._preparing.get(id(asset))
        if pending is not None and pending[1] is asset:
            # Each frame gives the upload a moment with the GIL released: a frame loop that
            # spins (frames with little to draw, nothing paced) would otherwise hold the GIL
            # all but its switch interval, and numpy's short calls on the other thread
            # wait that long each (an avatar took over 10 s to land; sound starved too).
            if not wait((pending[0],), timeout=UPLOAD_WAIT_S).done:
                return None
            del self._preparing[id(asset)]
            return pending[0].result()
        options = UploadOptions(
            self.host_morphs, self.rigid_skin, self.host_mipmaps, neighbours=self.edges_ahead
        )
        if not self.upload_aside:
            return upload_data(asset, options)
        # The asset is kept with its future: its id() is the key, and must stay its own.
        future = worker("asset-prep").submit(upload_data, asset, options)
        self._preparing[id(asset)] = (future, asset)
        return None

    def forget(self, asset: GltfAsset) -> None:
        """Drop ``asset``'s upload being prepared aside, if any (its model went before it
        landed; a model of the same asset that still waits submits it again)."""
        pending = self._preparing.pop(id(asset), None)
        if pending is not None:
            pending[0].cancel()  # one already running finishes unused

    def prepare_edges(self) -> None:
        """For a live App that may switch to the edge lines: work out the edge neighbours
        of every asset uploaded, and of each one uploaded from now on, when it is, and the
        plan of each new set of draws aside (``EdgeCapture.plan_aside``). A switch then
        costs its first frame no stall the sound would be heard ahead of (four avatars:
        neighbours some 100 ms on llvmpipe's host, the plan 8)."""
        self.edges_ahead = True
        if self.edge_capture is not None:
            self.edge_capture.plan_aside = True
        for gpu in self._assets.values():
            _work_out_neighbours(gpu)

    def release(self, asset: GltfAsset) -> None:
        gpu = self._assets.get(id(asset))
        if gpu is not None:
            gpu.refcount -= 1
            if gpu.refcount <= 0:
                gpu.release()
                del self._assets[id(asset)]
                self._rigid_cache.clear()  # keyed by its draws' ids, which may be reused
                self._corners.clear()
                self._material_uniforms.clear()

    @property
    def programs(self) -> tuple[moderngl.Program, ...]:
        return tuple(self._variants.values())

    def _program_for(
        self, material: GltfMaterial | None, prim: GltfPrimitive, skinned: bool = True
    ) -> moderngl.Program:
        variant = lit_variant(material, prim, shader_morphs=not self.host_morphs)
        return self._variant(variant if skinned else replace(variant, influences=0))

    def _variant(self, variant: LitVariant) -> moderngl.Program:
        program = self._variants.get(variant)
        if program is None:
            vertex, fragment = variant.sources()
            program = self.ctx.program(
                vertex_shader=vertex,
                fragment_shader=fragment,
                varyings=("gl_Position",),  # what an edge capture records
            )
            if variant.morph_targets:
                program["Morph"].binding = MORPH_BLOCK_BINDING
                program["u_deltas"].value = DELTAS_UNIT
            if variant.influences:
                program["Skin"].binding = SKIN_BLOCK_BINDING
            if variant.base_texture:
                program["u_base_texture"].value = BASE_TEXTURE_UNIT
            if variant.emissive_texture:
                program["u_emissive_texture"].value = EMISSIVE_TEXTURE_UNIT
            if variant.matcap_texture:
                program["u_matcap_texture"].value = MATCAP_TEXTURE_UNIT
            self._variants[variant] = program
            self._variant_of[program] = variant
            self._absent[program] = frozenset(n for n in FRAME_UNIFORMS if n not in program)
            self._write_frame_uniforms(program)
        return program

    def morph_weights(self, gpu: GpuAsset, mesh: int) -> MorphWeights | HostMorphs:
        """Per-instance morph state of ``gpu``'s mesh ``mesh``: a uniform block of active
        targets for the shader, or host-blended vertex buffers (``host_morphs``)."""
        targets = gpu.host_targets[mesh]
        return MorphWeights(self.ctx) if targets is None else HostMorphs(self.ctx, targets)

    def joint_palette(self) -> JointPalette:
        return JointPalette(self.ctx)

    # -- frame -----------------------------------------------------------------
    def begin_frame(self, frame: Frame) -> None:
        """Per-frame uniforms and the background. The target is bound and cleared."""
        self.draw_calls = 0
        self.drawn_region = None
        self._node_serial = 0  # counts this frame's nodes: a capture's groups recur
        if self.capture_edges:
            if self.edge_capture is None:
                drawn = sum(  # every uploaded triangle: the buffer need not grow mid-frame
                    p.index_count // 3
                    for gpu in self._assets.values()
                    for prims in gpu.meshes
                    for p in prims
                )
                self.edge_capture = EdgeCapture(self.ctx, self.edges_ahead, drawn)
            self.edge_capture.begin_frame()
        self._view_projection = frame.view_projection
        lighting = frame.lighting
        self.ctx.disable(moderngl.BLEND)  # a known state, whatever the last frame's components left
        if lighting.background is not None:
            self._draw_background(*lighting.background)
        self.ctx.enable(moderngl.DEPTH_TEST)
        self._frame_uniforms = {
            **self._lighting_uniforms(lighting),
            "u_camera_position": np.asarray(frame.camera_position, np.float32).tobytes(),
            "u_view_projection": _mat4(frame.view_projection),
            "u_aspect": _aspect(frame.projection),
            "u_view_rotation": _mat3(frame.view),  # the matcap's view-space normal
        }
        for lit in self.programs:
            self._write_frame_uniforms(lit)

    def _lighting_uniforms(self, lighting: Lighting) -> dict[str, bytes]:
        """The lights' uniforms, worked out again only when a value changed (the lights
        are edited in place, if at all: their values are the key)."""
        lights = lighting.lights()
        values = [v for light in lights for v in (*light.direction, *light.color, light.intensity)]
        key = np.array([*values, *lighting.ambient, lighting.exposure], np.float64).tobytes()
        if key != self._lighting_key:
            directions = np.array([light.shader_direction() for light in lights], np.float32)
            colors = [np.asarray(light.color, np.float32) * light.intensity for light in lights]
            self._lighting_key, self._lighting_data = (
                key,
                {
                    "u_light_dir": directions.tobytes(),
                    "u_light_color": np.array(colors, np.float32).tobytes(),
                    "u_ambient": np.asarray(lighting.ambient, np.float32).tobytes(),
                    "u_exposure": np.float32(lighting.exposure).tobytes(),
                },
            )
        return self._lighting_data

    def set_view_projection(self, matrix: np.ndarray) -> None:
        """World -> clip for the draws that follow (begin_frame sets the camera's)."""
        self._frame_uniforms["u_view_projection"] = data = _mat4(matrix)
        for lit in self.programs:
            self._write(lit, "u_view_projection", data)

    def _write_frame_uniforms(self, program: moderngl.Program) -> None:
        """This frame's camera and lights (a variant compiled mid-frame gets them too)."""
        absent = self._absent.get(program, frozenset())
        for name, data in self._frame_uniforms.items():
            if name not in absent:
                self._write(program, name, data)

    def _write(self, program: moderngl.Program, name: str, data: bytes) -> None:
        """``program``'s uniform ``name`` set to ``data`` unless it holds it already. Only
        this renderer writes its programs' uniforms, and most hold still from frame to
        frame (camera, lights, a standing node's matrix); on llvmpipe a write beside the
        rasteriser's busy threads took 10-150 us."""
        held = self._held.setdefault(program, {})
        if held.get(name) != data:
            program[name].write(data)
            held[name] = data

    def _draw_background(self, top, bottom) -> None:
        ctx = self.ctx
        target = ctx.fbo
        ctx.disable(moderngl.DEPTH_TEST)
        if target.samples:  # a copy cannot write a multisampled target: shade it
            self._shade_background(top, bottom)
            return
        key = (target.size, tuple(top), tuple(bottom))
        if key != self._background_key:
            self._release_background()
            self._background_cache = ctx.framebuffer([ctx.texture(target.size, 4)])
            self._background_cache.use()
            self._shade_background(top, bottom)
            self._background_key = key
            target.use()
        assert self._background_cache is not None
        ctx.copy_framebuffer(target, self._background_cache)

    def _shade_background(self, top, bottom) -> None:
        self._background["u_top"].value = tuple(top)
        self._background["u_bottom"].value = tuple(bottom)
        self._background_vao.render(moderngl.TRIANGLES, vertices=3)

    def _release_background(self) -> None:
        if self._background_cache is not None:
            for texture in self._background_cache.color_attachments:
                texture.release()
            self._background_cache.release()
        self._background_cache = self._background_key = None

    def draw_node(
        self,
        gpu: GpuAsset,
        prims: Sequence[GpuPrimitive],
        model_matrix: np.ndarray,
        weights: MorphWeights | HostMorphs | None,
        palette: JointPalette | None = None,
        sides: str = "both",
    ) -> None:
        """Draw primitives sharing one model matrix, one set of morph weights and (for a
        skinned node) one joint palette, which then maps to model space. ``sides``: which
        faces of opaque double-sided primitives to draw ("front", "back" or "both"; a
        model draws every front face first and the back faces last, see ``ModelRenderer``)."""
        det, lengths, normal, model = self._parts_of(model_matrix)
        self._node = (model_matrix, normal, model)  # what _draw writes (or builds on)
        # Relative to the axes' lengths: quantized meshes (KHR_mesh_quantization) sit under
        # scales of 1e-5, whose determinant alone is tiny.
        if lengths == 0.0 or abs(det) < 1e-9 * lengths:
            return  # scaled to nothing (or flat): invisible, and its normals are undefined
        if self.track_region and sides != "back":  # the back faces lie inside the front's box
            self._cover(model_matrix, prims, palette)
        self.ctx.front_face = "cw" if det < 0 else "ccw"  # a mirroring transform flips the winding
        self._node_serial += 1
        self._capturing = sides != "back" and self.capture_edges
        self._mirrored_node = det < 0
        # Material state is cached only within this call: other components may change
        # GL state between calls.
        self._material_key = None
        for prim in prims:
            self._draw(gpu, prim, weights, palette, sides)
        if self.flush_per_node:
            flush_gpu()

    def _parts_of(self, model_matrix: np.ndarray) -> tuple[float, float, bytes, bytes]:
        """(determinant, axis lengths, normal matrix bytes, mat4 bytes) of a model matrix."""
        key = model_matrix.tobytes()
        parts = self._matrix_parts.get(key)
        if parts is None:
            if len(self._matrix_parts) >= MATRIX_CACHE_SIZE:  # moving nodes: start afresh
                self._matrix_parts.clear()
            parts = self._matrix_parts[key] = (*_linear_parts(model_matrix), _mat4(model_matrix))
        return parts

    def draw_primitive(
        self,
        gpu: GpuAsset,
        prim: GpuPrimitive,
        model_matrix: np.ndarray,
        weights: MorphWeights | HostMorphs | None,
    ) -> None:
        self.draw_node(gpu, (prim,), model_matrix, weights)  # both sides

    def cover(self, x0: float, y0: float, x1: float, y1: float) -> None:
        """Add an NDC rectangle to ``drawn_region`` (a component that draws its own
        geometry and wants the post pass over it calls this; ``cover(-1, -1, 1, 1)``:
        the whole frame)."""
        r = self.drawn_region
        if r is not None:
            x0, y0, x1, y1 = min(x0, r[0]), min(y0, r[1]), max(x1, r[2]), max(y1, r[3])
        self.drawn_region = (max(x0, -1.0), max(y0, -1.0), min(x1, 1.0), min(y1, 1.0))

    def _cover(
        self,
        model_matrix: np.ndarray,
        prims: Sequence[GpuPrimitive],
        palette: JointPalette | None = None,
    ) -> None:
        corners = self._box_corners(prims, palette)
        if corners is None:
            return
        clip = (self._view_projection @ model_matrix) @ corners.T
        if (clip[3] <= 1e-6).any():  # a corner behind the camera: assume anywhere
            self.cover(-1.0, -1.0, 1.0, 1.0)
            return
        ndc = clip[:2] / clip[3]
        self.cover(ndc[0].min(), ndc[1].min(), ndc[0].max(), ndc[1].max())

    def _box_corners(
        self, prims: Sequence[GpuPrimitive], palette: JointPalette | None
    ) -> np.ndarray | None:
        """The (8, 4) corners of the model-space box holding ``prims`` (None: no box).
        Kept for primitives that no palette moves: their bounds are fixed at upload, and
        working the box out again cost 25 us a node a frame."""
        moved = palette is not None and any(p.used_joints is not None for p in prims)
        key = None if moved else tuple(map(id, prims))
        if key is not None and key in self._corners:
            return self._corners[key]
        boxes = [
            p.bounds
            if palette is None or p.used_joints is None
            else palette.bounds(p.bounds, p.used_joints)
            for p in prims
            if p.bounds is not None
        ]
        corners = None
        if boxes:
            lo = np.min([b[0] for b in boxes], axis=0)
            hi = np.max([b[1] for b in boxes], axis=0)
            corners = np.ones((8, 4))
            corners[:, :3] = np.where(BOX_CORNERS, hi, lo)
        if key is not None:
            self._corners[key] = corners
        return corners

    def _use_material(
        self, gpu: GpuAsset, index: int | None, lit: moderngl.Program
    ) -> GltfMaterial:
        override = self.material_overrides.get(index) if index is not None else None
        if override is not None:
            material = override
        else:
            material = gpu.asset.materials[index] if index is not None else _DEFAULT_MATERIAL
        # Per program too: a material's uniforms live in each shader variant that draws it.
        key = (gpu.serial, index, id(lit))
        if key == self._material_key:  # consecutive primitives often share a material
            return material
        self._material_key = key
        # Worked out once per material and program (an asset is fixed once uploaded, as
        # its buffers and textures are; an override changes by the frame); written where
        # the program holds other values.
        uniforms = None if override is not None else self._material_uniforms.get(key)
        if uniforms is None:
            uniforms = material_uniforms(material, self._variant_of[lit])
            if override is None:
                self._material_uniforms[key] = uniforms
        for name, data in uniforms.items():
            self._write(lit, name, data)
        # A texture exactly where the material has one: its program is the variant that
        # samples it (lit_variant).
        texture = gpu.textures[index] if index is not None else None
        if texture is not None:
            texture.use(BASE_TEXTURE_UNIT)
        emissive = gpu.emissive_textures[index] if index is not None else None
        if emissive is not None:
            emissive.use(EMISSIVE_TEXTURE_UNIT)
        matcap = gpu.matcap_textures[index] if index is not None else None
        if matcap is not None:
            matcap.use(MATCAP_TEXTURE_UNIT)
        if material.double_sided:
            self.ctx.disable(moderngl.CULL_FACE)
        else:
            self.ctx.enable(moderngl.CULL_FACE)
        return material

    def _draw(
        self,
        gpu: GpuAsset,
        prim: GpuPrimitive,
        weights: MorphWeights | HostMorphs | None,
        palette: JointPalette | None,
        sides: str = "both",
    ) -> None:
        skinned = palette is not None and prim.influences > 0
        self._skinning = skinned
        host = weights if isinstance(weights, HostMorphs) else None
        vao = prim.vao
        if host is not None:
            if prim.host_part is not None:
                vao = host.vertex_array(prim)
            weights = None  # the shader's target loop stays empty
        first, count = 0, prim.index_count
        if skinned and prim.rigid is not None:
            assert palette is not None
            rigid = prim.rigid
            rigid_vao = rigid.vao
            if rigid_vao is None:  # the instance's host-morphed vertices
                assert host is not None
                rigid_vao = host.vertex_array(prim, rigid=True)
            material = self._draw_rigid(gpu, prim, rigid, rigid_vao, palette, sides)
            first = rigid.skinned_first
            count -= first
            if not count:
                self.draw_calls += 1
                self._outline(prim, material, host, weights, palette, sides)
                return
        lit = prim.program
        material = self._use_material(gpu, prim.material, lit)
        _, normal, model = self._node
        self._write(lit, "u_model", model)
        self._write(lit, "u_normal_matrix", normal)
        if prim.influences:  # the skinned variant: its Skin block needs a buffer, read or not
            influences = prim.influences if skinned else 0
            self._write(lit, "u_skin_influences", struct.pack("i", influences))
            (
                palette if skinned and palette is not None else self._no_skin
            ).buffer.bind_to_uniform_block(SKIN_BLOCK_BINDING)
        morphed = prim.deltas is not None and weights is not None
        if prim.deltas is not None:  # the target loop's variant (lit_variant)
            prim.deltas.use(DELTAS_UNIT)
            block = weights if weights is not None else self._no_morph
            block.buffer.bind_to_uniform_block(MORPH_BLOCK_BINDING)
            self._write(lit, "u_vertex_count", struct.pack("i", prim.vertex_count))
        self._draw_faces(prim, material, vao, morphed, sides, (first, count))
        self.draw_calls += 1
        self._outline(prim, material, host, weights, palette, sides)

    def _outline(
        self,
        prim: GpuPrimitive,
        material: GltfMaterial,
        host: HostMorphs | None,
        weights: MorphWeights | HostMorphs | None,
        palette: JointPalette | None,
        sides: str,
    ) -> None:
        """MToon's outline of an opaque primitive whose material has one: the whole
        primitive again through the outline variant, its front faces culled, so the hull
        pushed out along the normals shows only around the silhouette (as MToon draws it).
        Once per node (not with the back faces of a two-sided one); never captured.
        ``material``: the one the primitive was just drawn with (``_use_material``)."""
        toon = material.toon
        if toon is None or not toon.outline or sides == "back" or material.alpha_mode == "BLEND":
            return
        main = self._variant_of[prim.program]
        cut = main.alpha_mask  # a cut-out outline samples what cuts it
        variant = LitVariant(
            influences=main.influences,
            morph_targets=main.morph_targets,
            outline=True,
            alpha_mask=cut,
            base_texture=cut and main.base_texture,
            uv1=cut and main.uv1,
            vertex_colors=cut and main.vertex_colors,
        )
        program = self._variant(variant)
        if host is not None and prim.host_part is not None:
            vao = host.outline_array(prim, program)
        else:
            vao = prim.outline_vao(self.ctx, program)
        _, normal, model = self._node
        self._write(program, "u_model", model)
        self._write(program, "u_normal_matrix", normal)
        for name, data in material_uniforms(material, variant).items():
            if name in program:  # a cut-out outline reads its base colour's alpha alone
                self._write(program, name, data)
        if main.influences:
            skinned = palette is not None and prim.influences > 0
            self._write(program, "u_skin_influences", struct.pack("i", prim.influences * skinned))
            joints = palette if skinned and palette is not None else self._no_skin
            joints.buffer.bind_to_uniform_block(SKIN_BLOCK_BINDING)
        if main.morph_targets and prim.deltas is not None:
            prim.deltas.use(DELTAS_UNIT)
            block = weights if isinstance(weights, MorphWeights) else self._no_morph
            block.buffer.bind_to_uniform_block(MORPH_BLOCK_BINDING)
            self._write(program, "u_vertex_count", struct.pack("i", prim.vertex_count))
        ctx = self.ctx
        ctx.enable(moderngl.CULL_FACE)
        ctx.cull_face = "front"
        vao.render(first=0, vertices=prim.index_count)
        ctx.cull_face = "back"
        self._material_key = None  # the next primitive's material is written again
        self.draw_calls += 1

    def _draw_rigid(
        self,
        gpu: GpuAsset,
        prim: GpuPrimitive,
        rigid: RigidDraw,
        vao: moderngl.VertexArray,
        palette: JointPalette,
        sides: str,
    ) -> GltfMaterial:
        """``prim``'s triangles that follow one joint each: per joint, its skinning matrix
        folded into the model matrix, drawn by the variant without skin code (a primitive
        drawn with the node's own matrix writes it again: ``_draw``); returns the material
        they were drawn with."""
        lit = rigid.program
        material = self._use_material(gpu, prim.material, lit)
        # The winding stays the node's, as for the skinned vertices (a joint that mirrors
        # flips its triangles either way).
        for first, count, normal, model in self._rigid_parts(rigid, palette):
            self._write(lit, "u_model", model)
            self._write(lit, "u_normal_matrix", normal)
            self._draw_faces(prim, material, vao, False, sides, (first, count))
        return material

    def _rigid_parts(
        self, rigid: RigidDraw, palette: JointPalette
    ) -> list[tuple[int, int, bytes, bytes]]:
        """Per run of ``rigid`` that is drawn: (first, count, normal matrix, model matrix)
        for the node's matrix and the palette as they are; kept while both stand still."""
        node, _, node_model = self._node
        key = (id(rigid), palette.version, node_model)
        parts = self._rigid_cache.get(key)
        if parts is not None:
            return parts
        parts = []
        joint_matrix = np.eye(4, dtype=np.float32)  # a palette entry as a 4x4
        for joint, first, count in rigid.runs:
            matrix = node
            if 0 <= joint < len(palette.rows):
                joint_matrix[:3] = palette.rows[joint]
                matrix = node @ joint_matrix
            det, lengths, normal, model = self._parts_of(matrix)
            if lengths and abs(det) >= 1e-9 * lengths:  # else scaled to nothing: not drawn
                parts.append((first, count, normal, model))
        if len(self._rigid_cache) >= MATRIX_CACHE_SIZE:
            self._rigid_cache.clear()
        self._rigid_cache[key] = parts
        return parts

    def _draw_faces(
        self,
        prim: GpuPrimitive,
        material: GltfMaterial,
        vao: moderngl.VertexArray,
        morphed: bool,
        sides: str,
        span: tuple[int, int],
    ) -> None:
        """Indices ``span`` (first, count) of ``prim`` as its material draws them."""
        self._capture = None
        if self._capturing and material.alpha_mode != "BLEND":  # a see-through edge: FXAA's
            group = (self._node_serial, id(prim))
            # A part nothing moves but its node: where it cuts through another such part
            # of the node is worked out once (engine.render.crossings).
            source = prim.edge_source
            still = prim.deltas is None and prim.host_part is None and not self._skinning
            shape = (self._node_serial, *source) if still and source is not None else None
            self._capture = (group, material.double_sided, self._mirrored_node, shape)
        if material.alpha_mode == "BLEND":
            ctx = self.ctx
            ctx.enable(moderngl.BLEND)
            # Alpha accumulates as coverage (a + dst * (1 - a)), so a transparent
            # background ends up with correct (premultiplied) alpha for compositing.
            ctx.blend_func = (  # type: ignore[assignment]  # 2 or 4 factors; the stub says 2
                moderngl.SRC_ALPHA,
                moderngl.ONE_MINUS_SRC_ALPHA,
                moderngl.ONE,
                moderngl.ONE_MINUS_SRC_ALPHA,
            )
            self._render(prim, vao, morphed, span)
            ctx.disable(moderngl.BLEND)
        elif material.double_sided:
            self._render_sides(prim, vao, morphed, sides, span)
        else:
            self._render(prim, vao, morphed, span)

    def _render_sides(
        self,
        prim: GpuPrimitive,
        vao: moderngl.VertexArray,
        morphed: bool,
        sides: str,
        span: tuple[int, int],
    ) -> None:
        """An opaque double-sided primitive: its front faces, then its back faces (or one
        of the two). Back faces drawn after the front ones that hide them fail the depth
        test early instead of being shaded and drawn over (on llvmpipe a tenth of a
        four-avatar frame); the pixels are those of one pass with culling off."""
        ctx = self.ctx
        ctx.enable(moderngl.CULL_FACE)
        for culled in {"both": ("back", "front"), "front": ("back",), "back": ("front",)}[sides]:
            ctx.cull_face = culled
            self._render(prim, vao, morphed, span)
            self._capture = None  # every triangle went through in the first pass
        ctx.cull_face = "back"

    def _render(
        self, prim: GpuPrimitive, vao: moderngl.VertexArray, morphed: bool, span: tuple[int, int]
    ) -> None:
        """Indices ``span`` (first, count): the triangles targets move with the bound
        weights, the rest without (a primitive with a morph split is drawn whole)."""
        split = prim.morph_indices
        if not morphed or split is None:
            self._indexed(prim, vao, *span)
            return
        if split:
            self._indexed(prim, vao, 0, split)
        self._no_morph.buffer.bind_to_uniform_block(MORPH_BLOCK_BINDING)
        self._indexed(prim, vao, split, prim.index_count - split)

    def _indexed(
        self, prim: GpuPrimitive, vao: moderngl.VertexArray, first: int, count: int
    ) -> None:
        """Indices ``first`` to ``first + count`` of ``vao``; their triangles captured where
        the edge capture records this draw (``_draw_faces``)."""
        neighbours = prim.neighbours() if self._capture is not None else None
        if neighbours is None:
            vao.render(first=first, vertices=count)
            return
        assert self.edge_capture is not None and self._capture is not None
        group, two_sided, mirrored, shape = self._capture
        self.edge_capture.draw(vao, neighbours, group, first, count, two_sided, mirrored, shape)

    def edge_lines(self) -> np.ndarray:
        """(n, 2, 4) clip-space ends of the edges that showed in this frame's captured
        draws (``engine.render.edge_lines``); the GPU must have finished the frame."""
        if self.edge_capture is None or not self.capture_edges:
            return np.zeros((0, 2, 4), np.float32)
        return self.edge_capture.lines()

    def close(self) -> None:
        """Release every GL object this renderer made (assets included)."""
        for _, asset in list(self._preparing.values()):
            self.forget(asset)
        for gpu in self._assets.values():
            gpu.release()
        self._assets.clear()
        self._no_morph.release()
        self._no_skin.release()
        if self.edge_capture is not None:
            self.edge_capture.release()
        self._release_background()
        for obj in (self._background_vao, self._background):
            obj.release()
        for program in self.programs:
            program.release()
        self._variants.clear()
        self._variant_of.clear()


def _work_out_neighbours(gpu: GpuAsset) -> None:
    for prims in gpu.meshes:
        for prim in prims:
            prim.neighbours()
