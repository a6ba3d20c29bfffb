"""Regenerate the engine's fallback test asset: ``python assets/test/make_test_assets.py``.

``shapes.glb``: a sphere with a ``bulge`` morph target (its top half swells) resting on
a checker-textured pedestal. Used by ``scenes.render_test`` when no bundled avatar exists.
Deterministic: the same bytes every run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.gltf_write import GltfBuilder
from engine.meshes import cube, uv_sphere

HERE = Path(__file__).resolve().parent


def build(path: Path = HERE / "shapes.glb") -> Path:
    b = GltfBuilder()
    sphere = uv_sphere(0.5, 48, 96)
    top = np.clip(sphere["positions"][:, 1:2] * 2, 0, None)
    bulge = {"POSITION": sphere["normals"] * top * 0.35, "NORMAL": None}
    squash = {
        "POSITION": sphere["positions"] * np.array([0.25, -0.3, 0.25], np.float32),
        "NORMAL": None,
    }
    skin = b.add_material((0.75, 0.42, 0.32, 1.0), name="clay")
    checker = ((np.indices((64, 64)) // 8).sum(0) % 2).astype(np.float32)[..., None]
    light, dark = np.array([230, 225, 215, 255]), np.array([60, 70, 90, 255])
    texture = (dark + (light - dark) * checker).astype(np.uint8)
    stone = b.add_material((1, 1, 1, 1), texture_rgba=texture, name="checker")
    ball = b.add_mesh(
        [dict(sphere, material=skin, targets=[bulge, squash])], "ball", ["bulge", "squash"]
    )
    box = b.add_mesh([dict(cube(1.0), material=stone)], "pedestal")
    b.add_node("ball", mesh=ball, translation=(0, 0.5, 0))
    b.add_node("pedestal", mesh=box, translation=(0, -0.15, 0), scale=(1.4, 0.3, 1.4))
    return b.save(path)


if __name__ == "__main__":
    print(build())
