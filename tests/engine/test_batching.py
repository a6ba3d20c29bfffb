"""A mesh's primitives sharing a material are drawn as one (``engine.render.batching``):
fewer draw calls, the pixels of one draw per primitive, morph targets still moving only
their own part, blended primitives left alone. Real EGL pixels."""

from __future__ import annotations

import numpy as np
import pytest

import engine.render.upload_data as upload
from engine import App, ModelRenderer, load_gltf
from engine.gltf_write import GltfBuilder
from engine.meshes import cube
from engine.render.batching import merge_by_material


@pytest.fixture
def three_cubes(tmp_path):
    """One mesh: red cubes left and right, a blue one between; a target lifts the right
    red cube only; then two blended grey cubes behind."""
    b = GltfBuilder()
    red, blue = b.add_material((0.8, 0.1, 0.1, 1.0)), b.add_material((0.1, 0.1, 0.8, 1.0))
    glass = b.add_material((0.5, 0.5, 0.5, 0.5), alpha_mode="BLEND")
    prims = []
    for k, (x, z, material) in enumerate(
        [(-1.2, 0, red), (0, 0, blue), (1.2, 0, red), (-0.6, -2, glass), (0.6, -2, glass)]
    ):
        c = cube(0.8)
        c["positions"] = c["positions"] + np.float32([x, 0, z])
        lift = np.zeros_like(c["positions"])
        lift[:, 1] = 0.6 if k == 2 else 0.0
        prims.append(dict(c, material=material, targets=[{"POSITION": lift}]))
    b.add_node("m", mesh=b.add_mesh(prims, target_names=["lift"]))
    return b.save(tmp_path / "cubes.glb")


def _draw(path, host: bool, lift: float, merge: bool, monkeypatch) -> tuple[np.ndarray, int]:
    if not merge:
        monkeypatch.setattr(upload, "merge_by_material", lambda prims, materials: list(prims))
    with App.headless((160, 80), fps=30, samples=0) as app:
        app.renderer.host_morphs = host
        app.scene.camera.look_at((0.0, 0.5, 6.0), (0.0, 0.0, 0.0))
        app.scene.create_entity("m").add_component(ModelRenderer(path)).set_weight("lift", lift)
        app.step()
        picture = app.read_pixels().astype(int)
        draws = app.renderer.draw_calls
    monkeypatch.undo()
    return picture, draws


@pytest.mark.parametrize("host", [True, False], ids=["host morphs", "shader morphs"])
def test_merged_primitives_draw_the_same_pixels_in_fewer_calls(egl, three_cubes, host, monkeypatch):
    for lift in (0.0, 1.0):
        merged, merged_draws = _draw(three_cubes, host, lift, True, monkeypatch)
        apart, apart_draws = _draw(three_cubes, host, lift, False, monkeypatch)
        assert np.abs(merged - apart).max() <= 1, lift
        assert (merged_draws, apart_draws) == (4, 5)  # the red pair is one; BLEND stays two
    # The target still lifts only the right cube: the left third is unchanged.
    rest = _draw(three_cubes, host, 0.0, True, monkeypatch)[0]
    lifted = _draw(three_cubes, host, 1.0, True, monkeypatch)[0]
    assert np.abs(rest[:, :50] - lifted[:, :50]).max() <= 1
    assert np.abs(rest[:, 110:] - lifted[:, 110:]).max() > 50


def test_groups_keep_first_member_order_and_offset_indices(three_cubes):
    asset = load_gltf(three_cubes)
    prims = asset.meshes[0].primitives
    drawn = merge_by_material(prims, asset.materials)
    assert [p.material for p in drawn] == [0, 1, 2, 2]
    red = drawn[0]
    n = prims[0].vertex_count
    both = np.concatenate([prims[0].positions, prims[2].positions])
    np.testing.assert_array_equal(red.positions, both)
    np.testing.assert_array_equal(red.indices[len(prims[0].indices) :], prims[2].indices + n)
    np.testing.assert_array_equal(red.targets[0].positions[n:], prims[2].targets[0].positions)
    assert not red.targets[0].positions[:n].any()
    assert drawn[1] is prims[1] and drawn[2] is prims[3] and drawn[3] is prims[4]
