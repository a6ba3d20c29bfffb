"""Real EGL rendering, read back and checked pixel by pixel."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from engine import Component, EngineError, ModelRenderer, load_gltf

GOLDEN = Path(__file__).parent / "golden" / "sphere_scene.png"
# Mean absolute difference (0..255) allowed against the golden image; different Mesa /
# LLVM versions rasterise and round slightly differently.
GOLDEN_TOLERANCE = 1.0


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return xs.min(), ys.min(), xs.max(), ys.max()


def _empty_frame(app) -> np.ndarray:
    app.step()
    return app.read_pixels()


def _show(app, path):
    asset = load_gltf(path)
    model = app.scene.create_entity("model").add_component(ModelRenderer(asset))
    app.scene.camera.frame_bounds(
        *asset.bounds(), direction=(0.3, 0.3, 1), aspect=app.aspect, margin=1.0
    )
    return model


def test_scene_renders_something_lit_and_shaded(app, sphere_scene_path, foreground_mask):
    empty = _empty_frame(app)
    _show(app, sphere_scene_path)
    app.step()
    pixels = app.read_pixels()
    assert pixels.shape == (120, 160, 3) and pixels.dtype == np.uint8
    mask = foreground_mask(pixels, empty)
    assert 0.1 < mask.mean() < 0.9  # the model covers a good part of the frame
    x0, y0, x1, y1 = _bbox(mask)
    assert x0 > 0 and y0 > 0 and x1 < 159 and y1 < 119  # framed: nothing cut off
    lum = pixels[mask].astype(float).mean(axis=1)
    assert lum.std() > 15  # shaded, not a flat silhouette
    assert empty[0].mean() > empty[-1].mean() + 20  # background gradient: light top, dark bottom


def test_morph_weight_changes_the_silhouette(app, morph_cube_path, foreground_mask):
    empty = _empty_frame(app)
    model = _show(app, morph_cube_path)
    model.set_weight("shrink", 0.0)  # the file's default is 0.25
    app.step()
    rest = foreground_mask(app.read_pixels(), empty)
    model.set_weight("stretchX", 1.0)
    app.step()
    stretched = foreground_mask(app.read_pixels(), empty)
    (rx0, ry0, rx1, _), (sx0, sy0, sx1, _) = _bbox(rest), _bbox(stretched)
    assert sx1 > rx1 + 10  # grew to the right
    assert abs(sx0 - rx0) <= 2  # the -x side did not move
    assert abs(sy0 - ry0) <= 2  # nor did it grow upwards (the bottom edge moves in perspective)
    assert stretched.sum() > rest.sum() * 1.3
    model.set_weight("stretchX", 0.0)
    app.step()
    np.testing.assert_array_equal(foreground_mask(app.read_pixels(), empty), rest)  # back exactly


def test_default_weights_and_weights_by_name_order(app, morph_cube_path, foreground_mask):
    empty = _empty_frame(app)
    model = _show(app, morph_cube_path)
    assert model.weights.tolist() == [0.0, 0.0, 0.25]
    app.step()
    shrunk = foreground_mask(app.read_pixels(), empty).sum()
    model.set_weights(np.array([0.7, 1.0, 0.0]), names=["notInTheFile", "stretchY", "shrink"])
    assert model.weights.tolist() == [0.0, 1.0, 0.0]
    app.step()
    grown = foreground_mask(app.read_pixels(), empty)
    assert grown.sum() > shrunk * 1.5
    with pytest.raises(EngineError) as info:
        model.set_weight("noSuchTarget", 1.0)
    assert info.value.code == "invalidArgument"
    with pytest.raises(EngineError):
        model.set_weights([1.0])  # wrong length


def test_many_active_targets_evaluated_on_the_gpu(app, morph_cube_path, foreground_mask):
    """All three targets active at once: the result is their sum (checked on the GPU
    output: a cube grown in +x and +y but not shrunk looks like stretchX+stretchY)."""
    empty = _empty_frame(app)
    model = _show(app, morph_cube_path)
    model.set_weights({"stretchX": 1.0, "stretchY": 1.0, "shrink": 0.0})
    app.step()
    both = _bbox(foreground_mask(app.read_pixels(), empty))
    model.set_weights({"stretchX": 1.0, "stretchY": 0.0})
    app.step()
    only_x = _bbox(foreground_mask(app.read_pixels(), empty))
    assert both[1] < only_x[1] - 5  # the top rose


def test_texture_shows_its_pattern(app, sphere_scene_path, foreground_mask):
    _show(app, sphere_scene_path)
    app.scene.find("model").get_component(ModelRenderer).node("ball").scale[:] = (
        0.0  # hide the ball
    )
    app.scene.camera.look_at((0, 0.6, 2.2), (0, -0.5, 0)).near = 0.1
    app.step()
    pixels = app.read_pixels().astype(int)
    box = pixels[60:110, 40:120]
    red_minus_blue = box[..., 0] - box[..., 2]
    assert red_minus_blue.max() > 60  # the reddish checker squares
    assert red_minus_blue.std() > 15  # and the dark ones in between


def test_background_is_srgb_encoded(app):
    grey = (0.2140, 0.2140, 0.2140)  # linear 0.214 is sRGB 0.5 (128)
    app.scene.lighting.background = (grey, grey)
    app.step()
    pixels = app.read_pixels()
    assert abs(pixels.mean() - 127.5) < 1.5


def test_transparent_background_alpha(app, sphere_scene_path):
    app.scene.lighting.background = None
    app.scene.lighting.clear_color = (0, 0, 0, 0)
    _show(app, sphere_scene_path)
    app.step()
    rgba = app.read_pixels(alpha=True)
    assert rgba.shape[2] == 4
    assert rgba[0, 0, 3] == 0 and rgba[60, 80, 3] == 255


def test_instances_share_one_upload_and_release_it(app, morph_cube_path):
    asset = load_gltf(morph_cube_path)
    a = app.scene.create_entity("a").add_component(ModelRenderer(asset))
    b = app.scene.create_entity("b").add_component(ModelRenderer(asset))
    app.step()
    assert len(app.renderer._assets) == 1 and a._gpu is b._gpu
    assert app.renderer.draw_calls == 2
    a.entity.destroy()
    app.step()
    assert len(app.renderer._assets) == 1
    b.entity.destroy()
    assert len(app.renderer._assets) == 0


def test_post_render_sees_the_finished_frame(app, sphere_scene_path, foreground_mask):
    empty = _empty_frame(app)
    seen = []

    class FirstFrame(Component):
        def post_render(self, frame):
            if not seen:
                seen.append(foreground_mask(app.read_pixels(), empty).mean())

    model = _show(app, sphere_scene_path)
    model.entity.add_component(FirstFrame())
    app.step()
    assert seen and seen[0] > 0.1


def test_golden_image(app, sphere_scene_path):
    """Regenerate with: REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/engine -k golden"""
    model = _show(app, sphere_scene_path)
    model.set_weight("bulge", 0.5)
    app.step()
    pixels = app.read_pixels()
    if os.environ.get("REGENERATE_GOLDEN"):
        from engine import save_png

        save_png(pixels, GOLDEN)
    from PIL import Image

    golden = np.asarray(Image.open(GOLDEN).convert("RGB"))
    diff = np.abs(golden.astype(int) - pixels.astype(int))
    assert diff.mean() < GOLDEN_TOLERANCE, f"mean diff {diff.mean():.2f}"
    assert (
        diff.max(axis=2) > 64
    ).mean() < 0.003  # no region grossly wrong (0.4 vs 0.5 bulge: 0.008)


def test_two_apps_in_one_process_keep_their_own_context(
    app, morph_cube_path, sphere_scene_path, foreground_mask
):
    from engine import App

    other = App.headless((160, 120))
    try:
        empty = _empty_frame(app)
        _show(app, morph_cube_path)
        _show(other, sphere_scene_path)
        for _ in range(2):  # interleaved frames: each must draw into its own context
            app.step()
            other.step()
        cube_pixels, sphere_pixels = app.read_pixels(), other.read_pixels()
        assert foreground_mask(cube_pixels, empty).mean() > 0.05
        assert foreground_mask(sphere_pixels, empty).mean() > 0.05
        assert np.abs(cube_pixels.astype(int) - sphere_pixels).mean() > 5
    finally:
        other.close()


def test_node_transforms_and_mesh_weights(app, morph_cube_path, foreground_mask):
    empty = _empty_frame(app)
    model = _show(app, morph_cube_path)
    app.step()
    x0 = _bbox(foreground_mask(app.read_pixels(), empty))[0]
    model.node("cube").translation[:] = (0.3, 0, 0)  # a glTF node's own transform
    app.step()
    assert _bbox(foreground_mask(app.read_pixels(), empty))[0] > x0 + 5
    model.set_mesh_weights("cube", [1.0, 0.0, 0.0])
    assert model.weights.tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(EngineError):
        model.set_mesh_weights("cube", [1.0])
    with pytest.raises(EngineError):
        model.node("nope")


def test_vertex_colours_tint_the_base_colour(app, tmp_path):
    from engine.gltf_write import GltfBuilder
    from engine.meshes import cube

    mesh = cube(1.0)
    colors = np.zeros((len(mesh["positions"]), 4), np.float32)
    colors[:, 3] = 1
    colors[:, 1] = 1.0  # pure green vertices under a white material
    b = GltfBuilder()
    white = b.add_material((1, 1, 1, 1))
    b.add_node(
        "green",
        mesh=b.add_mesh([dict(mesh, colors=colors, material=white)]),
        translation=(-0.8, 0, 0),
    )
    b.add_node("plain", mesh=b.add_mesh([dict(cube(1.0), material=white)]), translation=(0.8, 0, 0))
    asset = load_gltf(b.save(tmp_path / "colors.glb"))
    assert (
        asset.meshes[0].primitives[0].colors.shape == (24, 4)
        and asset.meshes[1].primitives[0].colors is None
    )
    app.scene.lighting.background = None
    app.scene.create_entity("m").add_component(ModelRenderer(asset))
    app.scene.camera.look_at((0, 0.5, 4), (0, 0, 0))
    app.step()
    pixels = app.read_pixels().astype(int)
    green, plain = pixels[60, 50], pixels[60, 110]
    assert green[1] > 100 and green[0] < 20 and green[2] < 20
    assert plain.min() > 100  # the uncoloured primitive stays white: no stale colour state


def test_alpha_blend_draws_after_opaque_and_mask_discards(app, tmp_path):
    from engine.gltf_write import GltfBuilder
    from engine.meshes import cube

    b = GltfBuilder()
    glass = b.add_material((0.0, 0.0, 1.0, 0.5), alpha_mode="BLEND")
    cutout = b.add_material((0.0, 1.0, 0.0, 0.2), alpha_mode="MASK")  # below the 0.5 cutoff
    red = b.add_material((1.0, 0.0, 0.0, 1.0))
    # The blended cube comes first in the file but is in front: it must still show red behind it.
    b.add_node("glass", mesh=b.add_mesh([dict(cube(0.6), material=glass)]), translation=(0, 0, 0.8))
    b.add_node("solid", mesh=b.add_mesh([dict(cube(1.0), material=red)]))
    b.add_node(
        "cutout", mesh=b.add_mesh([dict(cube(0.6), material=cutout)]), translation=(1.2, 0, 0.8)
    )
    app.scene.lighting.background = None
    app.scene.create_entity("m").add_component(
        ModelRenderer(load_gltf(b.save(tmp_path / "alpha.glb")))
    )
    app.scene.camera.look_at((0, 0, 5), (0, 0, 0))
    app.step()
    pixels = app.read_pixels().astype(int)
    centre = pixels[60, 80]
    assert centre[0] > 60 and centre[2] > 60  # red seen through blue
    # x = 1.2 at 4.2 units from the camera is about 64 px right of the centre.
    cutout_spot = pixels[60, 144]
    np.testing.assert_array_equal(cutout_spot, pixels[5, 5])  # discarded: background shows


@pytest.mark.parametrize("clear_alpha", [0.0, 1.0])
def test_blended_surfaces_leave_coverage_alpha(app, tmp_path, clear_alpha):
    """Half-transparent glass over a transparent background: alpha 0.5 (its coverage), so
    an app compositing the frame sees the glass at half strength; over an opaque one: 1."""
    from engine.gltf_write import GltfBuilder
    from engine.meshes import cube

    b = GltfBuilder()
    glass = b.add_material((0.0, 0.0, 1.0, 0.5), alpha_mode="BLEND")
    b.add_node("glass", mesh=b.add_mesh([dict(cube(1.0), material=glass)]))
    app.scene.lighting.background = None
    app.scene.lighting.clear_color = (0.0, 0.0, 0.0, clear_alpha)
    app.scene.create_entity("m").add_component(
        ModelRenderer(load_gltf(b.save(tmp_path / "glass.glb")))
    )
    app.scene.camera.look_at((0, 0, 5), (0, 0, 0))
    app.step()
    rgba = app.read_pixels(alpha=True).astype(int)
    covered = 0.5 + clear_alpha * 0.5  # a + dst * (1 - a): one front face of the cube
    assert abs(rgba[60, 80, 3] - round(255 * covered)) <= 2, rgba[60, 80]
    assert rgba[2, 2, 3] == round(255 * clear_alpha)


def test_the_normal_matrix_and_determinant_match_numpy_for_any_model_matrix():
    """``_linear_parts`` (closed forms, no LAPACK) against ``np.linalg``: rotations with
    scale, a mirror, a shear, quantization-sized scales, and a flat matrix."""
    from engine.render.renderer import _linear_parts

    rng = np.random.default_rng(7)
    matrices = [rng.normal(size=(4, 4)) for _ in range(50)]
    matrices += [np.diag([1.0, 1.0, -1.0, 1.0]), np.diag([1e-5, 2e-5, 1e-5, 1.0])]
    matrices += [np.array([[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])]
    for m in matrices:
        linear = m[:3, :3]
        det, lengths, normal = _linear_parts(m)
        assert det == pytest.approx(np.linalg.det(linear), rel=1e-9, abs=1e-30)
        assert lengths == pytest.approx(np.prod(np.linalg.norm(linear, axis=0)), rel=1e-9)
        expected = np.linalg.inv(linear).astype(np.float32)
        got = np.frombuffer(normal, np.float32).reshape(3, 3)
        assert np.allclose(got, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    flat = np.diag([1.0, 0.0, 1.0, 1.0])
    assert _linear_parts(flat)[0] == 0.0
