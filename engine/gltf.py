"""glTF 2.0 loading (``.glb`` and ``.gltf`` with external or data-URI buffers) into numpy.

The result is plain CPU data (``GltfAsset``); the renderer uploads it to the GPU later,
on the render thread. Supported: the node hierarchy (TRS or matrix), meshes with several
triangle primitives, positions / normals / UVs / vertex colours / indices of any accessor component
type (normalized or not, strided, sparse), materials (base colour factor and texture,
alpha mode, double-sided), morph targets (position and normal deltas) with names from
``mesh.extras.targetNames``, default mesh weights. A file that *requires* an extension
we do not implement is refused with ``EngineError(UNSUPPORTED_GLTF_EXTENSION)``.
"""

from __future__ import annotations

import base64
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import numpy as np

from engine import errors
from engine.errors import EngineError
from engine.transform import Transform

log = logging.getLogger(__name__)

# Extensions whose requirement we honour. KHR_mesh_quantization only widens the allowed
# attribute component types, which the accessor reader handles in general.
SUPPORTED_REQUIRED_EXTENSIONS = frozenset({"KHR_mesh_quantization"})

_COMPONENT_DTYPES = {
    5120: np.int8,
    5121: np.uint8,
    5122: np.int16,
    5123: np.uint16,
    5125: np.uint32,
    5126: np.float32,
}
_TYPE_WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_TRIANGLES = 4


@dataclass
class GltfMaterial:
    name: str = ""
    base_color_factor: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    base_color_texture: np.ndarray | None = None  # HxWx4 uint8, sRGB-encoded, top row first
    alpha_mode: str = "OPAQUE"  # OPAQUE | MASK | BLEND
    alpha_cutoff: float = 0.5
    double_sided: bool = False


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


@dataclass
class GltfAsset:
    path: Path
    nodes: list[GltfNode]
    meshes: list[GltfMesh]
    materials: list[GltfMaterial]
    roots: list[int]  # node indices of the default scene

    def find_node(self, name: str) -> int | None:
        return next((i for i, n in enumerate(self.nodes) if n.name == name), None)

    def walk(self):
        """(node index, parent index or None) for the default scene, parents first."""
        stack = [(i, None) for i in reversed(self.roots)]
        while stack:
            index, parent = stack.pop()
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
                corners = np.array([[x, y, z, 1.0] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
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


def load_gltf(path: str | Path) -> GltfAsset:
    """Load a ``.glb`` or ``.gltf`` file. Raises ``EngineError`` with a stable code."""
    import pygltflib

    path = Path(path)
    if not path.is_file():
        raise EngineError(errors.ASSET_NOT_FOUND, f"glTF file not found: {path}")
    try:
        gltf = pygltflib.GLTF2().load(str(path))
    except Exception as exc:  # pygltflib raises many kinds on malformed input
        raise EngineError(errors.INVALID_GLTF, f"{path}: not a readable glTF 2.0 file ({exc})") from exc
    if gltf is None:
        raise EngineError(errors.INVALID_GLTF, f"{path}: not a readable glTF 2.0 file")
    unsupported = [e for e in (gltf.extensionsRequired or []) if e not in SUPPORTED_REQUIRED_EXTENSIONS]
    if unsupported:
        raise EngineError(
            errors.UNSUPPORTED_GLTF_EXTENSION,
            f"{path}: requires unsupported glTF extension(s) {', '.join(unsupported)}",
        )
    try:
        return _Reader(gltf, path).asset()
    except EngineError:
        raise
    except (IndexError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise EngineError(errors.INVALID_GLTF, f"{path}: malformed glTF ({type(exc).__name__}: {exc})") from exc


class _Reader:
    def __init__(self, gltf, path: Path) -> None:
        self.gltf = gltf
        self.path = path
        self.buffers = [self._buffer_bytes(i, b) for i, b in enumerate(gltf.buffers)]

    def asset(self) -> GltfAsset:
        g = self.gltf
        nodes = [self._node(i, n) for i, n in enumerate(g.nodes)]
        if g.scenes:
            roots = list(g.scenes[g.scene or 0].nodes or [])
        else:
            children = {c for n in nodes for c in n.children}
            roots = [i for i in range(len(nodes)) if i not in children]
        return GltfAsset(
            path=self.path,
            nodes=nodes,
            meshes=[self._mesh(i, m) for i, m in enumerate(g.meshes)],
            materials=[self._material(i, m) for i, m in enumerate(g.materials)],
            roots=roots,
        )

    # -- raw data --------------------------------------------------------------
    def _uri_bytes(self, uri: str) -> bytes:
        if uri.startswith("data:"):
            header, _, payload = uri.partition(",")
            return base64.b64decode(payload) if header.endswith(";base64") else unquote(payload).encode()
        file = self.path.parent / unquote(uri)
        if not file.is_file():
            raise EngineError(errors.ASSET_NOT_FOUND, f"{self.path}: referenced file not found: {file}")
        return file.read_bytes()

    def _buffer_bytes(self, index: int, buffer) -> bytes:
        if buffer.uri is None:  # the GLB binary chunk
            blob = self.gltf.binary_blob()
            if blob is None:
                raise EngineError(errors.INVALID_GLTF, f"{self.path}: buffer {index} has no data")
            return bytes(blob)
        return self._uri_bytes(buffer.uri)

    def _view_bytes(self, view_index: int) -> tuple[bytes, int, int | None]:
        view = self.gltf.bufferViews[view_index]
        return self.buffers[view.buffer], view.byteOffset or 0, view.byteStride

    def accessor(self, index: int) -> np.ndarray:
        """Accessor contents as an (count, width) array (float32 when normalized)."""
        acc = self.gltf.accessors[index]
        dtype = np.dtype(_COMPONENT_DTYPES[acc.componentType])
        width = _TYPE_WIDTHS[acc.type]
        if acc.bufferView is None:
            data = np.zeros((acc.count, width), dtype)
        else:
            buf, offset, stride = self._view_bytes(acc.bufferView)
            offset += acc.byteOffset or 0
            stride = stride or dtype.itemsize * width
            data = np.ndarray((acc.count, width), dtype, buffer=buf, offset=offset, strides=(stride, dtype.itemsize)).copy()
        if acc.sparse is not None and acc.sparse.count:
            sp = acc.sparse
            ibuf, ioff, _ = self._view_bytes(sp.indices.bufferView)
            idx = np.frombuffer(ibuf, _COMPONENT_DTYPES[sp.indices.componentType], sp.count, ioff + (sp.indices.byteOffset or 0))
            vbuf, voff, _ = self._view_bytes(sp.values.bufferView)
            values = np.frombuffer(vbuf, dtype, sp.count * width, voff + (sp.values.byteOffset or 0))
            data[idx.astype(np.int64)] = values.reshape(sp.count, width)
        if acc.normalized and dtype.kind in "iu":
            scale = float(np.iinfo(dtype).max)
            data = np.maximum(data.astype(np.float32) / scale, -1.0)
        return data

    def _floats(self, index: int, width: int) -> np.ndarray:
        data = self.accessor(index)
        return np.ascontiguousarray(data[:, :width], dtype=np.float32)

    # -- objects ---------------------------------------------------------------
    def _node(self, index: int, node) -> GltfNode:
        if node.matrix is not None and list(node.matrix) != [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]:
            # glTF matrices are column-major.
            transform = Transform(matrix=np.array(node.matrix, dtype=np.float32).reshape(4, 4).T)
        else:
            transform = Transform(
                node.translation or (0, 0, 0), node.rotation or (0, 0, 0, 1), node.scale or (1, 1, 1)
            )
        return GltfNode(node.name or f"node{index}", transform, list(node.children or []), node.mesh)

    def _mesh(self, index: int, mesh) -> GltfMesh:
        prims = []
        for prim in mesh.primitives:
            if (prim.mode if prim.mode is not None else _TRIANGLES) != _TRIANGLES:
                log.warning("%s: mesh %s: skipping a non-triangle primitive (mode %s)", self.path, index, prim.mode)
                continue
            prims.append(self._primitive(prim))
        target_count = max((len(p.targets) for p in prims), default=0)
        # The convention is mesh.extras.targetNames; some exporters put them on the first primitive.
        sources = [mesh.extras, *(p.extras for p in mesh.primitives[:1])]
        names = next((list(e["targetNames"]) for e in sources if isinstance(e, dict) and e.get("targetNames")), [])
        if len(names) != target_count:
            if names:
                log.warning("%s: mesh %s has %d target names for %d targets", self.path, index, len(names), target_count)
            names = (names + [f"target{i}" for i in range(len(names), target_count)])[:target_count]
        weights = list(mesh.weights or [0.0] * target_count)[:target_count]
        return GltfMesh(mesh.name or f"mesh{index}", prims, names, [float(w) for w in weights])

    def _primitive(self, prim) -> GltfPrimitive:
        attrs = prim.attributes
        if attrs.POSITION is None:
            raise EngineError(errors.INVALID_GLTF, f"{self.path}: a primitive has no POSITION")
        positions = self._floats(attrs.POSITION, 3)
        n = len(positions)
        if prim.indices is not None:
            indices = self.accessor(prim.indices).reshape(-1).astype(np.uint32)
        else:
            indices = np.arange(n, dtype=np.uint32)
        indices = indices[: len(indices) // 3 * 3]
        if len(indices) and int(indices.max()) >= n:
            raise EngineError(errors.INVALID_GLTF, f"{self.path}: index out of range ({int(indices.max())} >= {n})")
        normals = self._floats(attrs.NORMAL, 3) if attrs.NORMAL is not None else smooth_normals(positions, indices)
        uvs = self._floats(attrs.TEXCOORD_0, 2) if attrs.TEXCOORD_0 is not None else None
        colors = None
        if attrs.COLOR_0 is not None:
            rgba = self._floats(attrs.COLOR_0, 4)
            colors = np.ones((n, 4), np.float32)
            colors[:, : rgba.shape[1]] = rgba  # VEC3 colours get alpha 1
        targets = []
        for target in prim.targets or []:
            get = target.get if isinstance(target, dict) else lambda k, t=target: getattr(t, k, None)
            pos = get("POSITION")
            nrm = get("NORMAL")
            targets.append(
                MorphTarget(
                    self._floats(pos, 3) if pos is not None else np.zeros((n, 3), np.float32),
                    self._floats(nrm, 3) if nrm is not None else np.zeros((n, 3), np.float32),
                )
            )
        return GltfPrimitive(positions, normals, uvs, indices, prim.material, targets, colors)

    def _material(self, index: int, mat) -> GltfMaterial:
        pbr = mat.pbrMetallicRoughness
        factor = tuple(pbr.baseColorFactor) if pbr and pbr.baseColorFactor else (1.0, 1.0, 1.0, 1.0)
        texture = None
        if pbr and pbr.baseColorTexture is not None:
            texture = self._texture_image(pbr.baseColorTexture.index)
        return GltfMaterial(
            name=mat.name or f"material{index}",
            base_color_factor=tuple(float(v) for v in factor),
            base_color_texture=texture,
            alpha_mode=mat.alphaMode or "OPAQUE",
            alpha_cutoff=float(mat.alphaCutoff if mat.alphaCutoff is not None else 0.5),
            double_sided=bool(mat.doubleSided),
        )

    def _texture_image(self, texture_index: int) -> np.ndarray | None:
        from PIL import Image

        source = self.gltf.textures[texture_index].source
        if source is None:
            return None
        image = self.gltf.images[source]
        if image.bufferView is not None:
            buf, offset, _ = self._view_bytes(image.bufferView)
            data = buf[offset : offset + self.gltf.bufferViews[image.bufferView].byteLength]
        elif image.uri:
            data = self._uri_bytes(image.uri)
        else:
            return None
        try:
            with Image.open(io.BytesIO(data)) as img:
                return np.asarray(img.convert("RGBA"), dtype=np.uint8).copy()
        except Exception as exc:
            raise EngineError(errors.INVALID_GLTF, f"{self.path}: image {source} cannot be decoded ({exc})") from exc


def smooth_normals(positions: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (for files without a NORMAL attribute)."""
    tri = indices.reshape(-1, 3).astype(np.int64)
    a, b, c = positions[tri[:, 0]], positions[tri[:, 1]], positions[tri[:, 2]]
    face = np.cross(b - a, c - a)
    normals = np.zeros_like(positions)
    for k in range(3):
        np.add.at(normals, tri[:, k], face)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return (normals / np.where(length > 0, length, 1.0)).astype(np.float32)
