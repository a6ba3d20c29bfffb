"""Mipmaps made by numpy (``engine.render.mipmaps``): the same levels as the rasteriser's
own ``glGenerateMipmap``, uploaded where a draw samples them."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from engine.render.gpu_wait import gl_function
from engine.render.mipmaps import mip_levels, upload_mipmaps

_GL_TEXTURE_2D, _GL_RGBA, _GL_UNSIGNED_BYTE = 0x0DE1, 0x1908, 0x1401


def _read_level(texture, level: int, size: tuple[int, int]) -> np.ndarray:
    """Level ``level`` of a bound RGBA8 texture (moderngl reads only levels it made)."""
    get = gl_function("glGetTexImage")
    get.argtypes = [ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p]
    texture.use(0)
    out = np.zeros((size[1], size[0], 4), np.uint8)
    get(_GL_TEXTURE_2D, level, _GL_RGBA, _GL_UNSIGNED_BYTE, out.ctypes.data)
    return out


@pytest.mark.parametrize("shape", [(64, 64), (32, 16), (8, 2), (37, 51), (1, 7), (50, 30)])
def test_levels_are_those_the_rasteriser_generates(make_headless_app, shape):
    """Bit for bit on llvmpipe, for sides that halve evenly and odd ones (the blit then
    samples between texels), down to 1x1."""
    rng = np.random.default_rng(sum(shape))
    image = rng.integers(0, 256, (*shape, 4), dtype=np.uint8)
    with make_headless_app(size=(16, 16)) as app:
        if not app.software:
            pytest.skip("the levels are a software rasteriser's; a GPU filters its own way")
        ctx = app.ctx
        theirs = ctx.texture((shape[1], shape[0]), 4, image.tobytes())
        theirs.build_mipmaps()
        ours = ctx.texture((shape[1], shape[0]), 4, image.tobytes())
        assert upload_mipmaps(ours, image)
        levels = mip_levels(image)
        assert levels[-1].shape[:2] == (1, 1)
        for level, expected in enumerate(levels, start=1):
            size = (expected.shape[1], expected.shape[0])
            assert size == (max(1, shape[1] >> level), max(1, shape[0] >> level))
            assert np.array_equal(_read_level(ours, level, size), expected)
            assert np.array_equal(_read_level(theirs, level, size), expected), level


def test_a_far_textured_avatar_draws_the_same_with_either_mipmaps(make_headless_app):
    """Far away, the bundled avatar's textures are sampled from their small levels: the
    frame is the same whether numpy or the rasteriser made them."""
    from avatarkit.cli.common import open_avatar
    from engine import ModelRenderer

    avatar = open_avatar("ava")
    head = np.array(avatar.framing.head_center, np.float32)
    frames = []
    for host in (False, True):
        with make_headless_app(size=(160, 90), quality="low") as app:
            app.renderer.host_mipmaps = host
            app.scene.create_entity("a").add_component(ModelRenderer(avatar.asset))
            eye = head + [0.0, 0.0, avatar.framing.camera_distance * 4]
            app.scene.camera.look_at(eye, head)
            app.step()
            frames.append(app.read_pixels())
    assert np.array_equal(frames[0], frames[1])
    assert frames[0].std() > 5  # a picture, not a blank


def test_a_large_texture_is_left_to_the_gpus_blit(make_headless_app):
    """Above HOST_MIPMAP_TEXELS the blit is quicker than numpy: nothing is uploaded."""
    from engine.render.mipmaps import HOST_MIPMAP_TEXELS

    side = int(HOST_MIPMAP_TEXELS**0.5)
    image = np.zeros((side + 1, side, 4), np.uint8)
    with make_headless_app(size=(16, 16)) as app:
        texture = app.ctx.texture((side, side + 1), 4, image.tobytes())
        assert not upload_mipmaps(texture, image)
        at_limit = app.ctx.texture((side, side), 4, image[:side].tobytes())
        assert upload_mipmaps(at_limit, image[:side])  # at the limit: numpy's
