"""The triangles no morph target moves are drawn without the target loop (the shader
path, which GPUs use; llvmpipe blends on the host, so it is forced here): the picture
must be the one of drawing everything through the loop. Real EGL pixels."""

from __future__ import annotations

import numpy as np

import engine.render.upload_data as gpu
from engine import load_gltf
from tests.engine.conftest import bulged_frame


def _draw(path, bulge: float) -> np.ndarray:
    return bulged_frame(path, bulge)


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
