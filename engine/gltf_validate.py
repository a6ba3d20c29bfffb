"""Checks a parsed glTF 2.0 document before the loader allocates anything for it.

A glTF file is untrusted input (avatars are downloaded), so the loader never indexes,
allocates or opens anything on the document's word alone. :func:`validate` proves, on the
JSON only, that every index the loader follows is in range, that the node hierarchy is a
set of trees (a cycle would hang every walk of it), that every accessor's bytes lie inside
its bufferView and its buffer, and that counts stay under :class:`GltfLimits`.
:func:`resolve_uri` confines external buffers and images to the file's own directory.
:func:`parse_json` refuses documents too large or too deeply nested to parse safely.

Failures raise ``EngineError`` with ``invalidGltf``, ``gltfLimitExceeded`` or
``gltfUriNotAllowed``, naming the file (``path``) and the JSON location (``field``).

Over 400 lines on purpose: one job, one check per part of the glTF schema the loader
follows; splitting them would scatter the one list of what an untrusted file must prove.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload
from urllib.parse import unquote

import numpy as np

from engine import errors, gltf_meshopt
from engine.errors import EngineError

# Extensions that give a texture another image (``extensions.<name>.source``), in the
# loader's order of preference: the last one it can decode wins.
TEXTURE_SOURCE_EXTENSIONS = ("EXT_texture_webp", "EXT_texture_avif", "KHR_texture_basisu")

MiB = 1 << 20
_FLOAT32_MAX = 3.4028234663852886e38  # larger values overflow the float32 arrays we build


@dataclass(frozen=True)
class GltfLimits:
    """Upper bounds for one load. The defaults admit any real avatar we know of (a few
    MB, tens of thousands of vertices, a few hundred morph targets) and keep a hostile
    file under about 256 MB and 1 s."""

    max_file_bytes: int = 256 * MiB  # the file plus every external buffer/image it reads
    max_json_bytes: int = 16 * MiB
    max_json_depth: int = 64
    max_nodes: int = 10_000
    max_objects: int = 20_000  # entries of any other top-level array (accessors, ...)
    max_primitives: int = 1_024  # over all meshes
    max_morph_targets: int = 4_096  # over all primitives (the bundled avatars: 728)
    max_drawn_primitives: int = 4_096  # primitives of every node's mesh: a mesh used by 10 000
    # nodes is drawn (and measured by bounds()) 10 000 times
    max_accessor_count: int = 1 << 24  # elements in one accessor
    max_decoded_bytes: int = 128 * MiB  # arrays and pixels the loader allocates, in total
    max_image_pixels: int = 4096 * 4096
    max_images: int = 256  # each is a decoder run: thousands of 1-pixel PNGs take seconds


DEFAULT_LIMITS = GltfLimits()

COMPONENT_SIZES = {5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4}
TYPE_WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_INDEX_COMPONENTS = {5121, 5123, 5125}
# Attribute semantics the loader reads, and the accessor types it accepts for each.
_ATTRIBUTE_TYPES = {
    "POSITION": {"VEC3"},
    "NORMAL": {"VEC3"},
    "TEXCOORD_0": {"VEC2"},
    "TEXCOORD_1": {"VEC2"},
    "COLOR_0": {"VEC3", "VEC4"},
}
_TARGET_TYPES = {"POSITION": {"VEC3"}, "NORMAL": {"VEC3"}}

# A JSON string (brackets inside one do not nest), for the depth pre-scan.
_JSON_STRING = re.compile(
    rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S
)  # unrolled: no per-character alternation
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _fail(
    path: Path | str, field: str | None, message: str, code: str = errors.INVALID_GLTF
) -> EngineError:
    where = f" at {field}" if field else ""
    return EngineError(code, f"{path}: {message}{where}", path=str(path), field=field)


# -- JSON ----------------------------------------------------------------------------------
def parse_json(
    raw: bytes | memoryview, path: Path | str, limits: GltfLimits = DEFAULT_LIMITS
) -> dict[str, Any]:
    """The document as a dict. Depth is measured before parsing: Python's parser recurses
    once per level, so a deeply nested file would otherwise surface as ``RecursionError``."""
    if len(raw) > limits.max_json_bytes:
        raise _fail(
            path,
            None,
            f"JSON of {len(raw)} bytes exceeds the limit of {limits.max_json_bytes}",
            errors.GLTF_LIMIT_EXCEEDED,
        )
    raw = bytes(raw)
    depth = json_depth(raw)
    if depth > limits.max_json_depth:
        raise _fail(
            path,
            None,
            f"JSON nested {depth} deep exceeds the limit of {limits.max_json_depth}",
            errors.GLTF_LIMIT_EXCEEDED,
        )
    try:
        doc = json.loads(raw.decode("utf-8").lstrip("\ufeff"), parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise _fail(path, None, f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise _fail(path, None, "the document is not a JSON object")
    return doc


def json_depth(raw: bytes) -> int:
    """Deepest ``[``/``{`` nesting of a JSON text, in linear time without recursion."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1)
    return int(np.cumsum(steps).max())


def _no_constant(name: str) -> float:
    raise ValueError(f"non-standard JSON constant {name}")


# -- external files ------------------------------------------------------------------------
def resolve_uri(uri: str, base_dir: Path, path: Path | str, field: str) -> Path:
    """The file a relative ``uri`` names, proven to be a regular file inside ``base_dir``.

    Refused (``gltfUriNotAllowed``) before anything is opened: schemes other than
    ``data:`` (handled by the caller), absolute paths, ``..`` segments, NUL bytes, and
    paths that leave ``base_dir`` through a symlink."""
    if _SCHEME.match(uri):
        raise _fail(
            path, field, f"uri scheme not allowed ({uri[:40]!r})", errors.GLTF_URI_NOT_ALLOWED
        )
    name = unquote(uri)
    parts = name.replace("\\", "/").split("/")
    if "\0" in name or name.startswith(("/", "\\")) or ".." in parts or _SCHEME.match(name):
        raise _fail(
            path,
            field,
            f"uri must stay inside the file's folder ({uri[:80]!r})",
            errors.GLTF_URI_NOT_ALLOWED,
        )
    base = base_dir.resolve()
    try:
        target = (base / name).resolve(strict=True)
    except FileNotFoundError:
        raise _fail(
            path, field, f"referenced file not found: {name}", errors.ASSET_NOT_FOUND
        ) from None
    except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long
        raise _fail(
            path, field, f"referenced file cannot be resolved ({exc})", errors.ASSET_NOT_FOUND
        ) from None
    if not target.is_relative_to(base):
        raise _fail(
            path,
            field,
            f"uri leaves the file's folder through a link ({uri[:80]!r})",
            errors.GLTF_URI_NOT_ALLOWED,
        )
    if not stat.S_ISREG(os.stat(target).st_mode):  # a FIFO or device would block or never end
        raise _fail(
            path,
            field,
            f"referenced path is not a regular file: {name}",
            errors.GLTF_URI_NOT_ALLOWED,
        )
    return target


def read_confined(target: Path, limit: int, path: Path | str, field: str) -> bytes:
    """The bytes of a file :func:`resolve_uri` returned, at most ``limit`` of them. Opened
    with ``O_NOFOLLOW`` and ``O_NONBLOCK`` so a symlink or FIFO swapped in since the check
    is refused rather than followed or waited on."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(target, flags)
    except OSError as exc:
        code = errors.GLTF_URI_NOT_ALLOWED if exc.errno == errno.ELOOP else errors.ASSET_NOT_FOUND
        raise _fail(path, field, f"cannot open {target.name} ({exc.strerror})", code) from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise _fail(
                path,
                field,
                f"referenced path is not a regular file: {target.name}",
                errors.GLTF_URI_NOT_ALLOWED,
            )
        if info.st_size > limit:
            raise _fail(
                path,
                field,
                f"{target.name} has {info.st_size} bytes, over the limit of {limit}",
                errors.GLTF_LIMIT_EXCEEDED,
            )
        data = fh.read(limit + 1)
    if len(data) > limit:  # grew since fstat
        raise _fail(
            path,
            field,
            f"{target.name} exceeds the limit of {limit} bytes",
            errors.GLTF_LIMIT_EXCEEDED,
        )
    return data


# -- the document --------------------------------------------------------------------------
def validate(
    doc: dict[str, Any],
    path: Path | str,
    limits: GltfLimits = DEFAULT_LIMITS,
    bin_length: int | None = None,
) -> None:
    """Raise ``EngineError`` unless everything the loader reads from ``doc`` is in range.

    ``bin_length``: the size of a GLB's binary chunk (None for ``.gltf`` or no chunk)."""
    _Checker(doc, path, limits, bin_length).run()


class _Checker:
    def __init__(
        self, doc: dict[str, Any], path: Path | str, limits: GltfLimits, bin_length: int | None
    ) -> None:
        self.doc, self.path, self.limits, self.bin_length = doc, path, limits, bin_length

    def fail(self, field: str, message: str, code: str = errors.INVALID_GLTF) -> EngineError:
        return _fail(self.path, field, message, code)

    # -- typed getters -------------------------------------------------------------------
    def array(self, key: str, limit: int | None = None) -> list[dict[str, Any]]:
        items = self.doc.get(key)
        items = [] if items is None else items
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise self.fail(key, "must be a list of objects")
        limit = self.limits.max_objects if limit is None else limit
        if len(items) > limit:
            raise self.fail(
                key, f"{len(items)} entries exceed the limit of {limit}", errors.GLTF_LIMIT_EXCEEDED
            )
        return items

    # A required value is never None: the overloads tell the type checker so.
    @overload
    def integer(
        self,
        obj: dict[str, Any],
        key: str,
        where: str,
        *,
        minimum: int = 0,
        required: Literal[True],
    ) -> int: ...
    @overload
    def integer(
        self, obj: dict[str, Any], key: str, where: str, *, minimum: int = 0, required: bool = False
    ) -> int | None: ...
    def integer(
        self, obj: dict[str, Any], key: str, where: str, *, minimum: int = 0, required: bool = False
    ) -> int | None:
        value = obj.get(key)
        if value is None:
            if required:
                raise self.fail(f"{where}.{key}", "is required")
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise self.fail(
                f"{where}.{key}", f"must be an integer >= {minimum}, not {_short(value)}"
            )
        return value

    @overload
    def index(
        self, obj: dict[str, Any], key: str, where: str, count: int, *, required: Literal[True]
    ) -> int: ...
    @overload
    def index(
        self, obj: dict[str, Any], key: str, where: str, count: int, *, required: bool = False
    ) -> int | None: ...
    def index(
        self, obj: dict[str, Any], key: str, where: str, count: int, *, required: bool = False
    ) -> int | None:
        value = self.integer(obj, key, where, required=required)
        if value is not None and value >= count:
            raise self.fail(f"{where}.{key}", f"index {value} out of range (0..{count - 1})")
        return value

    def index_list(self, obj: dict[str, Any], key: str, where: str, count: int) -> list[int]:
        values = obj.get(key)
        values = [] if values is None else values
        if not isinstance(values, list):
            raise self.fail(f"{where}.{key}", "must be a list")
        for i, value in enumerate(values):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < count:
                raise self.fail(
                    f"{where}.{key}[{i}]", f"index {_short(value)} out of range (0..{count - 1})"
                )
        if len(set(values)) != len(values):
            raise self.fail(f"{where}.{key}", "lists an index twice")
        return values

    def numbers(self, obj: dict[str, Any], key: str, where: str, length: int) -> None:
        value = obj.get(key)
        if value is None:
            return
        if not isinstance(value, list) or len(value) != length:
            raise self.fail(f"{where}.{key}", f"must be a list of {length} numbers")
        if not all(_is_number(v) for v in value):
            raise self.fail(f"{where}.{key}", f"must be a list of {length} finite numbers")

    def string(self, obj: dict[str, Any], key: str, where: str) -> None:
        if obj.get(key) is not None and not isinstance(obj[key], str):
            raise self.fail(f"{where}.{key}", "must be a string")

    @overload
    def obj(
        self, parent: dict[str, Any], key: str, where: str, *, required: Literal[True]
    ) -> dict[str, Any]: ...
    @overload
    def obj(
        self, parent: dict[str, Any], key: str, where: str, *, required: bool = False
    ) -> dict[str, Any] | None: ...
    def obj(
        self, parent: dict[str, Any], key: str, where: str, *, required: bool = False
    ) -> dict[str, Any] | None:
        value = parent.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, dict):
            raise self.fail(f"{where}.{key}", "must be an object")
        return value

    # -- the checks ------------------------------------------------------------------------
    def run(self) -> None:
        d = self.doc
        required = d.get("extensionsRequired") or []
        if not isinstance(required, list) or not all(isinstance(e, str) for e in required):
            raise self.fail("extensionsRequired", "must be a list of strings")
        self.buffers = self.array("buffers")
        self.views = self.array("bufferViews")
        self.accessors = self.array("accessors")
        self.images = self.array("images", self.limits.max_images)
        self.textures = self.array("textures")
        self.materials = self.array("materials")
        self.meshes = self.array("meshes")
        self.nodes = self.array("nodes", self.limits.max_nodes)
        self.scenes = self.array("scenes")
        self.check_buffers()
        self.check_views()
        for i, acc in enumerate(self.accessors):
            self.check_accessor(i, acc)
        for i, image in enumerate(self.images):
            self.check_image(i, image)
        for i, texture in enumerate(self.textures):
            self.index(texture, "source", f"textures[{i}]", len(self.images))
            ext = self.obj(texture, "extensions", f"textures[{i}]") or {}
            for name in TEXTURE_SOURCE_EXTENSIONS:
                by_ext = self.obj(ext, name, f"textures[{i}].extensions")
                if by_ext is not None:
                    self.index(
                        by_ext, "source", f"textures[{i}].extensions.{name}", len(self.images)
                    )
        for i, material in enumerate(self.materials):
            self.check_material(i, material)
        self.check_meshes()
        self.check_nodes()
        self.check_scenes()

    def check_buffers(self) -> None:
        for i, buf in enumerate(self.buffers):
            where = f"buffers[{i}]"
            length = self.integer(buf, "byteLength", where, minimum=1, required=True)
            self.string(buf, "uri", where)
            if length > self.limits.max_file_bytes:
                raise self.fail(
                    f"{where}.byteLength",
                    f"{length} bytes exceed the limit of {self.limits.max_file_bytes}",
                    errors.GLTF_LIMIT_EXCEEDED,
                )
            if buf.get("uri") is None and gltf_meshopt.fallback_buffer(buf):
                continue  # EXT_meshopt_compression's placeholder: only compressed views use it
            if buf.get("uri") is None:
                if i != 0 or self.bin_length is None:
                    raise self.fail(where, "has no uri and is not a GLB's binary chunk")
                if length > self.bin_length:
                    raise self.fail(
                        f"{where}.byteLength",
                        f"{length} exceeds the binary chunk's {self.bin_length} bytes",
                    )

    def check_views(self) -> None:
        for i, view in enumerate(self.views):
            where = f"bufferViews[{i}]"
            buffer = self.index(view, "buffer", where, len(self.buffers), required=True)
            offset = self.integer(view, "byteOffset", where) or 0
            length = self.integer(view, "byteLength", where, minimum=1, required=True)
            stride = self.integer(view, "byteStride", where, minimum=4)
            if stride is not None and stride > 252:
                raise self.fail(f"{where}.byteStride", f"{stride} is outside 4..252")
            gltf_meshopt.check_view(view, self.buffers, where, self.path)
            if gltf_meshopt.fallback_buffer(self.buffers[buffer]) and not gltf_meshopt.compressed(
                view
            ):
                raise self.fail(where, f"reads fallback buffer {buffer}, which holds no data")
            if offset + length > self.buffers[buffer]["byteLength"]:
                raise self.fail(
                    where,
                    f"bytes {offset}..{offset + length} lie outside buffer {buffer} "
                    f"({self.buffers[buffer]['byteLength']} bytes)",
                )

    def view_fits(self, view_index: int, offset: int, size: int, where: str) -> None:
        length = self.views[view_index]["byteLength"]
        if offset + size > length:
            raise self.fail(
                where,
                f"needs bytes {offset}..{offset + size} of bufferView {view_index}, "
                f"which has {length}",
            )

    def check_accessor(self, i: int, acc: dict[str, Any]) -> None:
        where = f"accessors[{i}]"
        component = acc.get("componentType")
        if not _is_int(component) or component not in COMPONENT_SIZES:
            raise self.fail(f"{where}.componentType", f"unknown component type {_short(component)}")
        kind = acc.get("type")
        if not isinstance(kind, str) or kind not in TYPE_WIDTHS:
            raise self.fail(f"{where}.type", f"unknown accessor type {_short(kind)}")
        count = self.integer(acc, "count", where, required=True)
        if count > self.limits.max_accessor_count:
            raise self.fail(
                f"{where}.count",
                f"{count} elements exceed the limit of {self.limits.max_accessor_count}",
                errors.GLTF_LIMIT_EXCEEDED,
            )
        if acc.get("normalized") is not None and not isinstance(acc["normalized"], bool):
            raise self.fail(f"{where}.normalized", "must be a boolean")
        offset = self.integer(acc, "byteOffset", where) or 0
        element = COMPONENT_SIZES[component] * TYPE_WIDTHS[kind]
        view = self.index(acc, "bufferView", where, len(self.views))
        if view is not None and count:
            stride = self.views[view].get("byteStride") or element
            self.view_fits(view, offset, stride * (count - 1) + element, where)
        sparse = self.obj(acc, "sparse", where)
        if sparse is None:
            return
        where = f"{where}.sparse"
        n = self.integer(sparse, "count", where, minimum=1, required=True)
        if n > count:
            raise self.fail(f"{where}.count", f"{n} exceeds the accessor's count {count}")
        indices = self.obj(sparse, "indices", where, required=True)
        if (
            not _is_int(indices.get("componentType"))
            or indices["componentType"] not in _INDEX_COMPONENTS
        ):
            raise self.fail(f"{where}.indices.componentType", "must be an unsigned integer type")
        iview = self.index(
            indices, "bufferView", f"{where}.indices", len(self.views), required=True
        )
        ioffset = self.integer(indices, "byteOffset", f"{where}.indices") or 0
        self.view_fits(
            iview, ioffset, n * COMPONENT_SIZES[indices["componentType"]], f"{where}.indices"
        )
        values = self.obj(sparse, "values", where, required=True)
        vview = self.index(values, "bufferView", f"{where}.values", len(self.views), required=True)
        voffset = self.integer(values, "byteOffset", f"{where}.values") or 0
        self.view_fits(vview, voffset, n * element, f"{where}.values")

    def check_image(self, i: int, image: dict[str, Any]) -> None:
        where = f"images[{i}]"
        self.string(image, "uri", where)
        self.index(image, "bufferView", where, len(self.views))

    def check_material(self, i: int, material: dict[str, Any]) -> None:
        where = f"materials[{i}]"
        self.string(material, "name", where)
        self.string(material, "alphaMode", where)
        cutoff = material.get("alphaCutoff")
        if cutoff is not None and not _is_number(cutoff):
            raise self.fail(f"{where}.alphaCutoff", "must be a finite number")
        if material.get("doubleSided") is not None and not isinstance(
            material["doubleSided"], bool
        ):
            raise self.fail(f"{where}.doubleSided", "must be a boolean")
        pbr = self.obj(material, "pbrMetallicRoughness", where)
        if pbr is not None:
            self.numbers(pbr, "baseColorFactor", f"{where}.pbrMetallicRoughness", 4)
            texture = self.obj(pbr, "baseColorTexture", f"{where}.pbrMetallicRoughness")
            if texture is not None:
                self.index(
                    texture,
                    "index",
                    f"{where}.pbrMetallicRoughness.baseColorTexture",
                    len(self.textures),
                    required=True,
                )

    def accessor_of(
        self, obj: dict[str, Any], key: str, where: str, types: set[str] | None, count: int | None
    ) -> int | None:
        index = self.index(obj, key, where, len(self.accessors))
        if index is None:
            return None
        acc = self.accessors[index]
        if types is not None and acc["type"] not in types:
            raise self.fail(
                f"{where}.{key}",
                f"accessor {index} is {acc['type']}, expected {'/'.join(sorted(types))}",
            )
        if count is not None and acc["count"] != count:
            raise self.fail(
                f"{where}.{key}",
                f"accessor {index} has {acc['count']} elements, POSITION has {count}",
            )
        return index

    def check_meshes(self) -> None:
        primitives = targets = 0
        for m, mesh in enumerate(self.meshes):
            where = f"meshes[{m}]"
            self.string(mesh, "name", where)
            prims = mesh.get("primitives")
            if not isinstance(prims, list) or not all(isinstance(p, dict) for p in prims):
                raise self.fail(f"{where}.primitives", "must be a list of objects")
            weights = mesh.get("weights")
            if weights is not None:
                self.numbers(
                    mesh, "weights", where, len(weights) if isinstance(weights, list) else -1
                )
            primitives += len(prims)
            if primitives > self.limits.max_primitives:
                raise self.fail(
                    f"{where}.primitives",
                    f"more than {self.limits.max_primitives} primitives in the file",
                    errors.GLTF_LIMIT_EXCEEDED,
                )
            for p, prim in enumerate(prims):
                pwhere = f"{where}.primitives[{p}]"
                attrs = self.obj(prim, "attributes", pwhere, required=True)
                if not all(
                    isinstance(v, int) and not isinstance(v, bool) and 0 <= v < len(self.accessors)
                    for v in attrs.values()
                ):
                    raise self.fail(
                        f"{pwhere}.attributes", "every attribute must be an accessor index in range"
                    )
                position = self.accessor_of(
                    attrs, "POSITION", f"{pwhere}.attributes", _ATTRIBUTE_TYPES["POSITION"], None
                )
                if position is None:
                    raise self.fail(f"{pwhere}.attributes.POSITION", "is required")
                n = self.accessors[position]["count"]
                for name, types in _ATTRIBUTE_TYPES.items():
                    self.accessor_of(attrs, name, f"{pwhere}.attributes", types, n)
                indices = self.accessor_of(prim, "indices", pwhere, {"SCALAR"}, None)
                if (
                    indices is not None
                    and self.accessors[indices]["componentType"] not in _INDEX_COMPONENTS
                ):
                    raise self.fail(
                        f"{pwhere}.indices", "index accessors must be unsigned integers"
                    )
                self.index(prim, "material", pwhere, len(self.materials))
                self.integer(prim, "mode", pwhere)
                prim_targets = prim.get("targets") or []
                if not isinstance(prim_targets, list) or not all(
                    isinstance(t, dict) for t in prim_targets
                ):
                    raise self.fail(f"{pwhere}.targets", "must be a list of objects")
                targets += len(prim_targets)
                if targets > self.limits.max_morph_targets:
                    raise self.fail(
                        f"{pwhere}.targets",
                        f"more than {self.limits.max_morph_targets} morph targets in the file",
                        errors.GLTF_LIMIT_EXCEEDED,
                    )
                for t, target in enumerate(prim_targets):
                    for name, types in _TARGET_TYPES.items():
                        self.accessor_of(target, name, f"{pwhere}.targets[{t}]", types, n)

    def check_nodes(self) -> None:
        """Indices and transforms of every node, then the hierarchy: each node has at most
        one parent and no node is its own ancestor (checked without recursion)."""
        parent: list[int | None] = [None] * len(self.nodes)
        drawn = 0
        for i, node in enumerate(self.nodes):
            where = f"nodes[{i}]"
            self.string(node, "name", where)
            mesh = self.index(node, "mesh", where, len(self.meshes))
            if mesh is not None:
                drawn += len(self.meshes[mesh]["primitives"])
                if drawn > self.limits.max_drawn_primitives:
                    raise self.fail(
                        f"{where}.mesh",
                        f"the nodes draw more than {self.limits.max_drawn_primitives} primitives",
                        errors.GLTF_LIMIT_EXCEEDED,
                    )
            self.numbers(node, "matrix", where, 16)
            self.numbers(node, "translation", where, 3)
            self.numbers(node, "rotation", where, 4)
            self.numbers(node, "scale", where, 3)
            for c, child in enumerate(self.index_list(node, "children", where, len(self.nodes))):
                if child == i or parent[child] is not None:
                    raise self.fail(
                        f"{where}.children[{c}]",
                        f"node {child} would have two parents or be its own child",
                    )
                parent[child] = i
        # Every node now has at most one parent, so a node unreachable from the
        # parentless nodes sits on (or below) a cycle.
        seen = [False] * len(self.nodes)
        stack = [i for i, p in enumerate(parent) if p is None]
        while stack:
            index = stack.pop()
            seen[index] = True
            stack.extend(self.nodes[index].get("children") or [])
        if not all(seen):
            first = seen.index(False)
            raise self.fail(
                f"nodes[{first}]", f"node {first} is part of a cycle in the node hierarchy"
            )
        self.parent = parent

    def check_scenes(self) -> None:
        for s, scene in enumerate(self.scenes):
            where = f"scenes[{s}]"
            for r, root in enumerate(self.index_list(scene, "nodes", where, len(self.nodes))):
                if self.parent[root] is not None:
                    raise self.fail(
                        f"{where}.nodes[{r}]",
                        f"node {root} is not a root (its parent is node {self.parent[root]})",
                    )
        if self.doc.get("scene") is not None:
            if not self.scenes:
                raise self.fail("scene", "names a scene but the file has none")
            scene = self.doc["scene"]
            if (
                not isinstance(scene, int)
                or isinstance(scene, bool)
                or not 0 <= scene < len(self.scenes)
            ):
                raise self.fail(
                    "scene", f"index {_short(scene)} out of range (0..{len(self.scenes) - 1})"
                )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A JSON number that fits a float32 (the loader's arrays) and is finite."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) <= _FLOAT32_MAX
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
