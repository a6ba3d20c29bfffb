"""Geometric edge anti-aliasing (engine.render.edge_capture, edge_lines): the neighbours
the capture pairs edges by, and the frames of quality ``geometric`` against a 4x4
supersampled render, through the App on real EGL pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine import App, ModelRenderer, load_gltf
from engine.gltf_write import GltfBuilder
from engine.meshes import cube, uv_sphere
from engine.render.edge_capture import triangle_neighbours
from engine.render.quality import QUALITIES

# A unit square in two triangles, and vertex 4: a copy of vertex 2 (a UV seam).
POSITIONS = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [1, 1, 0]], np.float32)


def _neighbours(indices: list[int]) -> list[list[list[int]]]:
    return triangle_neighbours(np.array(indices), POSITIONS).tolist()


def test_the_shared_edge_names_the_triangle_across_and_its_own_number_for_it():
    # Triangle 0's edge 2 (corner 2 -> 0) is triangle 1's edge 0 (0 -> 2); the rest open.
    none = [-1, -1]
    assert _neighbours([0, 1, 2, 0, 2, 3]) == [[none, none, [1, 0]], [[0, 2], none, none]]


def test_neighbours_are_found_by_position_across_a_seam():
    none = [-1, -1]
    assert _neighbours([0, 1, 4, 0, 2, 3]) == [[none, none, [1, 0]], [[0, 2], none, none]]


def test_a_neighbour_wound_the_same_way_is_no_neighbour():
    # Both triangles run 0 -> 2: inconsistent winding, so the edge counts as open.
    assert _neighbours([0, 1, 2, 2, 0, 3])[0][2] == [-1, -1]


def _render(size, quality, path: Path, step=None) -> np.ndarray:
    with App.headless(size, quality=quality) as app:
        asset = load_gltf(path)
        app.scene.create_entity("m").add_component(ModelRenderer(asset))
        app.scene.camera.frame_bounds(*asset.bounds(), aspect=app.aspect, margin=1.0)
        app.step()
        if step is not None:
            step(app)
        return app.read_pixels().astype(float)


def _errors(path: Path, rows: slice, qualities=("low", "medium", "geometric", "high")) -> dict:
    """Mean error on the aliased pixels of ``rows``, per quality, against 4x4 supersampling."""
    size = (160, 120)
    frames = {q: _render(size, q, path) for q in qualities}
    truth = _render((640, 480), "low", path).reshape(120, 4, 160, 4, 3).mean((1, 3))
    edge = np.zeros(truth.shape[:2], bool)
    edge[rows] = (np.abs(frames["low"] - truth).max(axis=2) > 24)[rows]
    assert edge.sum() > 40
    return {q: np.abs(f - truth)[edge].mean() for q, f in frames.items()}


def test_geometric_edges_match_4x_msaa_on_a_silhouette(egl, sphere_scene_path):
    """The ball's silhouette (the upper part of the frame; the box below has a checker
    texture whose moire no edge filter undoes): much closer to the supersampled frame
    than FXAA alone, and as close as 4x MSAA."""
    errors = _errors(sphere_scene_path, slice(0, 75))
    assert errors["geometric"] < 0.75 * errors["medium"], errors
    assert errors["geometric"] <= errors["high"] * 1.05, errors


def _write_two_balls(path: Path) -> Path:
    """A big ball, and a small one in front of it over part of its silhouette."""
    b = GltfBuilder()
    sphere = uv_sphere(0.5, 24, 48)
    red = b.add_material((0.8, 0.3, 0.3, 1.0), name="red")
    blue = b.add_material((0.2, 0.3, 0.9, 1.0), name="blue")
    big = b.add_mesh([dict(sphere, material=red)], "big")
    small = b.add_mesh([dict(sphere, material=blue)], "small")
    b.add_node("big", mesh=big)
    b.add_node("small", mesh=small, translation=(0.45, 0.35, 0.6), scale=(0.5, 0.5, 0.5))
    return b.save(path)


def test_an_edge_behind_a_nearer_surface_is_not_drawn(egl, tmp_path):
    """The big ball's silhouette runs behind the small ball: inside the small ball's
    outline the geometric frame is FXAA's, pixel for pixel (an edge drawn there would
    blend the small ball with the big one behind it)."""
    path = _write_two_balls(tmp_path / "two.glb")
    size = (160, 120)
    geometric, medium = (_render(size, q, path) for q in ("geometric", "medium"))
    blue = medium[:, :, 2] > medium[:, :, 0] + 40  # the small ball
    inside = blue.copy()  # its inside: two pixels from its outline and more
    for axis in (0, 1):
        for shift in (-2, -1, 1, 2):
            inside &= np.roll(blue, shift, axis=axis)
    assert inside.sum() > 100
    assert np.array_equal(geometric[inside], medium[inside])
    assert not np.array_equal(geometric, medium)  # the lines are drawn elsewhere


def test_edges_are_captured_only_for_a_target_that_draws_them(egl, sphere_scene_path):
    """No capture at medium (no cost); a switch to geometric captures from the next
    frame on, and draws the lines."""
    asset = load_gltf(sphere_scene_path)
    with App.headless((160, 120), quality="medium") as app:
        app.scene.create_entity("m").add_component(ModelRenderer(asset))
        app.scene.camera.frame_bounds(*asset.bounds(), aspect=app.aspect, margin=1.0)
        app.step()
        assert app.renderer.edge_capture is None
        before = app.read_pixels()
        assert app.set_quality("geometric") == QUALITIES["geometric"]
        app.step()
        assert app.renderer.edge_capture is not None
        with app.ctx:
            assert len(app.renderer.edge_lines()) > 50
        assert not np.array_equal(app.read_pixels(), before)


def _write_tilted_card(path: Path, mirrored: bool) -> Path:
    """One-sided square card facing the camera, turned 20 degrees in its plane (slanted
    edges: all open borders); ``mirrored``: its node scaled by -1 in x (winding flips)."""
    square = cube(1.0)
    front = {  # the cube's +z face
        "positions": square["positions"][16:20],
        "normals": square["normals"][16:20],
        "uvs": square["uvs"][16:20],
        "indices": np.array([0, 1, 2, 0, 2, 3], np.uint32),
    }
    b = GltfBuilder()
    card = b.add_mesh([dict(front, material=b.add_material((0.9, 0.8, 0.2, 1.0)))], "card")
    turn = np.radians(20) / 2
    b.add_node(
        "card",
        mesh=card,
        rotation=(0.0, 0.0, float(np.sin(turn)), float(np.cos(turn))),
        scale=(-1.0 if mirrored else 1.0, 1.0, 1.0),
    )
    return b.save(path)


@pytest.mark.parametrize("mirrored", [False, True])
def test_open_borders_are_drawn_on_a_mirrored_node_too(egl, tmp_path, mirrored):
    """A card's outline is all open border: smoothed like a silhouette, also where the
    node mirrors (its front faces wind clockwise, which the capture must allow for)."""
    errors = _errors(_write_tilted_card(tmp_path / "card.glb", mirrored), slice(0, 120))
    assert errors["geometric"] < 0.75 * errors["medium"], errors


@pytest.mark.usefixtures("egl")
@pytest.mark.parametrize("aside", [False, True], ids=["offline", "live"])
def test_a_live_frame_works_out_a_new_plan_aside_and_draws_no_lines_until_it_is_ready(
    sphere_scene_path, aside
):
    """Offline every frame gets its lines (its pixels must not depend on timing); a live
    App that may step up to the lines (``Renderer.prepare_edges``) works a new set of
    draws' plan out on the edge-plan thread, not in one frame the sound plays through."""
    with App.headless((64, 48), quality="geometric") as app:
        if aside:
            app.renderer.prepare_edges()
        asset = load_gltf(sphere_scene_path)
        app.scene.create_entity("m").add_component(ModelRenderer(asset))
        app.scene.camera.frame_bounds(*asset.bounds(), aspect=app.aspect, margin=1.0)
        counts = []
        edge_lines = app.renderer.edge_lines
        app.renderer.edge_lines = lambda: counts.append(len(out := edge_lines())) or out
        app.step()
        capture = app.renderer.edge_capture
        assert capture is not None and capture.plan_aside is aside
        if aside:
            assert counts == [0] and capture._pending is not None
            capture._pending[1].result(timeout=10)
        app.step()
        assert counts[-1] > 0 and (counts[0] > 0) is not aside
