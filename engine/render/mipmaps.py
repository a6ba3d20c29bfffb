"""Mipmaps made on the host: a texture's smaller levels computed with numpy and uploaded
level by level, instead of ``glGenerateMipmap``.

A software rasteriser (llvmpipe) generates mipmaps by blitting each level into the next
with a shader it compiles for every new context: 70-100 ms before an avatar's first
frame, in every process that draws one (a render, its helper, a kiosk, each test's App),
where numpy makes and uploads a 512x512 texture's levels in 3-4 ms. The levels are
what llvmpipe's ``glGenerateMipmap`` makes (a linear blit of each level into the next),
to the bit where a side halves evenly: each texel of level i+1 samples level i bilinearly
at its own centre, in the texture's encoded (sRGB) values as it does for RGBA8.
"""

from __future__ import annotations

import ctypes
import functools

import moderngl
import numpy as np

from engine.render.gpu_wait import gl_function

# Up to 1024x1024 numpy is quicker than llvmpipe's first blit in a context, compile
# included (levels and upload: 512x512 3-4 ms against 65-66, 1024x1024 14-30 against
# 69-85; 2048x2048 156 against 93).
HOST_MIPMAP_TEXELS = 1024 * 1024

_GL_TEXTURE_2D = 0x0DE1
_GL_RGBA8 = 0x8058
_GL_RGBA = 0x1908
_GL_UNSIGNED_BYTE = 0x1401
_GL_PIXEL_UNPACK_BUFFER = 0x88EC
_GL_UNPACK_ALIGNMENT = 0x0CF5


def _half(values: np.ndarray, axis: int) -> np.ndarray:
    """``values`` (0-255 as uint16 or int32) resampled to half its size (at least 1) along
    ``axis``: a linear sample at each new texel's centre, as llvmpipe's blit takes it
    (weights in 1/256ths, ``a + ((b - a) * w + 128) >> 8``: a side that halves evenly
    averages pairs, rounding halves up)."""
    size = values.shape[axis]
    if size % 2 == 0:  # pairs, weight 128: (a + b + 1) >> 1, by slices, in uint16
        pairs = np.moveaxis(values, axis, 0)
        half = pairs[0::2] + pairs[1::2]
        half += 1
        half >>= 1
        return np.moveaxis(half, 0, axis)
    values = values.astype(np.int32)  # b - a may be negative
    out = max(1, size // 2)
    u = (np.arange(out) + 0.5) * (size / out) - 0.5
    i0 = np.clip(np.floor(u).astype(np.int64), 0, size - 1)
    i1 = np.minimum(i0 + 1, size - 1)
    shape = [1] * values.ndim
    shape[axis] = out
    w = np.round((u - np.floor(u)) * 256).astype(np.int32).reshape(shape)
    a, b = np.take(values, i0, axis=axis), np.take(values, i1, axis=axis)
    return a + (((b - a) * w + 128) >> 8)


def mip_levels(image: np.ndarray) -> list[np.ndarray]:
    """Levels 1.. of an HxWxC uint8 image, down to 1x1 (level 0 is the image), each made
    from the one before as stored: rows first, then columns, as the blit filters."""
    levels = []
    current = image.astype(np.uint16)
    while current.shape[0] > 1 or current.shape[1] > 1:
        current = _half(_half(current, 1), 0)
        levels.append(current.astype(np.uint8))
    return levels


@functools.cache
def _gl() -> tuple | None:
    """(glTexImage2D, glBindBuffer, glPixelStorei) with their C signatures, or None."""
    functions = [gl_function(name) for name in ("glTexImage2D", "glBindBuffer", "glPixelStorei")]
    if any(f is None for f in functions):
        return None
    image, bind, store = functions
    u, i = ctypes.c_uint, ctypes.c_int
    image.argtypes = [u, i, i, i, i, i, u, u, ctypes.c_void_p]
    bind.argtypes = [u, u]
    store.argtypes = [u, i]
    for f in functions:
        f.restype = None
    return image, bind, store


def host_mipmapped(image: np.ndarray) -> bool:
    """Whether numpy makes this image's levels (HxWx4, up to ``HOST_MIPMAP_TEXELS``)."""
    return image.ndim == 3 and image.shape[2] == 4 and image.size // 4 <= HOST_MIPMAP_TEXELS


def upload_mipmaps(
    texture: moderngl.Texture, image: np.ndarray, levels: list[np.ndarray] | None = None
) -> bool:
    """Give ``texture`` (RGBA8, level 0 = ``image``, HxWx4 uint8) all its smaller levels
    (``levels``: ``mip_levels(image)`` made beforehand, on any thread); False where the
    GPU's blit is the better way (more than ``HOST_MIPMAP_TEXELS``) or the GL library
    cannot be reached: the caller then builds them on the GPU. Render thread, with the
    texture's context current."""
    if not host_mipmapped(image):
        return False
    functions = _gl()
    if functions is None:
        return False
    tex_image, bind_buffer, pixel_store = functions
    # Bound where moderngl itself uploads (its spare unit), leaving unit 0's binding be.
    texture.use(texture.ctx.default_texture_unit)
    bind_buffer(_GL_PIXEL_UNPACK_BUFFER, 0)  # pointers below are client memory
    pixel_store(_GL_UNPACK_ALIGNMENT, 1)
    for level, pixels in enumerate(levels if levels is not None else mip_levels(image), 1):
        pixels = np.ascontiguousarray(pixels)
        h, w = pixels.shape[:2]
        tex_image(
            _GL_TEXTURE_2D, level, _GL_RGBA8, w, h, 0, _GL_RGBA, _GL_UNSIGNED_BYTE,
            pixels.ctypes.data,
        )  # fmt: skip
    return True
