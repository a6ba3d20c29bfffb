"""The post anti-aliasing pass and the named qualities, on real EGL pixels."""

from __future__ import annotations

import numpy as np
import pytest

from engine import App, EngineError, ModelRenderer, load_gltf
from engine.render.post_aa import (
    EDGE_THRESHOLD,
    EDGE_THRESHOLD_MIN,
    FULL_SCREEN,
    FXAA_FRAGMENT,
    PostAntiAliasing,
)
from engine.render.quality import QUALITIES, Quality, resolve_quality

W, H = 96, 64
SLOPE = 0.3  # a nearly level edge: the worst case for aliasing (long stair steps)


def _edge_image(supersample: int = 1) -> np.ndarray:
    """White above the line y = 20 + SLOPE * x, black below; RGBA uint8, row 0 = y 0.
    With ``supersample`` the coverage of each pixel is averaged over s x s points."""
    s = supersample
    ys, xs = np.mgrid[0 : H * s, 0 : W * s]
    inside = (ys + 0.5) / s > 20 + SLOPE * (xs + 0.5) / s
    coverage = inside.reshape(H, s, W, s).mean(axis=(1, 3))
    rgba = np.empty((H, W, 4), np.uint8)
    rgba[..., :3] = np.round(coverage * 255)[..., None]
    rgba[..., 3] = 255
    return rgba


def _apply_post_aa(ctx, image: np.ndarray) -> np.ndarray:
    """Run the pass as the render target does: the target holds a copy of the source."""
    h, w = image.shape[:2]
    source = ctx.texture((w, h), 4, image.tobytes())
    color = ctx.texture((w, h), 4, image.tobytes())
    target = ctx.framebuffer([color])
    post = PostAntiAliasing(ctx)
    post.apply(source, target)
    out = np.frombuffer(target.read(components=4), np.uint8).reshape(h, w, 4)
    post.release()
    return out


def _fxaa_on_every_pixel(ctx, image: np.ndarray) -> np.ndarray:
    """The FXAA shader run over the whole image with no mask at all."""
    h, w = image.shape[:2]
    source = ctx.texture((w, h), 4, image.tobytes())
    source.repeat_x = source.repeat_y = False  # clamped, as the pass samples its source
    source.use(0)
    program = ctx.program(vertex_shader=FULL_SCREEN, fragment_shader=FXAA_FRAGMENT)
    program["u_texel"].value = (1 / w, 1 / h)
    target = ctx.framebuffer([ctx.texture((w, h), 4)])
    target.use()
    ctx.disable(ctx.DEPTH_TEST)
    ctx.vertex_array(program, []).render(vertices=3)
    return np.frombuffer(target.read(components=4), np.uint8).reshape(h, w, 4)


@pytest.fixture
def ctx(app):
    with app.ctx:
        yield app.ctx


def test_post_pass_smooths_a_hard_edge_towards_its_coverage(ctx):
    hard, truth = _edge_image(), _edge_image(supersample=8).astype(float)
    out = _apply_post_aa(ctx, hard)
    grey = lambda img: img[..., 0].astype(float)  # noqa: E731
    # The aliased input has no intermediate values at all; the output has them along
    # the whole edge, one or more per column away from the frame's border.
    assert not ((grey(hard) > 0) & (grey(hard) < 255)).any()
    soft = (grey(out) > 8) & (grey(out) < 247)
    assert soft[:, 4:-4].any(axis=0).all()
    # And they approach the true coverage: error on the edge pixels well under half.
    edge = np.abs(grey(hard) - truth[..., 0]) > 8
    assert (
        np.abs(grey(out) - truth[..., 0])[edge].mean()
        < 0.5 * np.abs(grey(hard) - truth[..., 0])[edge].mean()
    )
    # Away from the edge nothing changes (the pass only writes the edge pixels).
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    far = np.abs(ys - (20 + SLOPE * xs)) > 2.5
    assert (out[far] == hard[far]).all()
    assert (out[..., 3] == 255).all()


def _shapes_on_noise(w: int, h: int) -> np.ndarray:
    """Hard-edged shapes (a disc, a tilted bar) on a faint noise: the noise's luma steps
    (at most 4 levels) are far under the edge threshold, the shapes' far over it."""
    rng = np.random.default_rng(3)
    grey = 100 + rng.integers(-2, 3, (h, w))
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    grey[(xs - 0.3 * w) ** 2 + (ys - 0.5 * h) ** 2 < (0.22 * h) ** 2] = 230
    grey[np.abs((ys - 0.2 * h) - 0.45 * (xs - 0.55 * w)) < 3.5] = 20
    rgba = np.full((h, w, 4), 255, np.uint8)
    rgba[..., :3] = grey[..., None]
    rgba[..., 0] = np.clip(grey + 15, 0, 255)  # not quite grey: luma from all channels
    return rgba


def _edge_pixels(image: np.ndarray) -> np.ndarray:
    """The pass's per-pixel test, in numpy: a luma step to a 4-neighbour (clamped)."""
    luma = image[..., :3].astype(np.float64) / 255 @ np.array([0.299, 0.587, 0.114])
    p = np.pad(luma, 1, mode="edge")
    cross = np.stack([luma, p[:-2, 1:-1], p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:]])
    hi, lo = cross.max(axis=0), cross.min(axis=0)
    return hi - lo >= np.maximum(EDGE_THRESHOLD_MIN, hi * EDGE_THRESHOLD)


def test_the_block_mask_filters_every_edge_pixel_and_nothing_else(ctx):
    # A size that is no multiple of the 4-pixel blocks: the last blocks hang over.
    image = _shapes_on_noise(70, 46)
    out = _apply_post_aa(ctx, image)
    expected = _fxaa_on_every_pixel(ctx, image)
    edge = _edge_pixels(image)
    assert 0.03 < edge.mean() < 0.3
    # Pixels without a luma step keep their colour exactly, though most share a block with
    # an edge pixel (the full pass runs on whole blocks)...
    assert (out[~edge] == image[~edge]).all()
    assert (expected[~edge] == image[~edge]).all()
    # ... and every edge pixel is filtered as a pass over all pixels filters it.
    assert (out[edge] != image[edge]).any(axis=-1).mean() > 0.5
    np.testing.assert_array_equal(out, expected)


def test_qualities_pick_samples_and_the_post_pass_by_rasteriser():
    assert resolve_quality("auto", software=True) == QUALITIES["geometric"]
    assert resolve_quality("auto", software=True, live=True) == QUALITIES["medium"]
    assert resolve_quality("auto", software=False) == QUALITIES["high"]
    assert QUALITIES["medium"].samples == 0 and QUALITIES["medium"].post_aa
    assert QUALITIES["high"].samples == 4
    assert not QUALITIES["low"].post_aa
    assert QUALITIES["low"].with_samples(2) == Quality("low", 2, False)
    with pytest.raises(EngineError, match="unknown render quality 'ultra'"):
        resolve_quality("ultra", software=True)
    with pytest.raises(EngineError, match="samples must be 0-16"):
        QUALITIES["low"].with_samples(-1)


def _render_sphere(app, path) -> np.ndarray:
    asset = load_gltf(path)
    app.scene.create_entity("m").add_component(ModelRenderer(asset))
    app.scene.camera.frame_bounds(*asset.bounds(), aspect=app.aspect, margin=1.0)
    app.step()
    return app.read_pixels().astype(float)


def test_medium_quality_frames_have_soft_edges_low_ones_do_not(egl, sphere_scene_path):
    """Through the App: the same scene at low and medium, against a 4x4 supersampled
    render; medium's pixels on the ball's silhouette (the upper part of the frame; the
    box below has a checker texture whose moire no edge filter undoes) are closer to it."""
    size = (160, 120)
    frames = {}
    for name in ("low", "medium"):
        with App.headless(size, quality=name) as app:
            assert app.quality == QUALITIES[name]
            frames[name] = _render_sphere(app, sphere_scene_path)
    with App.headless((size[0] * 4, size[1] * 4), quality="low") as app:
        truth = _render_sphere(app, sphere_scene_path).reshape(120, 4, 160, 4, 3).mean((1, 3))
    edge = np.abs(frames["low"] - truth).max(axis=2) > 24
    edge[75:] = False
    assert edge.sum() > 40  # the ball's silhouette
    low_error = np.abs(frames["low"] - truth)[edge].mean()
    medium_error = np.abs(frames["medium"] - truth)[edge].mean()
    assert medium_error < 0.6 * low_error, (low_error, medium_error)


def test_set_quality_rebuilds_the_target(app, sphere_scene_path):
    assert app.set_quality("medium") == QUALITIES["medium"]
    assert app.target.post_aa is not None and app.target.samples == 0
    app.set_quality(QUALITIES["medium"].with_samples(4))
    assert app.target.samples == 4
    pixels = _render_sphere(app, sphere_scene_path)
    assert pixels.std() > 10  # it still draws


def test_the_post_pass_region_holds_everything_drawn(egl, sphere_scene_path, foreground_mask):
    """The post pass runs over ``Renderer.drawn_region`` only: it must hold every pixel
    the meshes cover, morphs included (the ball's bulge target swells its top)."""
    with App.headless((160, 120), quality="medium") as app:
        app.scene.camera.look_at((0.0, 0.4, 5.0), (0.0, 0.4, 0.0))  # the bulge near the top
        app.step()
        empty = app.read_pixels()
        assert app.renderer.drawn_region is None  # nothing drawn: no post pass at all
        asset = load_gltf(sphere_scene_path)
        model = app.scene.create_entity("m").add_component(ModelRenderer(asset))
        model.set_weight("bulge", 1.0)
        app.step()
        drawn = foreground_mask(app.read_pixels(), empty)
        x, y, w, h = app.target._pixels(app.renderer.drawn_region)
    rows, cols = np.nonzero(drawn[::-1])  # GL rows run bottom-up
    assert drawn.sum() > 500
    assert x <= cols.min() and cols.max() < x + w
    assert y <= rows.min() and rows.max() < y + h
    assert w * h < 160 * 120  # and it is a part of the frame, not all of it


def test_the_region_holds_every_node_frame_after_frame(egl, tmp_path, foreground_mask):
    """A small and a large cube on two nodes: each node's box (kept from frame to frame
    by the renderer) is its own, and follows its node when it moves."""
    from engine.gltf_write import GltfBuilder
    from engine.meshes import cube

    b = GltfBuilder()
    b.add_node("small", mesh=b.add_mesh([cube(0.1)]), translation=(-0.8, 0.0, 0.0))
    b.add_node("large", mesh=b.add_mesh([cube(0.6)]), translation=(0.6, 0.0, 0.0))
    asset = load_gltf(b.save(tmp_path / "cubes.glb"))
    with App.headless((160, 120), quality="medium") as app:
        app.scene.camera.look_at((0.0, 0.0, 5.0), (0.0, 0.0, 0.0))
        app.step()
        empty = app.read_pixels()
        model = app.scene.create_entity("m").add_component(ModelRenderer(asset))
        for step in range(3):
            model.nodes[0].translation[1] = 0.4 * step  # the small cube rises
            app.step()
            drawn = foreground_mask(app.read_pixels(), empty)
            x, y, w, h = app.target._pixels(app.renderer.drawn_region)
            rows, cols = np.nonzero(drawn[::-1])
            assert drawn.sum() > 500
            assert x <= cols.min() and cols.max() < x + w, step
            assert y <= rows.min() and rows.max() < y + h, step
