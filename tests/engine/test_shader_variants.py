"""Each primitive is drawn with the lit shader variant it needs, so a plain avatar never
runs the MToon, unlit or skinning code (llvmpipe pays for a skipped branch's code)."""

from __future__ import annotations

from avatarkit.paths import ASSETS_DIR
from engine import load_gltf
from engine.gltf_asset import GltfAsset

TEST_ASSETS = ASSETS_DIR / "test"


def _programs(app, asset: GltfAsset) -> list:
    gpu = app.renderer.acquire(asset)
    try:
        return [prim.program for mesh in gpu.meshes for prim in mesh]
    finally:
        app.renderer.release(asset)


def test_a_plain_model_runs_neither_toon_nor_skinning_code(app, sphere_scene_path):
    for program in _programs(app, load_gltf(sphere_scene_path)):
        assert "u_toon" not in program and "u_skin_influences" not in program


def test_skinned_and_toon_primitives_get_their_variants(app):
    rpm = _programs(app, load_gltf(TEST_ASSETS / "rpm_head.glb"))
    assert any("u_skin_influences" in p for p in rpm)
    assert not any("u_toon" in p for p in rpm)  # PBR materials
    vrm = _programs(app, load_gltf(TEST_ASSETS / "vrm1_head.vrm"))
    assert all("u_toon" in p for p in vrm)  # every material is MToon
    assert any("u_skin_influences" in p for p in vrm)
