"""Opaque double-sided primitives are drawn front faces first, then back faces (the back
faces their own front hides then fail the depth test early on llvmpipe): the pixels of
one pass with culling off, inside and outside of an open cup both visible. Real EGL."""

from __future__ import annotations

import numpy as np
import pytest

from engine import App, ModelRenderer, load_gltf
from engine.gltf_write import GltfBuilder
from engine.meshes import uv_sphere
from engine.render.renderer import Renderer


def _cup(path, double_sided: bool):
    """The top half of a sphere, open at the bottom, tilted towards the camera below."""
    sphere = uv_sphere(0.5, 16, 32)
    keep = sphere["positions"][:, 1] >= -1e-6
    triangles = sphere["indices"].reshape(-1, 3)
    triangles = triangles[keep[triangles].all(axis=1)]
    b = GltfBuilder()
    mat = b.add_material((0.9, 0.5, 0.2, 1.0), name="cup", double_sided=double_sided)
    mesh = b.add_mesh([dict(sphere, indices=triangles.reshape(-1), material=mat)], "cup")
    b.add_node("cup", mesh=mesh)
    return load_gltf(b.save(path))


def _draw(asset) -> np.ndarray:
    with App.headless((120, 120), fps=30, samples=0) as app:
        app.scene.camera.look_at((0.0, -0.9, 1.4), (0.0, 0.1, 0.0))  # from below: inside shows
        app.scene.create_entity("cup").add_component(ModelRenderer(asset))
        app.step()
        return app.read_pixels().astype(int)


def _one_pass(self, prim, vao, morphed, sides, span) -> None:
    self.ctx.disable(0x0B44)  # GL_CULL_FACE: both sides in one pass
    self._render(prim, vao, morphed, span)


def test_two_passes_draw_the_one_pass_pixels(egl, tmp_path, monkeypatch):
    double = _draw(_cup(tmp_path / "double.glb", True))
    single = _draw(_cup(tmp_path / "single.glb", False))
    inside = np.abs(double - single).max(axis=-1) > 40
    assert inside.sum() > 300  # the inside of the cup: back faces, drawn only double-sided
    monkeypatch.setattr(Renderer, "_render_sides", _one_pass)
    assert np.abs(double - _draw(_cup(tmp_path / "double.glb", True))).max() <= 1


@pytest.mark.parametrize("culled", ["back", "front"])
def test_each_pass_draws_its_side(egl, tmp_path, monkeypatch, culled):
    """Either pass alone misses part of the cup (so both are needed)."""
    double = _draw(_cup(tmp_path / "double.glb", True))

    def one_side(self, prim, vao, morphed, sides, span) -> None:
        self.ctx.enable(0x0B44)
        self.ctx.cull_face = culled
        self._render(prim, vao, morphed, span)
        self.ctx.cull_face = "back"

    monkeypatch.setattr(Renderer, "_render_sides", one_side)
    missing = np.abs(double - _draw(_cup(tmp_path / "double.glb", True))).max(axis=-1) > 40
    assert missing.sum() > 300


def _cap_over_head(path):
    """A double-sided cap (drawn first, as hair is) over a closed, single-sided head."""
    sphere = uv_sphere(0.5, 16, 32)
    keep = sphere["positions"][:, 1] >= -1e-6
    triangles = sphere["indices"].reshape(-1, 3)
    triangles = triangles[keep[triangles].all(axis=1)]
    b = GltfBuilder()
    cap = b.add_material((0.3, 0.2, 0.1, 1.0), name="cap", double_sided=True)
    skin = b.add_material((0.9, 0.6, 0.5, 1.0), name="skin")
    head = uv_sphere(0.45, 16, 32)
    cap_mesh = b.add_mesh([dict(sphere, indices=triangles.reshape(-1), material=cap)], "cap")
    head_mesh = b.add_mesh([dict(head, material=skin)], "head")
    b.add_node("cap", mesh=cap_mesh)
    b.add_node("head", mesh=head_mesh)
    return load_gltf(b.save(path))


def test_back_faces_come_after_every_front_face(egl, tmp_path, monkeypatch):
    """The cap's inside is drawn after the head: where the head hides it, it fails the
    depth test instead of being shaded and then drawn over. Same pixels as one pass."""
    asset = _cap_over_head(tmp_path / "cap.glb")
    drawn: list[tuple[str, str]] = []
    render_sides, render = Renderer._render_sides, Renderer._render

    def log_sides(self, prim, vao, morphed, sides, span):
        drawn.append((asset.materials[prim.material].name, sides))
        render_sides(self, prim, vao, morphed, sides, span)

    def log_render(self, prim, vao, morphed, span):
        if not asset.materials[prim.material].double_sided:
            drawn.append((asset.materials[prim.material].name, "single"))
        render(self, prim, vao, morphed, span)

    monkeypatch.setattr(Renderer, "_render_sides", log_sides)
    monkeypatch.setattr(Renderer, "_render", log_render)
    deferred = _draw(asset)
    assert drawn == [("cap", "front"), ("skin", "single"), ("cap", "back")]
    monkeypatch.setattr(Renderer, "_render_sides", _one_pass)
    assert np.abs(deferred - _draw(asset)).max() <= 1


def test_bundled_avatars_draw_occluders_first():
    """Hair before the face it covers, clothes before the neck they cover (with the back
    faces deferred this saves about a seventh of a frame's lit fragments on llvmpipe)."""
    from avatarkit.cli.common import open_avatar

    for avatar_id in ("ava", "kai", "mei", "noor"):
        asset = open_avatar(avatar_id).asset
        prims = [
            asset.materials[p.material].name
            for index, _ in asset.walk()
            if (mesh := asset.nodes[index].mesh) is not None
            for p in asset.meshes[mesh].primitives
        ]
        assert prims.index("hair") < prims.index("skin"), avatar_id
        assert prims.index("shirt") < prims.index("collar") < len(prims) - 1, avatar_id
        assert prims[-1] == "skin_plain", avatar_id  # the neck, under the collar
