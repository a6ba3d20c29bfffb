"""``ModelRenderer``: a component drawing a glTF asset with morph targets.

Morph weights live in one float array ordered like ``target_names`` (every target name
of every mesh in the asset, first appearance first). A name shared by several meshes
(a head and its teeth both having ``jawOpen``) drives all of them. Each frame, each mesh
gets the compact list of its non-zero targets in a uniform block and the vertex shader
fetches only those deltas; on a software rasteriser numpy blends them on the render
thread instead (``engine.render.host_morph``: cheaper than llvmpipe's vertex gathers).

Skinned nodes (glTF ``skins``) are posed from the editable ``nodes`` transforms: each
drawn frame the render thread composes every node's world matrix in one batch
(``engine.skeleton``), turns each skin's joints into a palette and uploads it (one
uniform block per skin); the vertex shader blends it after the morphs. Joint nodes are
ordinary nodes: ``model.node("Head").rotation = ...`` turns what the head bone moves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from engine import errors
from engine.errors import EngineError
from engine.gltf import load_gltf
from engine.gltf_asset import GltfAsset, GltfMaterial
from engine.render.frame import Frame
from engine.scene import Component
from engine.skeleton import Skeleton
from engine.transform import Transform

if TYPE_CHECKING:
    from engine.render.gpu import GpuAsset, GpuPrimitive
    from engine.render.host_morph import HostMorphs
    from engine.render.renderer import MorphWeights, Renderer
    from engine.render.skinning import JointPalette


class ModelRenderer(Component):
    def __init__(self, asset: GltfAsset | str | os.PathLike[str]) -> None:
        self.asset = asset if isinstance(asset, GltfAsset) else load_gltf(asset)
        self.target_names: list[str] = self.asset.target_names
        self._target_index = {name: i for i, name in enumerate(self.target_names)}
        # Per mesh: for each of its targets, the index into self.weights.
        self._mesh_targets = [
            np.array([self._target_index[n] for n in mesh.target_names], np.intp)
            for mesh in self.asset.meshes
        ]
        self.weights = np.zeros(len(self.target_names), np.float32)
        for mesh, idx in zip(self.asset.meshes, self._mesh_targets, strict=True):
            if mesh.weights:
                self.weights[idx] = mesh.weights
        # Editable local transforms of the asset's nodes (e.g. turn a head node).
        self.nodes: list[Transform] = [node.transform.copy() for node in self.asset.nodes]
        self._node_index = {node.name: i for i, node in enumerate(self.asset.nodes)}
        self._walk = list(self.asset.walk())
        self._draw_order = self._still_first(self._walk)
        self._skeleton = Skeleton(self.asset)
        # Node index -> skin index, for nodes drawn skinned (every primitive has joints).
        self._skinned: dict[int, int] = {
            i: node.skin
            for i, node in enumerate(self.asset.nodes)
            if node.skin is not None
            and node.mesh is not None
            and all(p.joints is not None for p in self.asset.meshes[node.mesh].primitives)
        }
        self._palettes: dict[int, JointPalette] = {}  # per skin, made on the render thread
        self._name_orders: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}
        self._gpu: GpuAsset | None = None
        self._renderer: Renderer | None = None
        self._mesh_weights: dict[int, MorphWeights | HostMorphs] = {}
        # Per mesh: (opaque primitives, alpha-blended primitives), set at upload.
        # Per mesh: opaque primitives, blended ones, opaque double-sided ones (back faces).
        self._passes: list[tuple[list[GpuPrimitive], ...]] = []
        # A 4x4 applied after the camera's projection (clip space): moves and scales the
        # model on screen without changing its perspective. None: as the camera sees it.
        self.screen_transform: np.ndarray | None = None
        # Materials drawn in place of the asset's, by index: the same textures and modes,
        # other colour factors or UV transforms (a VRM expression's material binds). Set
        # on the render thread, as the weights are.
        self.material_overrides: Mapping[int, GltfMaterial] = {}

    # -- morph weights -----------------------------------------------------------
    def target_index(self, name: str) -> int:
        try:
            return self._target_index[name]
        except KeyError:
            raise EngineError(errors.INVALID_ARGUMENT, f"no morph target named {name!r}") from None

    def set_weight(self, target: str | int, value: float) -> None:
        index = self.target_index(target) if isinstance(target, str) else int(target)
        self.weights[index] = value

    def set_weights(
        self,
        values: Mapping[str, float] | Sequence[float] | np.ndarray,
        names: Sequence[str] | None = None,
    ) -> None:
        """Set many weights at once.

        - a mapping ``{name: weight}``;
        - an array in ``target_names`` order (``names=None``);
        - an array in the order of ``names`` (e.g. the 52 ARKit names): names the asset
          lacks are ignored. The name mapping is computed once per distinct ``names``.
        """
        if isinstance(values, Mapping):
            for name, value in values.items():
                self.set_weight(name, value)
            return
        values = np.asarray(values, np.float32)
        if names is None:
            if len(values) != len(self.weights):
                raise EngineError(
                    errors.INVALID_ARGUMENT,
                    f"expected {len(self.weights)} weights, got {len(values)}",
                )
            self.weights[:] = values
            return
        key = tuple(names)
        order = self._name_orders.get(key)
        if order is None:
            pairs = [
                (i, self._target_index[n]) for i, n in enumerate(key) if n in self._target_index
            ]
            src, dst = (
                (np.array(p, np.intp) for p in zip(*pairs, strict=True))
                if pairs
                else (np.zeros(0, np.intp),) * 2
            )
            order = self._name_orders[key] = (src, dst)
        if len(values) != len(key):
            raise EngineError(
                errors.INVALID_ARGUMENT, f"expected {len(key)} weights, got {len(values)}"
            )
        self.weights[order[1]] = values[order[0]]

    def set_mesh_weights(self, mesh: int | str, values: Sequence[float] | np.ndarray) -> None:
        """Set the weights of one mesh's targets, in that mesh's own target order."""
        if isinstance(mesh, str):
            found = next((i for i, m in enumerate(self.asset.meshes) if m.name == mesh), None)
            if found is None:
                raise EngineError(errors.INVALID_ARGUMENT, f"no mesh named {mesh!r}")
            mesh = found
        targets = self._mesh_targets[mesh]
        values = np.asarray(values, np.float32)
        if len(values) != len(targets):
            raise EngineError(
                errors.INVALID_ARGUMENT,
                f"mesh {mesh} has {len(targets)} targets, got {len(values)} weights",
            )
        self.weights[targets] = values

    # -- nodes -----------------------------------------------------------------
    def node(self, name: str) -> Transform:
        """The editable local transform of the asset node called ``name``."""
        try:
            return self.nodes[self._node_index[name]]
        except KeyError:
            raise EngineError(errors.INVALID_ARGUMENT, f"no node named {name!r}") from None

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Rest-pose bounds in world space (the entity's transform applied)."""
        lo, hi = self.asset.bounds()
        if self.entity is None:
            return lo, hi
        m = self.entity.world_matrix()
        corners = np.array(
            [[x, y, z, 1.0] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
        )
        world = (corners @ m.T)[:, :3]
        return world.min(axis=0), world.max(axis=0)

    @property
    def uploaded(self) -> bool:
        """Whether the asset is on the GPU, so that ``render`` draws it (a live App's
        upload is prepared aside and lands a few frames after the model is added)."""
        return self._gpu is not None

    @property
    def triangle_count(self) -> int:
        return sum(
            p.triangle_count
            for i, _ in self._walk
            if (m := self.asset.nodes[i].mesh) is not None
            for p in self.asset.meshes[m].primitives
        )

    # -- lifecycle -------------------------------------------------------------
    def render(self, frame: Frame) -> None:
        renderer = frame.renderer
        if self._gpu is None:  # first frame: upload on the render thread
            self._renderer = renderer
            gpu = renderer.acquire(self.asset)
            if gpu is None:  # its upload is being prepared aside: drawn once it is
                return
            self._gpu = gpu
            self._passes = [
                (
                    [p for p in prims if not self._blended(p.material)],
                    [p for p in prims if self._blended(p.material)],
                    [p for p in prims if self._two_sided(p.material)],
                )
                for prims in self._gpu.meshes
            ]
        gpu = self._gpu
        if self.screen_transform is not None:  # moved/scaled in the view, after projection
            renderer.set_view_projection(self.screen_transform @ frame.view_projection)
        renderer.material_overrides = self.material_overrides
        try:
            self._draw_nodes(renderer, gpu, np.asarray(frame.camera_position, np.float64))
        finally:
            renderer.material_overrides = {}
            if self.screen_transform is not None:
                renderer.set_view_projection(frame.view_projection)

    def world_matrices(self) -> np.ndarray:
        """(N, 4, 4) float64 asset-space matrices of every node as ``nodes`` pose them now
        (read-only; composed again only where a transform changed)."""
        return self._skeleton.world(self.nodes)

    def _draw_nodes(self, renderer: Renderer, gpu: GpuAsset, eye: np.ndarray) -> None:
        world = self._skeleton.world(self.nodes)  # asset space, every node
        base = (
            self.entity.world_matrix() if self.entity is not None else np.eye(4, dtype=np.float32)
        )
        for skin in set(self._skinned.values()):  # joints may sit anywhere in the walk
            palette = self._palettes.get(skin)
            if palette is None:
                palette = self._palettes[skin] = renderer.joint_palette()
            palette.set(self._skeleton.palette(skin, world))
        blended, back_faces = [], []
        for index, _ in self._draw_order:
            mesh = self.asset.nodes[index].mesh
            if mesh is None:
                continue
            skinned = self._skinned.get(index)
            # A skinned mesh ignores its node's transform: the palette places it.
            matrix = base if skinned is not None else base @ world[index]
            palette = None if skinned is None else self._palettes[skinned]
            weights = self._weights_for(mesh, renderer, gpu)
            opaque, transparent, two_sided = self._passes[mesh]
            renderer.draw_node(gpu, opaque, matrix, weights, palette, "front")
            if two_sided:
                back_faces.append((two_sided, matrix, weights, palette))
            if transparent:
                blended.append((transparent, matrix, weights, palette))
        # The back faces of opaque double-sided primitives (the inside of hair, sleeves,
        # collars) after every front face of the model: where a front face hides them
        # (the skin under the hair's inside) they fail the depth test before shading.
        for prims, matrix, weights, palette in back_faces:
            renderer.draw_node(gpu, prims, matrix, weights, palette, "back")
        # After every opaque primitive of the model, farthest first (blending is ordered).
        for prims, matrix, weights, palette in sorted(
            blended, key=lambda b: -_distance(eye, b[0], b[1])
        ):
            renderer.draw_node(gpu, prims, matrix, weights, palette)

    def _still_first(self, walk: list) -> list:
        """The nodes in the file's order (its early-depth order: occluders first), unless
        that starts with a morphed node: then its still nodes come first (a stable sort).
        With host morphs the render thread blends a morphed node's targets right before
        drawing it; still nodes drawn and flushed before give the software rasteriser
        work meanwhile. An RPM-sized avatar lists its morphed head first: 0.1-0.2 ms of
        its frame. The bundled avatars start with their hair, and keep their order."""
        first = next((node for node, _ in walk if self.asset.nodes[node].mesh is not None), None)
        if first is None or not self._morphed(first):
            return walk
        return sorted(walk, key=lambda item: self._morphed(item[0]))

    def _morphed(self, node: int) -> bool:
        mesh = self.asset.nodes[node].mesh
        return mesh is not None and len(self._mesh_targets[mesh]) > 0

    def _blended(self, material: int | None) -> bool:
        return material is not None and self.asset.materials[material].alpha_mode == "BLEND"

    def _two_sided(self, material: int | None) -> bool:
        """Opaque (or alpha-masked) and double-sided: its back faces are drawn last."""
        return (
            material is not None
            and self.asset.materials[material].double_sided
            and not self._blended(material)
        )

    def _weights_for(
        self, mesh: int, renderer: Renderer, gpu: GpuAsset
    ) -> MorphWeights | HostMorphs | None:
        targets = self._mesh_targets[mesh]
        if not len(targets):
            return None
        block = self._mesh_weights.get(mesh)
        if block is None:
            block = self._mesh_weights[mesh] = renderer.morph_weights(gpu, mesh)
        block.set(self.weights[targets])
        return block

    def dispose(self) -> None:
        for block in self._mesh_weights.values():
            block.release()
        self._mesh_weights.clear()
        for palette in self._palettes.values():
            palette.release()
        self._palettes.clear()
        if self._renderer is None:
            return
        if self._gpu is not None:
            self._renderer.release(self.asset)
            self._gpu = None
        else:  # gone before its upload landed: the work aside is not kept for it
            self._renderer.forget(self.asset)


def _distance(eye: np.ndarray, prims: list[GpuPrimitive], matrix: np.ndarray) -> float:
    """Camera distance of the centre of ``prims``' boxes under ``matrix`` (sort key)."""
    boxes = [p.bounds for p in prims if p.bounds is not None]
    centre = np.mean([b.mean(axis=0) for b in boxes], axis=0) if boxes else np.zeros(3)
    return float(np.linalg.norm((matrix @ np.append(centre, 1.0))[:3] - eye))
