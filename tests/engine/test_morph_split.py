"""The triangles no morph target moves are drawn without the target loop (the shader
path, which GPUs use; llvmpipe blends on the host, so it is forced here): the picture
must be the one of drawing everything through the loop. Real EGL pixels."""

from __future__ import annotations

import numpy as np

import engine.render.upload_data as gpu
from engine import App, ModelRenderer, load_gltf


def _draw(path, bulge: float) -> np.ndarray:
    with App.headless((160, 120), fps=30, samples=0) as app:
        app.renderer.host_morphs = False
        app.scene.camera.look_at((0.0, 0.4, 5.0), (0.0, 0.4, 0.0))
        model = app.scene.create_entity("m").add_component(ModelRenderer(load_gltf(path)))
        model.set_weight("bulge", bulge)
        app.step()
        return app.read_pixels().astype(int)


def test_split_draw_matches_the_whole_draw(egl, sphere_scene_path, monkeypatch):
    asset = load_gltf(sphere_scene_path)
    prim = next(p for m in asset.meshes for p in m.primitives if p.targets)
    indices, split = gpu._morphed_first(prim)
    assert split is not None and 0 < split < len(indices)  # the bulge moves the top only
    assert sorted(map(tuple, indices.reshape(-1, 3))) == sorted(
        map(tuple, prim.indices.reshape(-1, 3))
    )  # the same triangles, reordered
    split_picture = _draw(sphere_scene_path, 1.0)
    monkeypatch.setattr(gpu, "_morphed_first", lambda p: (p.indices, None))
    whole_picture = _draw(sphere_scene_path, 1.0)
    assert np.abs(split_picture - whole_picture).max() <= 2
    assert np.abs(whole_picture - _draw(sphere_scene_path, 0.0)).max() > 50  # it bulges
