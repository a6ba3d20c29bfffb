"""glTF 2.0 loading (``.glb`` and ``.gltf`` with external or data-URI buffers) into numpy.

The result is plain CPU data (``GltfAsset``); the renderer uploads it to the GPU later,
on the render thread. Supported: the node hierarchy (TRS or matrix), meshes with several
triangle primitives, positions / normals / two UV sets / vertex colours / indices of any
accessor component type (normalized or not, strided, sparse; ``KHR_mesh_quantization``),
materials (``engine.gltf_material``), morph targets (position and normal deltas) with
names from ``mesh.extras.targetNames``, default mesh weights, skins (``engine.gltf_skin``:
joints, inverse bind matrices, ``JOINTS_0/1`` + ``WEIGHTS_0/1``); compressed files through
their decoders' modules: ``engine.gltf_meshopt`` (``EXT_meshopt_compression``),
``engine.gltf_draco`` (``KHR_draco_mesh_compression``), ``engine.ktx2``
(``KHR_texture_basisu``); WebP and AVIF images (``EXT_texture_webp``, ``EXT_texture_avif``:
what ``gltf-transform optimize --texture-compress webp|avif`` writes) through Pillow. A file that
*requires* an extension we do not implement (or whose decoder is not installed) is refused
with ``EngineError(UNSUPPORTED_GLTF_EXTENSION)``.

Files are untrusted input (avatars are downloaded): the GLB container and JSON are read
here with every length checked, and ``engine.gltf_validate`` checks the whole document
(indices, node cycles, byte ranges, ``GltfLimits``, external uris confined to the file's
folder) before anything is allocated or opened for it. The classes of the result live in
``engine.gltf_asset``.

Over 400 lines on purpose: one job, reading every part of a glTF the engine draws (the
GLB container, accessors, nodes, meshes, materials, images), each checked as it is read.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import logging
import os
import struct
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np

from engine import errors, gltf_draco, gltf_meshopt, ktx2
from engine.errors import EngineError
from engine.gltf_asset import (
    GltfAsset,
    GltfMesh,
    GltfNode,
    GltfPrimitive,
    MorphTarget,
)
from engine.gltf_asset import (
    GltfMaterial as GltfMaterial,  # re-exported: callers import it from here
)
from engine.gltf_material import READ as MATERIAL_EXTENSIONS
from engine.gltf_material import read_material, vrm0_material_properties
from engine.gltf_skin import check_joint_range, check_skins, read_influences, read_skins
from engine.gltf_validate import (
    DEFAULT_LIMITS,
    TEXTURE_SOURCE_EXTENSIONS,
    GltfLimits,
    parse_json,
    read_confined,
    resolve_uri,
    validate,
)
from engine.transform import Transform

log = logging.getLogger(__name__)

# Extensions whose requirement we honour. KHR_mesh_quantization only widens the allowed
# attribute component types, which the accessor reader handles in general; the decoders
# count only where their package is installed (the ``compressed`` extra).
WEBP, AVIF = "EXT_texture_webp", "EXT_texture_avif"
# Image formats a texture names through an extension: Pillow's format, the module it needs.
IMAGE_EXTENSIONS = {WEBP: ("WEBP", "PIL._webp"), AVIF: ("AVIF", "PIL._avif")}
_UNDECODED = {  # why a texture an optional extension names is left out
    ktx2.EXTENSION: "KTX 2 and no transcoder is installed",
    WEBP: "WebP and this Pillow cannot decode it",
    AVIF: "AVIF and this Pillow cannot decode it",
}
DECODERS = {
    gltf_meshopt.EXTENSION: gltf_meshopt.available(),
    gltf_draco.EXTENSION: gltf_draco.available(),
    ktx2.EXTENSION: ktx2.available(),
    **{
        name: importlib.util.find_spec(module) is not None  # Pillow built with its codec
        for name, (_, module) in IMAGE_EXTENSIONS.items()
    },
}
# What a file may require: a file requiring KHR_texture_transform or KHR_materials_unlit
# was refused although both are drawn.
SUPPORTED_REQUIRED_EXTENSIONS = frozenset(
    {"KHR_mesh_quantization", *MATERIAL_EXTENSIONS, *(name for name, ok in DECODERS.items() if ok)}
)

_COMPONENT_DTYPES = {
    5120: np.int8,
    5121: np.uint8,
    5122: np.int16,
    5123: np.uint16,
    5125: np.uint32,
    5126: np.float32,
}
_TYPE_WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_TRIANGLES, _STRIP, _FAN = 4, 5, 6
_TRIANGLE_MODES = (_TRIANGLES, _STRIP, _FAN)


def load_gltf(path: str | os.PathLike[str], limits: GltfLimits = DEFAULT_LIMITS) -> GltfAsset:
    """Load a ``.glb`` or ``.gltf`` file. Raises ``EngineError`` with a stable code.

    The file is untrusted: the whole document is validated (``engine.gltf_validate``)
    before anything is allocated for it, external files must lie in the file's own folder,
    and ``limits`` bound what one load may read and allocate."""
    path = Path(path)
    if not path.is_file():
        raise EngineError(errors.ASSET_NOT_FOUND, f"glTF file not found: {path}", path=str(path))
    doc, blob = read_document(path, limits)
    required = doc.get("extensionsRequired")
    unsupported = (
        [e for e in required if not isinstance(e, str) or e not in SUPPORTED_REQUIRED_EXTENSIONS]
        if isinstance(required, list)
        else []
    )
    if unsupported and all(isinstance(e, str) for e in unsupported):
        missing = [e for e in unsupported if e in DECODERS]
        hint = (
            f" ({', '.join(missing)}: pip install 'avatarkit[compressed]' adds the decoders)"
            if missing
            else ""
        )
        raise EngineError(
            errors.UNSUPPORTED_GLTF_EXTENSION,
            f"{path}: requires unsupported glTF extension(s) {', '.join(unsupported)}{hint}",
            path=str(path),
            field="extensionsRequired",
        )
    validate(doc, path, limits, None if blob is None else len(blob))
    check_skins(doc, path)
    try:
        return _Reader(doc, blob, path, limits).asset()
    except EngineError:
        raise
    except (
        MemoryError
    ) as exc:  # the budget should make this unreachable; never let it escape uncoded
        raise EngineError(
            errors.GLTF_LIMIT_EXCEEDED, f"{path}: out of memory while loading", path=str(path)
        ) from exc
    except (IndexError, KeyError, ValueError, TypeError, AttributeError, OverflowError) as exc:
        raise EngineError(
            errors.INVALID_GLTF,
            f"{path}: malformed glTF ({type(exc).__name__}: {exc})",
            path=str(path),
        ) from exc


_GLB_MAGIC = b"glTF"
_CHUNK_JSON, _CHUNK_BIN = 0x4E4F534A, 0x004E4942


def read_document(
    path: Path, limits: GltfLimits = DEFAULT_LIMITS
) -> tuple[dict[str, Any], memoryview | None]:
    """The JSON document and the GLB binary chunk (None for ``.gltf``). Every length in
    the GLB header and chunk headers is checked against the real file size first; the
    document itself is not validated (``load_gltf`` does that): treat it as untrusted."""
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise EngineError(
            errors.GLTF_LIMIT_EXCEEDED,
            f"{path}: {size} bytes exceed the limit of {limits.max_file_bytes}",
            path=str(path),
        )
    data = memoryview(path.read_bytes())
    if data[:4] != _GLB_MAGIC:
        return parse_json(data, path, limits), None

    def bad(message: str) -> EngineError:
        return EngineError(
            errors.INVALID_GLTF, f"{path}: not a valid GLB ({message})", path=str(path)
        )

    if len(data) < 12:
        raise bad("shorter than its 12-byte header")
    version, length = struct.unpack_from("<II", data, 4)
    if version != 2:
        raise bad(f"container version {version}, expected 2")
    if length != len(data):
        raise bad(f"header says {length} bytes, the file has {len(data)}")
    doc: dict[str, Any] | None = None
    blob: memoryview | None = None
    offset = 12
    while offset < len(data):
        if offset + 8 > len(data):
            raise bad(f"truncated chunk header at byte {offset}")
        chunk_length, chunk_type = struct.unpack_from("<II", data, offset)
        start, end = offset + 8, offset + 8 + chunk_length
        if end > len(data):
            raise bad(
                f"chunk at byte {offset} claims {chunk_length} bytes, {len(data) - start} remain"
            )
        if doc is None:
            if chunk_type != _CHUNK_JSON:
                raise bad("the first chunk is not JSON")
            if chunk_length > limits.max_json_bytes:  # refused before it is copied
                raise EngineError(
                    errors.GLTF_LIMIT_EXCEEDED,
                    f"{path}: JSON chunk of {chunk_length} bytes exceeds the limit of "
                    f"{limits.max_json_bytes}",
                    path=str(path),
                )
            # Spec padding is spaces; some exporters pad with NULs, which JSON refuses.
            doc = parse_json(bytes(data[start:end]).rstrip(b"\0"), path, limits)
        elif chunk_type == _CHUNK_BIN and blob is None:
            blob = data[start:end]  # a view, not a copy
        offset = end
    if doc is None:
        raise bad("no JSON chunk")
    return doc, blob


class _Reader:
    """Turns a validated document into numpy arrays, charging every allocation against
    ``limits.max_decoded_bytes`` before it is made."""

    def __init__(
        self, doc: dict[str, Any], blob: memoryview | None, path: Path, limits: GltfLimits
    ) -> None:
        self.doc = doc
        self.path = path
        self.limits = limits
        self.decoded = 0
        self.read = path.stat().st_size
        self.blob = blob
        self.images: dict[
            int, np.ndarray | None
        ] = {}  # decoded once, however many materials use one
        self.buffers = [self._buffer_bytes(i, b) for i, b in enumerate(doc.get("buffers") or [])]
        # Decoded EXT_meshopt_compression bufferViews and KHR_draco_mesh_compression
        # accessors, which stand in for the stored bytes.
        self.views: dict[int, bytes] = {}
        self.decoded_accessors: dict[int, np.ndarray] = {}

    def _charge(self, nbytes: int, what: str) -> None:
        self.decoded += nbytes
        if self.decoded > self.limits.max_decoded_bytes:
            raise EngineError(
                errors.GLTF_LIMIT_EXCEEDED,
                f"{self.path}: decoding {what} would allocate more than "
                f"{self.limits.max_decoded_bytes} bytes",
                path=str(self.path),
                field=what,
            )

    def asset(self) -> GltfAsset:
        d = self.doc
        nodes = [self._node(i, n) for i, n in enumerate(d.get("nodes") or [])]
        scenes = d.get("scenes") or []
        if scenes:
            roots = list(scenes[d.get("scene") or 0].get("nodes") or [])
        else:
            children = {c for n in nodes for c in n.children}
            roots = [i for i in range(len(nodes)) if i not in children]
        vrm0 = vrm0_material_properties(
            d["extensions"] if isinstance(d.get("extensions"), dict) else {}
        )
        materials = [
            read_material(d, i, m, self._texture_image, vrm0.get(m.get("name") or ""))
            for i, m in enumerate(d.get("materials") or [])
        ]
        asset = GltfAsset(
            path=self.path,
            nodes=nodes,
            meshes=[self._mesh(i, m) for i, m in enumerate(d.get("meshes") or [])],
            materials=materials,
            roots=roots,
            extensions=dict(d["extensions"]) if isinstance(d.get("extensions"), dict) else {},
            extensions_used=[e for e in _list(d.get("extensionsUsed")) if isinstance(e, str)],
            skins=read_skins(d, self.accessor, self.path),
        )
        check_joint_range(asset)
        return asset

    # -- raw data --------------------------------------------------------------
    def _uri_bytes(self, uri: str, field: str) -> bytes:
        if uri.startswith("data:"):
            header, _, payload = uri.partition(",")
            try:
                return (
                    base64.b64decode(payload)
                    if header.endswith(";base64")
                    else unquote(payload).encode()
                )
            except ValueError as exc:
                raise EngineError(
                    errors.INVALID_GLTF,
                    f"{self.path}: bad data uri ({exc})",
                    path=str(self.path),
                    field=field,
                ) from None
        file = resolve_uri(
            uri, self.path.parent, self.path, field
        )  # refuses anything outside the folder
        data = read_confined(file, self.limits.max_file_bytes - self.read, self.path, field)
        self.read += len(data)
        return data

    def _buffer_bytes(self, index: int, buffer: dict[str, Any]) -> bytes | memoryview:
        if gltf_meshopt.fallback_buffer(buffer) and (
            buffer.get("uri") is None or DECODERS[gltf_meshopt.EXTENSION]
        ):
            return b""  # a placeholder: compressed views are decoded instead (validated)
        if buffer.get("uri") is None:  # the GLB binary chunk (validated: buffer 0, long enough)
            assert self.blob is not None
            return self.blob
        data = self._uri_bytes(buffer["uri"], f"buffers[{index}].uri")
        if len(data) < buffer["byteLength"]:
            raise EngineError(
                errors.INVALID_GLTF,
                f"{self.path}: buffer {index} has {len(data)} bytes, byteLength says "
                f"{buffer['byteLength']}",
                path=str(self.path),
                field=f"buffers[{index}]",
            )
        return data

    def _view_bytes(self, view_index: int) -> tuple[bytes | memoryview, int, int | None]:
        view = self.doc["bufferViews"][view_index]
        if gltf_meshopt.compressed(view) is not None and DECODERS[gltf_meshopt.EXTENSION]:
            if view_index not in self.views:
                self.views[view_index] = gltf_meshopt.decode_view(
                    view, self.buffers, self._charge, f"bufferViews[{view_index}]", self.path
                )
            return self.views[view_index], 0, view.get("byteStride")
        return self.buffers[view["buffer"]], view.get("byteOffset") or 0, view.get("byteStride")

    def _view(self, view_index: int) -> bytes:
        buf, offset, _ = self._view_bytes(view_index)
        return bytes(buf[offset : offset + self.doc["bufferViews"][view_index]["byteLength"]])

    def accessor(self, index: int) -> np.ndarray:
        """Accessor contents as an (count, width) array (float32 when normalized)."""
        if index in self.decoded_accessors:  # Draco: decoded (and charged) with its primitive
            return self.decoded_accessors[index]
        acc = self.doc["accessors"][index]
        dtype = np.dtype(_COMPONENT_DTYPES[acc["componentType"]])
        width = _TYPE_WIDTHS[acc["type"]]
        count = acc["count"]
        normalized = bool(acc.get("normalized")) and dtype.kind in "iu"
        # The copy, plus the float32 / uint32 array callers convert anything else to.
        converted = 0 if dtype == np.float32 else 4
        self._charge(count * width * (dtype.itemsize + converted), f"accessors[{index}]")
        if acc.get("bufferView") is None:
            data = np.zeros((count, width), dtype)
        else:
            buf, offset, stride = self._view_bytes(acc["bufferView"])
            offset += acc.get("byteOffset") or 0
            stride = stride or dtype.itemsize * width
            data = np.ndarray(
                (count, width), dtype, buffer=buf, offset=offset, strides=(stride, dtype.itemsize)
            ).copy()
        sparse = acc.get("sparse")
        if sparse is not None:
            n = sparse["count"]
            si, sv = sparse["indices"], sparse["values"]
            ibuf, ioff, _ = self._view_bytes(si["bufferView"])
            idx = np.frombuffer(
                ibuf, _COMPONENT_DTYPES[si["componentType"]], n, ioff + (si.get("byteOffset") or 0)
            ).astype(np.int64)
            if n and int(idx.max()) >= count:
                raise EngineError(
                    errors.INVALID_GLTF,
                    f"{self.path}: sparse index {int(idx.max())} out of range (count {count})",
                    path=str(self.path),
                    field=f"accessors[{index}].sparse.indices",
                )
            vbuf, voff, _ = self._view_bytes(sv["bufferView"])
            values = np.frombuffer(vbuf, dtype, n * width, voff + (sv.get("byteOffset") or 0))
            data[idx] = values.reshape(n, width)
        if normalized:
            scale = float(np.iinfo(dtype.name).max)
            data = np.maximum(data.astype(np.float32) / scale, -1.0)
        return data

    def _floats(self, index: int, width: int) -> np.ndarray:
        data = np.ascontiguousarray(self.accessor(index)[:, :width], dtype=np.float32)
        if not np.isfinite(data).all():  # the spec forbids them; NaN poisons bounds and framing
            raise EngineError(
                errors.INVALID_GLTF,
                f"{self.path}: accessor {index} holds values that are not finite (NaN or infinity)",
                path=str(self.path),
                field=f"accessors[{index}]",
            )
        return data

    def _zeros(self, n: int, what: str) -> np.ndarray:
        self._charge(n * 12, what)
        return np.zeros((n, 3), np.float32)

    # -- objects ---------------------------------------------------------------
    def _node(self, index: int, node: dict[str, Any]) -> GltfNode:
        matrix = node.get("matrix")
        if matrix is not None and list(matrix) != [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]:
            # glTF matrices are column-major.
            transform = Transform(matrix=np.array(matrix, dtype=np.float32).reshape(4, 4).T)
        else:
            transform = Transform(
                node.get("translation") or (0, 0, 0),
                node.get("rotation") or (0, 0, 0, 1),
                node.get("scale") or (1, 1, 1),
            )
        extensions = node.get("extensions")
        return GltfNode(
            node.get("name") or f"node{index}",
            transform,
            list(node.get("children") or []),
            node.get("mesh"),
            node.get("skin"),
            extensions if isinstance(extensions, dict) else {},
        )

    def _mesh(self, index: int, mesh: dict[str, Any]) -> GltfMesh:
        prims = []
        for p, prim in enumerate(mesh["primitives"]):
            mode = _TRIANGLES if prim.get("mode") is None else prim["mode"]
            if mode not in _TRIANGLE_MODES:
                log.warning(
                    "%s: mesh %s: skipping a non-triangle primitive (mode %s)",
                    self.path,
                    index,
                    mode,
                )
                continue
            prims.append(self._primitive(prim, f"meshes[{index}].primitives[{p}]", mode))
        target_count = max((len(p.targets) for p in prims), default=0)
        # The convention is mesh.extras.targetNames; some exporters put them on the first primitive.
        sources = [mesh.get("extras"), *(p.get("extras") for p in mesh["primitives"][:1])]
        names = next(
            (
                list(e["targetNames"])
                for e in sources
                if isinstance(e, dict) and _names(e.get("targetNames"))
            ),
            [],
        )
        if len(names) != target_count:
            if names:
                log.warning(
                    "%s: mesh %s has %d target names for %d targets",
                    self.path,
                    index,
                    len(names),
                    target_count,
                )
            names = (names + [f"target{i}" for i in range(len(names), target_count)])[:target_count]
        weights = list(mesh.get("weights") or [0.0] * target_count)[:target_count]
        return GltfMesh(
            mesh.get("name") or f"mesh{index}", prims, names, [float(w) for w in weights]
        )

    def _primitive(self, prim: dict[str, Any], where: str, mode: int = _TRIANGLES) -> GltfPrimitive:
        attrs = prim["attributes"]
        if gltf_draco.compressed(prim) is not None and DECODERS[gltf_draco.EXTENSION]:
            self.decoded_accessors.update(
                gltf_draco.decode_primitive(
                    prim,
                    self.doc["accessors"],
                    len(self.doc.get("bufferViews") or []),
                    self._view,
                    self._charge,
                    where,
                    self.path,
                )
            )
        positions = self._floats(attrs["POSITION"], 3)
        n = len(positions)
        if prim.get("indices") is not None:
            indices = self.accessor(prim["indices"]).reshape(-1).astype(np.uint32)
        else:
            self._charge(n * 4, f"{where}.indices")
            indices = np.arange(n, dtype=np.uint32)
        if mode != _TRIANGLES:
            indices = triangle_list(indices, mode)
        indices = indices[: len(indices) // 3 * 3]
        if len(indices) and int(indices.max()) >= n:
            raise EngineError(
                errors.INVALID_GLTF,
                f"{self.path}: index out of range ({int(indices.max())} >= {n})",
                path=str(self.path),
                field=f"{where}.indices",
            )
        if attrs.get("NORMAL") is not None:
            normals = self._floats(attrs["NORMAL"], 3)
        else:  # face normals (8 bytes of int64 index per corner, 12 per face) + the result
            self._charge(len(indices) * 12 + n * 12, f"{where}.normals")
            normals = smooth_normals(positions, indices)
        uvs = self._floats(attrs["TEXCOORD_0"], 2) if attrs.get("TEXCOORD_0") is not None else None
        uvs1 = self._floats(attrs["TEXCOORD_1"], 2) if attrs.get("TEXCOORD_1") is not None else None
        colors = None
        if attrs.get("COLOR_0") is not None:
            rgba = self._floats(attrs["COLOR_0"], 4)
            self._charge(n * 16, f"{where}.COLOR_0")
            colors = np.ones((n, 4), np.float32)
            colors[:, : rgba.shape[1]] = rgba  # VEC3 colours get alpha 1
        targets = []
        for t, target in enumerate(prim.get("targets") or []):
            pos, nrm = target.get("POSITION"), target.get("NORMAL")
            twhere = f"{where}.targets[{t}]"
            targets.append(
                MorphTarget(
                    self._floats(pos, 3) if pos is not None else self._zeros(n, twhere),
                    self._floats(nrm, 3) if nrm is not None else self._zeros(n, twhere),
                )
            )
        joints, skin_weights = read_influences(attrs, self.accessor)
        return GltfPrimitive(
            positions, normals, uvs, indices, prim.get("material"), targets, colors,
            joints=joints, skin_weights=skin_weights, uvs1=uvs1,
        )  # fmt: skip

    def _texture_image(self, texture_index: int) -> np.ndarray | None:
        texture = self.doc["textures"][texture_index]
        ext = texture.get("extensions")
        ext = ext if isinstance(ext, dict) else {}
        source = texture.get("source")
        # An extension's image (validated like ``source``) wins where it can be decoded;
        # ``source`` is then the fallback for viewers that cannot.
        for name in TEXTURE_SOURCE_EXTENSIONS:
            if isinstance(ext.get(name), dict) and DECODERS[name]:
                source = ext[name].get("source")
        if source is None:
            for name in TEXTURE_SOURCE_EXTENSIONS:
                if isinstance(ext.get(name), dict):  # only where the file does not require it
                    log.warning(
                        "%s: textures[%d] is %s: drawn without it",
                        self.path,
                        texture_index,
                        _UNDECODED[name],
                    )
            return None
        if source not in self.images:
            self.images[source] = self._decode_image(source)
        return self.images[source]

    def _decode_image(self, source: int) -> np.ndarray | None:
        from PIL import Image

        image = self.doc["images"][source]
        field = f"images[{source}]"
        if image.get("bufferView") is not None:
            buf, offset, _ = self._view_bytes(image["bufferView"])
            data = bytes(
                buf[offset : offset + self.doc["bufferViews"][image["bufferView"]]["byteLength"]]
            )
        elif image.get("uri"):
            data = self._uri_bytes(image["uri"], f"{field}.uri")
        else:
            return None
        if ktx2.is_ktx2(data):
            if not DECODERS[ktx2.EXTENSION]:  # only where the file does not require it
                log.warning("%s: %s is KTX 2 and no transcoder is installed", self.path, field)
                return None
            pixels = ktx2.decode(data, self.limits.max_image_pixels, self.path, field)
            self._charge(pixels.nbytes, field)
            return pixels
        # glTF images are PNG or JPEG, and WebP or AVIF in a file that declares their
        # extension: no other of PIL's many decoders sees hostile bytes.
        used = _list(self.doc.get("extensionsUsed"))
        formats = ("PNG", "JPEG") + tuple(
            pil for name, (pil, _) in IMAGE_EXTENSIONS.items() if DECODERS[name] and name in used
        )
        try:
            with Image.open(io.BytesIO(data), formats=formats) as img:
                # The header's size is known before any pixel is decoded: a small PNG can
                # claim gigapixels.
                width, height = img.size
                if width * height > self.limits.max_image_pixels:
                    raise EngineError(
                        errors.GLTF_LIMIT_EXCEEDED,
                        f"{self.path}: image {source} is {width}x{height}, over the limit of "
                        f"{self.limits.max_image_pixels} pixels",
                        path=str(self.path),
                        field=field,
                    )
                self._charge(
                    width * height * 4, field
                )  # the RGBA array kept (transients: one image at most)
                return np.asarray(img.convert("RGBA"), dtype=np.uint8).copy()
        except EngineError:
            raise
        except Exception as exc:  # PIL raises many kinds on malformed images
            raise EngineError(
                errors.INVALID_GLTF,
                f"{self.path}: image {source} cannot be decoded ({exc})",
                path=str(self.path),
                field=field,
            ) from exc


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _names(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def triangle_list(indices: np.ndarray, mode: int) -> np.ndarray:
    """A TRIANGLE_STRIP (5) or TRIANGLE_FAN (6) as a triangle list, winding as the spec
    orders it: strip triangle i is (i, i + 1 + i % 2, i + 2 - i % 2), fan triangle i is
    (i + 1, i + 2, 0)."""
    count = max(0, len(indices) - 2)
    i = np.arange(count)
    if mode == _STRIP:
        corners = (i, i + 1 + i % 2, i + 2 - i % 2)
    else:
        corners = (i + 1, i + 2, np.zeros(count, np.int64))
    return np.stack([indices[c] for c in corners], axis=1).reshape(-1).astype(np.uint32)


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
