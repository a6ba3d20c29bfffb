"""What a loaded glTF 2.0 file is: plain CPU data (numpy arrays) and its scene tree.

``engine.gltf.load_gltf`` builds a ``GltfAsset`` from a file; the renderer uploads it to the
GPU later, on the render thread (``engine.render.gpu``). Hand-built assets (tests, procedural
meshes) use the same classes. Nothing here reads files or touches GL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.gltf_skin import GltfSkin
from engine.transform import Transform


@dataclass(frozen=True)
class TextureSlot:
    """How a material samples one texture: which UV set, the ``KHR_texture_transform``
    (row-major 2x3, applied to the UVs), and the sampler's wrap modes and filter."""

    uv_set: int = 0  # 0: TEXCOORD_0, 1: TEXCOORD_1
    transform: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    wrap: tuple[str, str] = ("repeat", "repeat")  # repeat | clamp | mirror, for s and t
    nearest: bool = False  # magnification filter NEAREST (pixel art); else linear


@dataclass(frozen=True)
class Toon:
    """MToon's two-tone shading: lit colour (the base colour) above the terminator, shade
    colour below it; ``toony`` 1 is a hard step, 0 a smooth ramp; ``shift`` moves the
    terminator (-1..1); ``rim_color`` adds a parametric rim (linear RGB). The outline is
    MToon's inverted hull: the back faces pushed out along the normals by
    ``outline_width`` (model units, or with ``outline_screen`` a fraction of the screen's
    height) in ``outline_color``, lit by ``outline_mix`` of the lights. The matcap
    (``GltfMaterial.matcap_texture``, where there is one) adds ``matcap_factor`` times its
    texel where the view-space normal points, to the rim."""

    shade_color: tuple[float, ...] = (0.0, 0.0, 0.0)  # linear RGB
    toony: float = 0.9
    shift: float = 0.0
    rim_color: tuple[float, ...] = (0.0, 0.0, 0.0)
    # The rim: (1 - N.V + lift) ** power, lit by rim_mix of the lights (MToon's parametric rim).
    rim_power: float = 5.0
    rim_lift: float = 0.0
    rim_mix: float = 1.0
    outline_width: float = 0.0  # 0: no outline
    outline_screen: bool = False
    outline_color: tuple[float, ...] = (0.0, 0.0, 0.0)  # linear RGB
    outline_mix: float = 1.0
    matcap_factor: tuple[float, ...] = (1.0, 1.0, 1.0)  # linear RGB

    @property
    def outline(self) -> bool:
        return self.outline_width > 0


@dataclass
class GltfMaterial:
    name: str = ""
    base_color_factor: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    base_color_texture: np.ndarray | None = None  # HxWx4 uint8, sRGB-encoded, top row first
    alpha_mode: str = "OPAQUE"  # OPAQUE | MASK | BLEND
    alpha_cutoff: float = 0.5
    double_sided: bool = False
    base_color_slot: TextureSlot = field(default_factory=TextureSlot)
    emissive_factor: tuple[float, ...] = (0.0, 0.0, 0.0)  # linear, times emissive strength
    emissive_texture: np.ndarray | None = None  # HxWx4 uint8, sRGB-encoded
    emissive_slot: TextureSlot = field(default_factory=TextureSlot)
    # MToon's matcap (only with ``toon``): HxWx4 uint8, sRGB-encoded; its slot's transform
    # moves the normal's UV (its UV set is unread).
    matcap_texture: np.ndarray | None = None
    matcap_slot: TextureSlot = field(default_factory=TextureSlot)
    unlit: bool = False  # KHR_materials_unlit: base colour as is, no lighting
    toon: Toon | None = None  # MToon, drawn as a two-tone approximation


@dataclass
class MorphTarget:
    positions: np.ndarray  # (N, 3) float32 deltas
    normals: np.ndarray  # (N, 3) float32 deltas (zeros when the file has none)


@dataclass
class GltfPrimitive:
    positions: np.ndarray  # (N, 3) float32
    normals: np.ndarray  # (N, 3) float32 (computed when the file has none)
    uvs: np.ndarray | None  # (N, 2) float32 or None
    indices: np.ndarray  # (M,) uint32, triangles
    material: int | None = None
    targets: list[MorphTarget] = field(default_factory=list)
    colors: np.ndarray | None = None  # (N, 4) float32 linear RGBA (COLOR_0) or None
    # Skinning (JOINTS_0/1, WEIGHTS_0/1): (N, 4|8) uint16 palette indices and float32
    # weights summing to 1 (or all 0: the vertex is not moved), or None.
    joints: np.ndarray | None = None
    skin_weights: np.ndarray | None = None
    uvs1: np.ndarray | None = None  # (N, 2) float32 TEXCOORD_1 or None

    @property
    def vertex_count(self) -> int:
        return len(self.positions)

    @property
    def triangle_count(self) -> int:
        return len(self.indices) // 3

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.positions.min(axis=0), self.positions.max(axis=0)


@dataclass
class GltfMesh:
    name: str
    primitives: list[GltfPrimitive]
    target_names: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)  # default morph weights


@dataclass
class GltfNode:
    name: str
    transform: Transform
    children: list[int] = field(default_factory=list)
    mesh: int | None = None
    skin: int | None = None  # index into GltfAsset.skins: the mesh is drawn skinned
    # The node's ``extensions`` object as parsed JSON (untrusted: e.g. VRMC_node_constraint).
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass
class GltfAsset:
    path: Path
    nodes: list[GltfNode]
    meshes: list[GltfMesh]
    materials: list[GltfMaterial]
    roots: list[int]  # node indices of the default scene
    # The document's root ``extensions`` object as parsed JSON (e.g. ``VRM``, ``VRMC_vrm``),
    # for callers that read conventions the engine does not draw. Untrusted: check every field.
    extensions: dict[str, Any] = field(default_factory=dict)
    extensions_used: list[str] = field(default_factory=list)  # the file's extensionsUsed
    skins: list[GltfSkin] = field(default_factory=list)  # drawn by GPU skinning

    def find_node(self, name: str) -> int | None:
        return next((i for i, n in enumerate(self.nodes) if n.name == name), None)

    def walk(self) -> Iterator[tuple[int, int | None]]:
        """(node index, parent index or None) for the default scene, parents first."""
        stack: list[tuple[int, int | None]] = [(i, None) for i in reversed(self.roots)]
        seen: set[int] = set()
        while stack:
            index, parent = stack.pop()
            if index in seen:  # the loader refuses cycles; this guards hand-built assets
                continue
            seen.add(index)
            yield index, parent
            stack.extend((c, index) for c in reversed(self.nodes[index].children))

    def world_matrices(self) -> dict[int, np.ndarray]:
        world: dict[int, np.ndarray] = {}
        for index, parent in self.walk():
            local = self.nodes[index].transform.local_matrix()
            world[index] = local if parent is None else world[parent] @ local
        return world

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """World-space axis-aligned bounds of every mesh in the default scene (rest pose)."""
        points = []
        for index, matrix in self.world_matrices().items():
            mesh = self.nodes[index].mesh
            if mesh is None:
                continue
            for prim in self.meshes[mesh].primitives:
                lo, hi = prim.bounds()
                corners = np.array(
                    [
                        [x, y, z, 1.0]
                        for x in (lo[0], hi[0])
                        for y in (lo[1], hi[1])
                        for z in (lo[2], hi[2])
                    ]
                )
                points.append((corners @ matrix.T)[:, :3])
        if not points:
            return np.zeros(3, np.float32), np.zeros(3, np.float32)
        allp = np.concatenate(points)
        return allp.min(axis=0).astype(np.float32), allp.max(axis=0).astype(np.float32)

    @property
    def target_names(self) -> list[str]:
        """Every morph target name of every mesh, first appearance first."""
        names: dict[str, None] = {}
        for mesh in self.meshes:
            names.update(dict.fromkeys(mesh.target_names))
        return list(names)
