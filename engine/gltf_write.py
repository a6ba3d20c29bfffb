"""A small glTF 2.0 writer for generated content (test assets, benchmarks, tools).

Builds a document with pygltflib from numpy arrays and saves it as ``.glb`` (one binary
chunk), or ``.gltf`` with an external ``.bin`` or an embedded data URI.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

_FLOAT, _UINT32, _UINT16 = 5126, 5125, 5123
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963


class GltfBuilder:
    def __init__(self) -> None:
        import pygltflib

        self._g = pygltflib
        self.doc = pygltflib.GLTF2(
            asset=pygltflib.Asset(version="2.0", generator="engine.gltf_write")
        )
        self.doc.scenes = [pygltflib.Scene(nodes=[])]
        self.doc.scene = 0
        self._blob = bytearray()

    # -- raw data --------------------------------------------------------------
    def _view(self, data: bytes, target: int | None = None) -> int:
        while len(self._blob) % 4:
            self._blob.append(0)
        self.doc.bufferViews.append(
            self._g.BufferView(
                buffer=0, byteOffset=len(self._blob), byteLength=len(data), target=target
            )
        )
        self._blob.extend(data)
        return len(self.doc.bufferViews) - 1

    def accessor(
        self, array: np.ndarray, kind: str, indices: bool = False, bounds: bool = False
    ) -> int:
        array = np.ascontiguousarray(array, np.uint32 if indices else np.float32)
        view = self._view(array.tobytes(), _ELEMENT_ARRAY_BUFFER if indices else _ARRAY_BUFFER)
        acc = self._g.Accessor(
            bufferView=view,
            componentType=_UINT32 if indices else _FLOAT,
            count=len(array) if array.ndim > 1 else array.size,
            type=kind,
        )
        if bounds:
            acc.min = array.min(axis=0).tolist()
            acc.max = array.max(axis=0).tolist()
        self.doc.accessors.append(acc)
        return len(self.doc.accessors) - 1

    def zeros(self, count: int, kind: str) -> int:
        """An accessor of ``count`` zero elements with no data at all (glTF reads an
        accessor without a bufferView as zeros): a morph target that moves nothing."""
        self.doc.accessors.append(self._g.Accessor(componentType=_FLOAT, count=count, type=kind))
        return len(self.doc.accessors) - 1

    def joints_accessor(self, joints: np.ndarray) -> int:
        """JOINTS_n: (N, 4) unsigned shorts."""
        data = np.ascontiguousarray(joints, np.uint16)
        view = self._view(data.tobytes(), _ARRAY_BUFFER)
        self.doc.accessors.append(
            self._g.Accessor(bufferView=view, componentType=_UINT16, count=len(data), type="VEC4")
        )
        return len(self.doc.accessors) - 1

    # -- objects ---------------------------------------------------------------
    def add_material(
        self,
        base_color: Sequence[float] = (0.8, 0.8, 0.8, 1.0),
        texture_rgba: np.ndarray | None = None,
        name: str = "",
        double_sided: bool = False,
        alpha_mode: str = "OPAQUE",
    ) -> int:
        g = self._g
        pbr = g.PbrMetallicRoughness(
            baseColorFactor=list(base_color), metallicFactor=0.0, roughnessFactor=0.6
        )
        if texture_rgba is not None:
            from PIL import Image

            png = io.BytesIO()
            Image.fromarray(np.asarray(texture_rgba, np.uint8)).save(png, "PNG")
            self.doc.images.append(
                g.Image(bufferView=self._view(png.getvalue()), mimeType="image/png")
            )
            if not self.doc.samplers:
                self.doc.samplers.append(g.Sampler())
            self.doc.textures.append(g.Texture(source=len(self.doc.images) - 1, sampler=0))
            pbr.baseColorTexture = g.TextureInfo(index=len(self.doc.textures) - 1)
        self.doc.materials.append(
            g.Material(
                name=name, pbrMetallicRoughness=pbr, doubleSided=double_sided, alphaMode=alpha_mode
            )
        )
        return len(self.doc.materials) - 1

    def add_mesh(
        self,
        primitives: Sequence[dict],
        name: str = "",
        target_names: Sequence[str] | None = None,
        weights: Sequence[float] | None = None,
    ) -> int:
        """Each primitive: ``positions``, ``indices`` and optionally ``normals``, ``uvs``,
        ``colors`` (N x 4 linear RGBA), ``material`` (index), ``targets`` (a list of
        ``{"POSITION": d, "NORMAL": d}``; an all-zero delta is written without data),
        ``joints`` + ``weights`` (N x 4: JOINTS_0 / WEIGHTS_0 of a skinned mesh)."""
        g = self._g
        prims = []
        for p in primitives:
            attrs = g.Attributes(POSITION=self.accessor(p["positions"], "VEC3", bounds=True))
            if p.get("normals") is not None:
                attrs.NORMAL = self.accessor(p["normals"], "VEC3")
            if p.get("uvs") is not None:
                attrs.TEXCOORD_0 = self.accessor(p["uvs"], "VEC2")
            if p.get("colors") is not None:
                attrs.COLOR_0 = self.accessor(p["colors"], "VEC4")
            if p.get("joints") is not None:
                attrs.JOINTS_0 = self.joints_accessor(p["joints"])
                attrs.WEIGHTS_0 = self.accessor(p["weights"], "VEC4")
            targets = []
            for t in p.get("targets", []):
                targets.append(
                    {
                        k: self.accessor(v, "VEC3", bounds=k == "POSITION")
                        if np.any(v)
                        else self.zeros(len(v), "VEC3")
                        for k, v in t.items()
                        if v is not None
                    }
                )
            prims.append(
                g.Primitive(
                    attributes=attrs,
                    indices=self.accessor(
                        np.asarray(p["indices"]).reshape(-1), "SCALAR", indices=True
                    ),
                    material=p.get("material"),
                    targets=targets or None,
                )
            )
        mesh = g.Mesh(name=name, primitives=prims, weights=list(weights) if weights else None)
        if target_names:
            mesh.extras = {"targetNames": list(target_names)}
        self.doc.meshes.append(mesh)
        return len(self.doc.meshes) - 1

    def add_node(
        self,
        name: str = "",
        mesh: int | None = None,
        translation: Sequence[float] | None = None,
        rotation: Sequence[float] | None = None,
        scale: Sequence[float] | None = None,
        matrix: np.ndarray | None = None,
        parent: int | None = None,
        skin: int | None = None,
    ) -> int:
        node = self._g.Node(name=name, mesh=mesh, skin=skin)
        if translation is not None:
            node.translation = [float(v) for v in translation]
        if rotation is not None:
            node.rotation = [float(v) for v in rotation]
        if scale is not None:
            node.scale = [float(v) for v in scale]
        if matrix is not None:  # row-major numpy -> glTF column-major list
            node.matrix = np.asarray(matrix, np.float32).T.reshape(-1).tolist()
        self.doc.nodes.append(node)
        index = len(self.doc.nodes) - 1
        if parent is None:
            self.doc.scenes[0].nodes.append(index)
        else:
            parent_node = self.doc.nodes[parent]
            parent_node.children = (parent_node.children or []) + [index]
        return index

    def add_skin(self, joints: Sequence[int], name: str = "", skeleton: int | None = None) -> int:
        """A skin over ``joints`` (node indices) bound where they stand now: each inverse
        bind matrix is the inverse of its joint's current world matrix."""
        world = _world_matrices(self.doc)
        inverse = np.array([np.linalg.inv(world[j]) for j in joints], np.float32)
        # glTF stores each 4x4 column-major: the transpose of our row-major array.
        flat = np.ascontiguousarray(inverse.transpose(0, 2, 1)).reshape(len(joints), 16)
        self.doc.skins.append(
            self._g.Skin(
                name=name or None,
                joints=list(joints),
                inverseBindMatrices=self.accessor(flat, "MAT4"),
                skeleton=skeleton,
            )
        )
        return len(self.doc.skins) - 1

    def require_extension(self, name: str) -> None:
        self.doc.extensionsUsed = sorted({*(self.doc.extensionsUsed or []), name})
        self.doc.extensionsRequired = sorted({*(self.doc.extensionsRequired or []), name})

    # -- output ----------------------------------------------------------------
    def save(self, path: str | Path, embed: bool = False) -> Path:
        """``.glb`` (or ``.vrm``): one file. ``.gltf``: external ``<stem>.bin``, or a data
        URI if ``embed``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = bytes(self._blob)
        if path.suffix.lower() in (".glb", ".vrm"):  # a .vrm is a GLB
            self.doc.buffers = [self._g.Buffer(byteLength=len(blob))]
            self.doc.set_binary_blob(blob)
            self.doc.save_binary(str(path))
        else:
            if embed:
                uri = "data:application/octet-stream;base64," + base64.b64encode(blob).decode()
            else:
                uri = path.with_suffix(".bin").name
                path.with_suffix(".bin").write_bytes(blob)
            self.doc.buffers = [self._g.Buffer(byteLength=len(blob), uri=uri)]
            self.doc.save_json(str(path))
        return path


def _world_matrices(doc: object) -> dict[int, np.ndarray]:
    """World matrices of a pygltflib document's nodes (TRS or matrix), for bind poses."""
    from engine.transform import compose

    nodes = doc.nodes  # type: ignore[attr-defined]
    parent = {c: i for i, n in enumerate(nodes) for c in (n.children or [])}
    world: dict[int, np.ndarray] = {}

    def of(index: int) -> np.ndarray:
        if index not in world:
            n = nodes[index]
            if n.matrix is not None:
                local = np.array(n.matrix, np.float64).reshape(4, 4).T
            else:
                local = compose(
                    n.translation or (0, 0, 0), n.rotation or (0, 0, 0, 1), n.scale or (1, 1, 1)
                ).astype(np.float64)
            world[index] = local if index not in parent else of(parent[index]) @ local
        return world[index]

    for index in range(len(nodes)):
        of(index)
    return world


def pack_glb(doc: dict, blob: bytes | None = None) -> bytes:
    """A GLB container around a JSON document and an optional binary chunk, written
    as-is: no checks, so tests and fuzzers can build deliberately broken files."""
    import json
    import struct

    text = json.dumps(doc, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    chunks = struct.pack("<II", len(text), 0x4E4F534A) + text
    if blob is not None:
        blob = bytes(blob) + b"\0" * (-len(blob) % 4)
        chunks += struct.pack("<II", len(blob), 0x004E4942) + blob
    return b"glTF" + struct.pack("<II", 2, 12 + len(chunks)) + chunks


def unpack_glb(data: bytes) -> tuple[dict, bytes | None]:
    """The JSON document and binary chunk of a well-formed GLB (our own files; the
    loader reads untrusted ones with every length checked)."""
    import json
    import struct

    json_length = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20 : 20 + json_length])
    rest = 20 + json_length
    blob = None
    if rest + 8 <= len(data):
        bin_length = struct.unpack_from("<I", data, rest)[0]
        blob = data[rest + 8 : rest + 8 + bin_length]
    return doc, blob
