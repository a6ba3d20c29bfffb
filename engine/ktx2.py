"""``KHR_texture_basisu``: KTX 2 textures with a Basis Universal payload (ETC1S or UASTC),
transcoded to RGBA8 pixels with PyPI ``opengl_basisu`` (Binomial's transcoder, compiled).
Runs on the loading thread.

The bytes are untrusted: the 80-byte KTX 2 header's size is read and checked against
``max_pixels`` before the transcoder sees the file, only level 0 of face 0 / layer 0 is
transcoded (the renderer builds its own mipmaps), and any refusal by the transcoder is one
``invalidGltf`` naming the image.
"""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import numpy as np

from engine import errors
from engine.errors import EngineError

EXTENSION = "KHR_texture_basisu"
MIME = "image/ktx2"
_MAGIC = b"\xabKTX 20\xbb\r\n\x1a\n"


def available() -> bool:
    """Whether the transcoder (PyPI ``opengl_basisu``) is installed."""
    return importlib.util.find_spec("opengl_basisu") is not None


def is_ktx2(data: bytes) -> bool:
    return data[:12] == _MAGIC


def decode(data: bytes, max_pixels: int, path: Path, field: str) -> np.ndarray:
    """Level 0 as an (H, W, 4) uint8 array, top row first, colour values as stored
    (sRGB-encoded for base colour and emissive, as glTF requires)."""

    def bad(message: str, code: str = errors.INVALID_GLTF) -> EngineError:
        return EngineError(code, f"{path}: {message} at {field}", path=str(path), field=field)

    if len(data) < 80 or not is_ktx2(data):
        raise bad("not a KTX 2 file")
    width, height = struct.unpack_from("<II", data, 20)
    if width * max(height, 1) > max_pixels:
        raise bad(
            f"KTX 2 image is {width}x{height}, over the limit of {max_pixels} pixels",
            errors.GLTF_LIMIT_EXCEEDED,
        )
    import opengl_basisu

    try:
        texture = opengl_basisu.open(bytes(data))
        if texture.width * texture.height > max_pixels:  # the transcoder's own reading
            raise bad(f"KTX 2 image over the limit of {max_pixels} pixels")
        image = texture.transcode("rgba8")
    except (opengl_basisu.BasisuError, ValueError, IndexError) as exc:
        raise bad(f"KTX 2 texture cannot be transcoded ({exc})") from None
    pixels = np.asarray(image.data, np.uint8).reshape(image.height, image.width, 4)
    # KTX 2's default orientation is top row first, as glTF wants; a file flipped at
    # encode time says so.
    return np.ascontiguousarray(pixels[::-1] if texture.y_flipped else pixels)
