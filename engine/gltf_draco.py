"""``KHR_draco_mesh_compression``: a primitive's geometry stored as one Draco stream,
decoded with PyPI ``DracoPy`` (Google's decoder, compiled). Runs on the loading thread.

The primitive's accessors keep their ``count``/``type``/``componentType`` but have no
bufferView; the extension names the stream's bufferView and, per attribute semantic, the
Draco attribute id to take. The decoded arrays replace those accessors' contents. The
stream is untrusted: its size is bounded by its bufferView (checked against the file),
and what comes out must have exactly the counts and widths the accessors declare (which
``GltfLimits`` already bounded) or the file is refused with ``invalidGltf``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine import errors
from engine.errors import EngineError

EXTENSION = "KHR_draco_mesh_compression"


def available() -> bool:
    """Whether the decoder (PyPI ``DracoPy``) is installed."""
    return importlib.util.find_spec("DracoPy") is not None


def compressed(prim: dict[str, Any]) -> dict[str, Any] | None:
    ext = prim.get("extensions")
    value = ext.get(EXTENSION) if isinstance(ext, dict) else None
    return value if isinstance(value, dict) else None


def decode_primitive(
    prim: dict[str, Any],
    accessors: list[dict[str, Any]],
    view_count: int,
    view_bytes: Callable[[int], bytes],
    charge: Callable[[int, str], None],
    where: str,
    path: Path,
) -> dict[int, np.ndarray]:
    """Accessor index -> its decoded contents, (count, width), for the primitive's indices
    and every attribute the extension names. ``view_count``: the document's bufferViews."""
    import DracoPy

    ext = compressed(prim)
    assert ext is not None
    where = f"{where}.extensions.{EXTENSION}"

    def bad(message: str) -> EngineError:
        return EngineError(
            errors.INVALID_GLTF, f"{path}: {message} at {where}", path=str(path), field=where
        )

    view, ids = ext.get("bufferView"), ext.get("attributes")
    if (
        not isinstance(view, int)
        or isinstance(view, bool)
        or not 0 <= view < view_count
        or not isinstance(ids, dict)
    ):
        raise bad("needs a bufferView index in range and an attributes object")
    attributes = prim["attributes"]
    wanted = {name: ids[name] for name in attributes if name in ids}
    declared = sum(accessors[attributes[n]]["count"] for n in wanted)
    if prim.get("indices") is not None:
        declared += accessors[prim["indices"]]["count"]
    charge(declared * 16, where)  # the decoder's arrays (<= 4 floats an element) + ours
    try:
        mesh = DracoPy.decode(view_bytes(view))
    except Exception as exc:  # the binding raises its own types and ValueError
        raise bad(f"corrupt Draco stream ({type(exc).__name__}: {exc})") from None
    out: dict[int, np.ndarray] = {}
    by_id = {a["unique_id"]: a for a in getattr(mesh, "attributes", [])}
    for name, draco_id in wanted.items():
        index = attributes[name]
        attr = by_id.get(draco_id)
        if attr is None:
            raise bad(f"the stream has no attribute {draco_id!r} for {name}")
        out[index] = _shaped(np.asarray(attr["data"]), accessors[index], name, bad)
    if prim.get("indices") is not None:
        faces = np.asarray(mesh.faces, np.int64).reshape(-1, 1)
        index = prim["indices"]
        if len(faces) != accessors[index]["count"]:
            raise bad(
                f"{len(faces)} indices decoded, the accessor declares {accessors[index]['count']}"
            )
        n = len(out[attributes["POSITION"]]) if "POSITION" in wanted else 0
        if len(faces) and (faces.min() < 0 or faces.max() >= max(n, 1)):
            raise bad("a decoded index is out of range")
        out[index] = faces.astype(np.uint32)
    return out


def _shaped(
    data: np.ndarray, acc: dict[str, Any], name: str, bad: Callable[[str], EngineError]
) -> np.ndarray:
    width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}.get(acc["type"], 0)
    data = data.reshape(len(data), -1) if data.ndim else data.reshape(0, 1)
    if data.shape != (acc["count"], width):
        raise bad(
            f"{name} decoded as {data.shape}, the accessor declares ({acc['count']}, {width})"
        )
    if data.dtype.kind in "iu" and acc.get("normalized"):
        info = np.iinfo(data.dtype)
        return np.maximum(data.astype(np.float32) / float(info.max), -1.0)
    return data.astype(np.float32)
