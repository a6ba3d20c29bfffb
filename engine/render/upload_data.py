"""What uploading an asset needs worked out on the host, without GL: per drawn primitive
its vertex bytes, indices in draw order, skin layout and rigid runs, morph delta texels
or host targets, bounds and, where asked, edge neighbours; the textures' mipmaps.

Pure numpy over the asset, so any thread may make it. An offline App makes it in place
on the render thread as it first draws the asset; a live App has it made on the
``asset-prep`` thread (``Renderer.upload_aside``) and the render thread then only makes
the GL objects (``GpuAsset``): an avatar added to a kiosk mid-speech stalled its frame
loop for about 80 ms, most of it this work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.gltf import GltfAsset, GltfPrimitive
from engine.render.batching import merge_by_material
from engine.render.edge_capture import triangle_neighbours
from engine.render.host_morph import HostTargets
from engine.render.mipmaps import host_mipmapped, mip_levels
from engine.render.shaders import DELTA_TEXTURE_WIDTH
from engine.render.skinning import rigid_runs


@dataclass(frozen=True)
class UploadOptions:
    """How the renderer draws, which decides what an upload holds (``Renderer``'s flags
    of the same names): targets blended on the host, rigidly bound triangles drawn apart,
    mipmaps made by numpy, edge neighbours worked out with the rest."""

    host_morphs: bool = False
    rigid_skin: bool = False
    host_mipmaps: bool = False
    neighbours: bool = False


@dataclass
class SkinData:
    """The skin attributes of one primitive: per vertex the first set's joints and weights
    (up to 4 each), then the second's; their layout and attribute names."""

    vertices: bytes
    layout: str
    names: tuple[str, ...]
    influences: int  # joints per vertex on the GPU: 1-4 or 8
    used_joints: np.ndarray  # palette entries some vertex weights
    runs: list[tuple[int, int, int]]  # rigid runs (joint, first, count), indices
    skinned_first: int  # where the skinned rest of the indices begins


@dataclass
class PrimitiveData:
    source: GltfPrimitive  # as drawn (primitives sharing a material merged)
    vertices: bytes  # position, normal, uv: 8 float32 a vertex
    colors: bytes | None
    uvs1: bytes | None
    indices: np.ndarray  # uint32, in draw order
    morph_indices: int | None  # the triangles targets move come first (None: no split)
    host: bool  # its targets blended on the host
    skin: SkinData | None
    bounds: np.ndarray | None  # model-space box at any morph weights in 0..1
    deltas: np.ndarray | None  # shader morphs: (rows, DELTA_TEXTURE_WIDTH, 4) float32
    host_rest: np.ndarray | None  # host morphs: rest positions and normals (n, 6)
    neighbours: np.ndarray | None  # edge neighbours, where asked for


@dataclass
class UploadData:
    asset: GltfAsset
    options: UploadOptions
    host_targets: list[HostTargets | None]  # per mesh (None: shader morphs or none)
    meshes: list[list[PrimitiveData]]
    # Per material: the base colour, emissive and matcap textures' smaller levels, made
    # on the host (None: the GPU makes them, or no texture; ``engine.render.mipmaps``).
    base_mips: list[list[np.ndarray] | None]
    emissive_mips: list[list[np.ndarray] | None]
    matcap_mips: list[list[np.ndarray] | None]


def upload_data(asset: GltfAsset, options: UploadOptions) -> UploadData:
    """Everything of ``asset``'s upload that needs no GL (any thread)."""
    drawn = [merge_by_material(mesh.primitives, asset.materials) for mesh in asset.meshes]
    host_targets = [
        HostTargets(prims) if options.host_morphs and any(p.targets for p in prims) else None
        for prims in drawn
    ]

    def mips(image: np.ndarray | None) -> list[np.ndarray] | None:
        if image is None or not options.host_mipmaps or not host_mipmapped(image):
            return None
        return mip_levels(np.ascontiguousarray(image, np.uint8))

    return UploadData(
        asset,
        options,
        host_targets,
        [[_primitive(p, options) for p in prims] for prims in drawn],
        [mips(m.base_color_texture) for m in asset.materials],
        [mips(m.emissive_texture) for m in asset.materials],
        [mips(m.matcap_texture) for m in asset.materials],
    )


def _primitive(prim: GltfPrimitive, options: UploadOptions) -> PrimitiveData:
    n = prim.vertex_count
    uvs = prim.uvs if prim.uvs is not None else np.zeros((n, 2), np.float32)
    vertices = np.hstack([prim.positions, prim.normals, uvs]).astype(np.float32).tobytes()
    host = options.host_morphs and bool(prim.targets)
    # Host morphs need no split: the blended vertices cost the shader nothing extra.
    indices, morph_indices = (prim.indices, None) if host else _morphed_first(prim)
    skin = None
    if prim.joints is not None and prim.skin_weights is not None:
        joints, weights = compact_influences(prim)
        influences = joints.shape[1]
        runs: list[tuple[int, int, int]] = []
        skinned_first = 0
        if options.rigid_skin and morph_indices is None:
            indices, runs, skinned_first = rigid_runs(joints, weights, indices)
        # Joints as floats: exact below 2**24, and one float attribute path for all.
        first = min(influences, 4)
        parts = [joints[:, :first], weights[:, :first], joints[:, 4:], weights[:, 4:]]
        names = ("in_joints0", "in_weights0", "in_joints1", "in_weights1")
        layout = [f"{first}f", f"{first}f", "4f", "4f"][: 2 if influences <= 4 else 4]
        skin = SkinData(
            np.hstack(parts).astype(np.float32).tobytes(),
            " ".join(layout),
            names[: len(layout)],
            influences,
            np.unique(prim.joints[prim.skin_weights > 0]).astype(np.intp),
            runs,
            skinned_first,
        )
    indices = np.ascontiguousarray(indices, np.uint32)
    lo, hi = prim.positions.min(axis=0, initial=np.inf), prim.positions.max(axis=0, initial=-np.inf)
    for target in prim.targets:
        lo = lo + np.minimum(target.positions.min(axis=0), 0.0)
        hi = hi + np.maximum(target.positions.max(axis=0), 0.0)
    return PrimitiveData(
        prim,
        vertices,
        None if prim.colors is None else np.ascontiguousarray(prim.colors, np.float32).tobytes(),
        None if prim.uvs1 is None else np.ascontiguousarray(prim.uvs1, np.float32).tobytes(),
        indices,
        morph_indices,
        host,
        skin,
        np.array([lo, hi], np.float64) if n else None,
        None if host else delta_texels(prim),
        np.hstack([prim.positions, prim.normals]).astype(np.float32) if host else None,
        triangle_neighbours(indices, prim.positions) if options.neighbours else None,
    )


def delta_texels(prim: GltfPrimitive) -> np.ndarray | None:
    """All targets' position and normal deltas as the rows of one RGBA32F texture (see the
    shader): (rows, DELTA_TEXTURE_WIDTH, 4); None without targets."""
    if not prim.targets:
        return None
    texels = np.zeros((len(prim.targets), prim.vertex_count, 2, 4), np.float32)
    for t, target in enumerate(prim.targets):
        texels[t, :, 0, :3] = target.positions
        texels[t, :, 1, :3] = target.normals
    flat = texels.reshape(-1, 4)
    rows = -(-len(flat) // DELTA_TEXTURE_WIDTH)
    padded = np.zeros((rows * DELTA_TEXTURE_WIDTH, 4), np.float32)
    padded[: len(flat)] = flat
    return padded.reshape(rows, DELTA_TEXTURE_WIDTH, 4)


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
