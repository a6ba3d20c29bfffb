"""``EXT_meshopt_compression``: bufferViews stored meshoptimizer-compressed, decoded with
PyPI ``meshopt`` (meshoptimizer's own codec, compiled). Runs on the loading thread.

The extension's ``buffer``/``byteOffset``/``byteLength`` name the compressed bytes;
``count`` elements of ``byteStride`` bytes come out, in ``mode`` (ATTRIBUTES, TRIANGLES,
INDICES) with an optional ``filter``. The decoded bytes stand in for the bufferView's own
(which usually lie in a ``fallback`` buffer that holds no data at all). Every number is
checked before the decoder runs: the output size is ``count * byteStride``, which must fit
the bufferView's ``byteLength`` (already bounded by ``GltfLimits``); the decoder refuses a
stream shorter than it claims, and that refusal becomes one ``invalidGltf``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine import errors
from engine.errors import EngineError

EXTENSION = "EXT_meshopt_compression"
_MODES = {"ATTRIBUTES", "TRIANGLES", "INDICES"}
_FILTERS = {"NONE", "OCTAHEDRAL", "QUATERNION", "EXPONENTIAL"}


def available() -> bool:
    """Whether the decoder (PyPI ``meshopt``) is installed."""
    return importlib.util.find_spec("meshopt") is not None


def compressed(view: dict[str, Any]) -> dict[str, Any] | None:
    ext = view.get("extensions")
    value = ext.get(EXTENSION) if isinstance(ext, dict) else None
    return value if isinstance(value, dict) else None


def fallback_buffer(buffer: dict[str, Any]) -> bool:
    """A buffer the extension marks as a placeholder: only compressed views may use it."""
    ext = buffer.get("extensions")
    value = ext.get(EXTENSION) if isinstance(ext, dict) else None
    return isinstance(value, dict) and value.get("fallback") is True


def check_view(
    view: dict[str, Any], buffers: list[dict[str, Any]], where: str, path: Path | str
) -> None:
    """Raise ``invalidGltf`` unless the extension object of ``view`` is in range."""
    ext = compressed(view)
    if ext is None:
        return
    where = f"{where}.extensions.{EXTENSION}"

    def fail(message: str) -> EngineError:
        return EngineError(
            errors.INVALID_GLTF, f"{path}: {message} at {where}", path=str(path), field=where
        )

    def integer(key: str, minimum: int = 0) -> int:
        value = ext.get(key, 0 if key == "byteOffset" else None)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise fail(f"{key} must be an integer >= {minimum}")
        return value

    buffer = integer("buffer")
    if buffer >= len(buffers):
        raise fail(f"buffer {buffer} out of range")
    offset, length = integer("byteOffset"), integer("byteLength", 1)
    stride, count = integer("byteStride", 1), integer("count", 1)
    mode, filt = ext.get("mode"), ext.get("filter", "NONE")
    names = isinstance(mode, str) and isinstance(filt, str)  # a dict or list is unhashable
    if not (names and mode in _MODES and filt in _FILTERS):
        raise fail(f"unknown mode {mode!r} or filter {filt!r}")
    if offset + length > buffers[buffer]["byteLength"]:
        raise fail(f"bytes {offset}..{offset + length} lie outside buffer {buffer}")
    strides = {2, 4} if mode != "ATTRIBUTES" else set(range(4, 257, 4))
    if stride not in strides or (mode == "TRIANGLES" and count % 3):
        raise fail(f"byteStride {stride} / count {count} do not suit mode {mode}")
    if count * stride > view["byteLength"]:
        raise fail(f"{count} x {stride} decoded bytes exceed the bufferView's byteLength")


def decode_view(
    view: dict[str, Any],
    buffers: list[bytes | memoryview],
    charge: Callable[[int, str], None],
    where: str,
    path: Path,
) -> bytes:
    """The bufferView's bytes (``byteLength`` of them), decoded. ``check_view`` ran first."""
    import meshopt

    ext = compressed(view)
    assert ext is not None
    count, stride = ext["count"], ext["byteStride"]
    charge(view["byteLength"] + count * stride, where)
    start = ext.get("byteOffset") or 0
    source = np.frombuffer(buffers[ext["buffer"]], np.uint8, ext["byteLength"], start)
    filt = ext.get("filter", "NONE")
    try:
        out = meshopt.decode_gltf_buffer(source, count, stride, ext["mode"], filt)
    except (ValueError, RuntimeError) as exc:
        raise EngineError(
            errors.INVALID_GLTF,
            f"{path}: corrupt meshopt stream at {where} ({exc})",
            path=str(path),
            field=where,
        ) from None
    data = np.zeros(view["byteLength"], np.uint8)
    raw = np.ascontiguousarray(out).view(np.uint8).reshape(-1)
    data[: len(raw)] = raw
    return data.tobytes()
