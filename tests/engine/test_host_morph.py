"""Host-blended morph targets (``engine.render.host_morph``, the software rasteriser's
path) draw the pixels of the shader's target loop (the GPU path), per instance, and
follow every weight change. Real EGL pixels."""

from __future__ import annotations

import numpy as np
import pytest

from engine import App, ModelRenderer, load_gltf
from engine.render.host_morph import HostTargets


def _shuffled(asset):
    """``asset`` with its morphed primitive's vertices in a random order (the same
    triangles): the vertices a target moves lie scattered, not in one run."""
    prim = next(p for m in asset.meshes for p in m.primitives if p.targets)
    order = np.random.default_rng(0).permutation(prim.vertex_count)
    prim.positions, prim.normals = prim.positions[order], prim.normals[order]
    if prim.uvs is not None:
        prim.uvs = prim.uvs[order]
    for target in prim.targets:
        target.positions, target.normals = target.positions[order], target.normals[order]
    prim.indices = np.argsort(order)[prim.indices].astype(prim.indices.dtype)
    return asset


def _draw(path, host: bool, bulges: tuple[float, ...], shuffle: bool = False) -> np.ndarray:
    """One frame of one sphere per weight, side by side."""
    asset = _shuffled(load_gltf(path)) if shuffle else load_gltf(path)
    with App.headless((240, 120), fps=30, samples=0) as app:
        app.renderer.host_morphs = host
        app.scene.camera.look_at((0.0, 0.4, 6.0), (0.0, 0.4, 0.0))
        for k, bulge in enumerate(bulges):
            entity = app.scene.create_entity(f"m{k}")
            entity.transform.translation[0] = 2.2 * (k - (len(bulges) - 1) / 2)
            entity.add_component(ModelRenderer(asset)).set_weight("bulge", bulge)
        app.step()
        return app.read_pixels().astype(int)


@pytest.mark.parametrize("shuffle", [False, True])
def test_host_blend_draws_the_shader_loop_pixels(egl, sphere_scene_path, shuffle):
    """Both uploads: the moving vertices in one run (written as they are blended) and
    scattered (through the primitive's copy)."""
    asset = _shuffled(load_gltf(sphere_scene_path)) if shuffle else load_gltf(sphere_scene_path)
    moving, _, _ = HostTargets(next(m for m in asset.meshes if m.target_names).primitives).parts[0]
    assert (moving[-1] - moving[0] + 1 > len(moving)) == shuffle
    host = _draw(sphere_scene_path, True, (0.0, 0.6, 1.0), shuffle)
    shader = _draw(sphere_scene_path, False, (0.0, 0.6, 1.0), shuffle)
    assert np.abs(host - shader).max() <= 2
    # Each instance has its own buffers: the three spheres differ from each other.
    thirds = np.split(host, 3, axis=1)
    assert np.abs(thirds[0] - thirds[2]).max() > 50
    assert np.abs(thirds[1] - thirds[2]).max() > 20


def test_weights_are_followed_and_idle_frames_blend_nothing(egl, sphere_scene_path, monkeypatch):
    blends = []
    blend = HostTargets.blend
    monkeypatch.setattr(HostTargets, "blend", lambda self, w: blends.append(1) or blend(self, w))
    with App.headless((120, 120), fps=30, samples=0) as app:
        app.scene.camera.look_at((0.0, 0.4, 5.0), (0.0, 0.4, 0.0))
        model = app.scene.create_entity("m").add_component(ModelRenderer(sphere_scene_path))
        pictures = []
        for bulge in (1.0, 1.0, 1.0, 0.0):
            model.set_weight("bulge", bulge)
            app.step()
            pictures.append(app.read_pixels().astype(int))
    assert app.renderer.host_morphs  # llvmpipe: the default here
    assert len(blends) == 2  # the first frame and the change, not the idle frames
    assert np.abs(pictures[0] - pictures[2]).max() == 0
    assert np.abs(pictures[0] - pictures[3]).max() > 50  # back at rest


def test_targets_keep_only_moving_vertices(sphere_scene_path):
    asset = load_gltf(sphere_scene_path)
    mesh = next(m for m in asset.meshes if m.target_names)
    targets = HostTargets(mesh.primitives)
    prim = mesh.primitives[0]
    moving, start, end = targets.parts[0]
    assert 0 < len(moving) < prim.vertex_count  # the bulge moves the top only
    assert targets.deltas.shape == (len(mesh.target_names), 6 * (end - start))
    rows = targets.blend(np.ones(len(mesh.target_names), np.float32))
    expected = prim.positions[moving] + sum(t.positions[moving] for t in prim.targets)
    np.testing.assert_allclose(rows[start:end, :3], expected, atol=1e-6)


def test_too_much_morph_data_is_one_coded_error(sphere_scene_path, monkeypatch):
    import engine.render.host_morph as host_morph
    from engine import EngineError
    from engine.errors import RENDER_NOT_SUPPORTED

    mesh = next(m for m in load_gltf(sphere_scene_path).meshes if m.target_names)
    monkeypatch.setattr(host_morph, "MAX_TARGET_BYTES", 1024)  # a hostile file's size, scaled
    with pytest.raises(EngineError) as err:
        HostTargets(mesh.primitives)
    assert err.value.code == RENDER_NOT_SUPPORTED and "too large" in str(err.value)


def test_blend_over_each_targets_own_rows_is_the_dense_sum_exactly():
    """Each target is blended over the spans of rows it moves (``_segments``): regions
    far apart, runs with short gaps, a target that moves nothing. The result is the dense
    multiply-add to the bit, for any weights."""
    from engine.gltf_asset import GltfPrimitive, MorphTarget
    from engine.render import host_morph

    rng = np.random.default_rng(1)
    n = 1000
    regions = [[(0, 5)], [(100, 160), (170, 180)], [(300, 301), (900, 1000)], [], [(0, 1000)]]
    targets = []
    for spans in regions:
        positions, normals = np.zeros((n, 3), np.float32), np.zeros((n, 3), np.float32)
        for a, b in spans:
            positions[a:b] = rng.normal(size=(b - a, 3))
            normals[a:b] = rng.normal(size=(b - a, 3))
        targets.append(MorphTarget(positions, normals))
    prim = GltfPrimitive(
        rng.normal(size=(n, 3)).astype(np.float32),
        rng.normal(size=(n, 3)).astype(np.float32),
        None,
        np.arange(3 * (n // 3), dtype=np.uint32),
        targets=targets,
    )
    host = HostTargets([prim])
    assert host.segments[0] == [(0, 30)] and host.segments[3] == []
    assert host.segments[1] == [(600, 1080)]  # a 10-row gap is joined
    assert host.segments[2] == [(1800, 1806), (5400, 6000)]  # a 600-row gap is not
    assert max(len(s) for s in host.segments) <= 2
    for weights in (rng.uniform(-1, 1, 5), np.array([0.3, 0, 1.0, 0.5, 0]), np.ones(5)):
        weights = weights.astype(np.float32)
        dense = host.rest.reshape(-1).copy()
        for t in np.flatnonzero(np.abs(weights) > host_morph._EPSILON):
            dense += host.deltas[t] * weights[t]
        np.testing.assert_array_equal(host.blend(weights).reshape(-1), dense)


def _front_pass(asset, monkeypatch, walk_order: bool = False) -> tuple[list[bool], np.ndarray]:
    """Per node of one frame's front pass: whether it is drawn with morph weights; and the
    frame's pixels (``walk_order``: drawn in the file's order, as before the rule)."""
    from engine.render.renderer import Renderer

    calls: list[bool] = []
    draw_node = Renderer.draw_node

    def spy(self, gpu, prims, matrix, weights, palette=None, sides="both"):
        if sides == "front":
            calls.append(weights is not None)
        return draw_node(self, gpu, prims, matrix, weights, palette, sides)

    monkeypatch.setattr(Renderer, "draw_node", spy)
    with App.headless((160, 160), fps=30, samples=0) as app:
        model = app.scene.create_entity("m").add_component(ModelRenderer(asset))
        if walk_order:
            model._draw_order = model._walk
        if "jawOpen" in model.target_names:
            model.set_weight("jawOpen", 0.8)
        lo, hi = asset.bounds()
        app.scene.camera.frame_bounds(lo, hi, aspect=1.0)
        app.step()
        return calls, app.read_pixels().astype(int)


def test_a_walk_that_starts_morphed_draws_its_still_nodes_first(egl, monkeypatch):
    """The RPM-shaped head lists its morphed head first: its still body and eyes are drawn
    first, so the rasteriser starts on them while the head's targets are blended; the
    pixels are those of the file's order."""
    from pathlib import Path

    asset = load_gltf(Path(__file__).resolve().parents[2] / "assets/test/rpm_head.glb")
    listed, as_listed = _front_pass(asset, monkeypatch, walk_order=True)
    assert listed[0] is True  # the file's walk starts morphed
    morphed, pixels = _front_pass(asset, monkeypatch)
    assert morphed == sorted(morphed) and morphed[0] is False and morphed[-1] is True
    assert np.abs(pixels - as_listed).max() <= 1


def test_a_walk_that_starts_still_keeps_the_files_order(egl, monkeypatch):
    """A bundled avatar lists its hair (still) before its face (morphed) and body: the
    file's early-depth order, kept (the face hides the body's neck)."""
    from avatarkit.cli.common import open_avatar

    morphed, _ = _front_pass(open_avatar("ava").asset, monkeypatch)
    assert morphed == [False, True, False]
