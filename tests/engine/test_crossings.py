"""Where two surfaces cut through each other (engine.render.crossings): the segments, and
in a frame of quality ``geometric`` (a still part sunk into another, drawn as edge lines
on real EGL pixels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine import App, ModelRenderer, load_gltf
from engine.gltf_write import GltfBuilder
from engine.meshes import cube, uv_sphere
from engine.render import crossings as crossings_module
from engine.render import edge_capture
from engine.render.crossings import crossings

SQUARE = np.array([0, 1, 2, 0, 2, 3])


def _square(corners) -> tuple[np.ndarray, np.ndarray]:
    return SQUARE, np.array(corners, np.float64)


def _ends(part, found) -> np.ndarray:
    """The segments' ends, placed from their triangles' corners as a frame places them."""
    tris = part[1][part[0].reshape(-1, 3)]
    a, _, weights = found
    return np.einsum("nek,nkc->nec", weights, tris[a])


def test_two_squares_crossing_at_right_angles_share_the_middle_line():
    flat = _square([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]])  # z = 0
    upright = _square([[-1, 0, -1], [1, 0, -1], [1, 0, 1], [-1, 0, 1]])  # y = 0
    found = crossings(flat, upright)
    ends = _ends(flat, found).reshape(-1, 3)
    assert np.allclose(ends[:, 1:], 0.0, atol=1e-9)  # on both planes: the x axis
    # Pieces of the line x = -1..1 (split where the diagonals cross it), each once.
    pieces = np.sort(_ends(flat, found)[:, :, 0], axis=1)
    pieces = pieces[np.argsort(pieces[:, 0])]
    assert pieces[0, 0] == pytest.approx(-1.0) and pieces[-1, 1] == pytest.approx(1.0)
    assert np.allclose(pieces[1:, 0], pieces[:-1, 1])


@pytest.mark.parametrize(
    "other",
    [
        [[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]],  # the same plane
        [[-1, -1, 0.5], [1, -1, 0.5], [1, 1, 0.5], [-1, 1, 0.5]],  # parallel, apart
        [[-1, 0, 0], [1, 0, 0], [1, 0, 1], [-1, 0, 1]],  # standing on it: touching only
        [[3, 0, -1], [5, 0, -1], [5, 0, 1], [3, 0, 1]],  # its plane crosses, it does not
    ],
    ids=["coplanar", "parallel", "touching", "beside"],
)
def test_parts_that_do_not_cut_through_each_other_have_no_crossing(other):
    flat = _square([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]])
    assert len(crossings(flat, _square(other))[0]) == 0


def test_a_plane_through_a_ball_crosses_it_along_its_equator():
    ball = uv_sphere(0.5, 24, 48)
    sphere = (ball["indices"], ball["positions"])
    grid = np.linspace(-1, 1, 9)
    xs, ys = np.meshgrid(grid, grid)
    points = np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, 0.1)], axis=1)
    corner = (np.arange(8)[:, None] * 9 + np.arange(8)).reshape(-1)  # each cell's first
    indices = np.stack([corner, corner + 1, corner + 10, corner, corner + 10, corner + 9], 1)
    found = crossings(sphere, (indices.reshape(-1), points))
    ends = _ends(sphere, found)
    assert np.allclose(ends[:, :, 2], 0.1, atol=1e-6)  # on the plane
    circle = 2 * np.pi * np.sqrt(0.5**2 - 0.1**2)
    length = np.linalg.norm(ends[:, 1] - ends[:, 0], axis=1).sum()
    # The facets' circle: a little inside the true one, never longer than it.
    assert 0.99 * circle < length <= circle


def test_more_candidate_pairs_than_the_limit_give_no_crossing(monkeypatch):
    flat = _square([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]])
    upright = _square([[-1, 0, -1], [1, 0, -1], [1, 0, 1], [-1, 0, 1]])
    monkeypatch.setattr(crossings_module, "MAX_CANDIDATES", 1)
    assert len(crossings(flat, upright)[0]) == 0


def _write_sunk_ball(path: Path, morphed: bool = False) -> Path:
    """A one-sided card facing the camera, and a ball behind it whose cap comes through
    it: one node, two parts. The cap's outline on screen is where the two cut through
    each other (the ball's own silhouette lies behind the card). ``morphed``: the ball
    has a morph target (its crossing may move, so it is not worked out once)."""
    front = cube(2.0)
    card = {
        "positions": front["positions"][16:20],
        "normals": front["normals"][16:20],
        "indices": np.array([0, 1, 2, 0, 2, 3], np.uint32),
    }
    ball = uv_sphere(0.5, 24, 48)
    ball["positions"] = ball["positions"] + np.array([0.1, 0.05, 0.75], np.float32)
    b = GltfBuilder()
    card["material"] = b.add_material((0.85, 0.8, 0.7, 1.0), name="card")
    ball["material"] = b.add_material((0.15, 0.25, 0.8, 1.0), name="ball")
    if morphed:
        ball["targets"] = [{"POSITION": np.zeros_like(ball["positions"])}]
    b.add_node("m", mesh=b.add_mesh([card, ball], "m", weights=[0.0] if morphed else None))
    return b.save(path)


def _frame(path: Path, size, quality: str) -> tuple[np.ndarray, int]:
    with App.headless(size, quality=quality) as app:
        asset = load_gltf(path)
        app.scene.create_entity("m").add_component(ModelRenderer(asset))
        app.scene.camera.look_at((0.0, 0.0, 3.0), (0.0, 0.0, 0.0))
        app.step()
        with app.ctx:
            lines = len(app.renderer.edge_lines())
        return app.read_pixels().astype(float), lines


@pytest.mark.usefixtures("egl")
def test_a_still_part_sunk_into_another_gets_an_edge_as_clean_as_4x_msaa(tmp_path):
    path = _write_sunk_ball(tmp_path / "sunk.glb")
    size = (160, 120)
    frames = {q: _frame(path, size, q)[0] for q in ("low", "medium", "geometric", "high")}
    truth = _frame(path, (640, 480), "low")[0].reshape(120, 4, 160, 4, 3).mean((1, 3))
    edge = np.abs(frames["low"] - truth).max(axis=2) > 24
    assert edge.sum() > 60
    errors = {q: np.abs(f - truth)[edge].mean() for q, f in frames.items()}
    assert errors["geometric"] < 0.75 * errors["medium"], errors
    assert errors["geometric"] <= errors["high"] * 1.05, errors


@pytest.mark.usefixtures("egl")
def test_a_part_a_morph_target_moves_gets_no_fixed_crossing(tmp_path, monkeypatch):
    still = _write_sunk_ball(tmp_path / "still.glb")
    morphed = _write_sunk_ball(tmp_path / "morphed.glb", morphed=True)
    with_crossings = [_frame(p, (64, 48), "geometric")[1] for p in (still, morphed)]
    monkeypatch.setattr(edge_capture, "crossings", lambda a, b: crossings(a, (a[0][:0], a[1])))
    without = [_frame(p, (64, 48), "geometric")[1] for p in (still, morphed)]
    assert with_crossings[0] > without[0] + 20  # the still ball's cap outline
    assert with_crossings[1] == without[1]
