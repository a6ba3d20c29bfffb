"""The committed bundled avatars are what assets/avatars/build_avatars.py generates."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from avatarkit.arkit import ARKIT_NAMES
from avatarkit.package import read_manifest
from avatarkit.paths import AVATARS_DIR

pytestmark = pytest.mark.timeout(60)


def load_generator(monkeypatch):
    spec = importlib.util.spec_from_file_location("build_avatars", AVATARS_DIR / "build_avatars.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "build_avatars", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_generator_reproduces_the_committed_package(tmp_path, monkeypatch):
    from engine import load_gltf

    generator = load_generator(monkeypatch)
    style = next(s for s in generator.STYLES if s.id == "kai")
    fresh = generator.build(style, tmp_path)
    committed = AVATARS_DIR / "kai" / "kai.glb"
    a, b = load_gltf(fresh), load_gltf(committed)
    assert [m.target_names for m in a.meshes] == [m.target_names for m in b.meshes]
    assert a.meshes[0].target_names == list(ARKIT_NAMES)
    for mesh_a, mesh_b in zip(a.meshes, b.meshes, strict=True):
        for pa, pb in zip(mesh_a.primitives, mesh_b.primitives, strict=True):
            np.testing.assert_array_equal(pa.indices, pb.indices)
            np.testing.assert_allclose(pa.positions, pb.positions, atol=1e-6)
            for ta, tb in zip(pa.targets, pb.targets, strict=True):
                np.testing.assert_allclose(ta.positions, tb.positions, atol=1e-6)
    fresh_manifest, manifest = read_manifest(tmp_path / "kai"), read_manifest(AVATARS_DIR / "kai")
    assert fresh_manifest.framing == manifest.framing and fresh_manifest.extra == manifest.extra


@pytest.mark.parametrize("avatar_id", ["ava", "kai", "mei", "noor"])
def test_bundled_avatars_draw_few_triangles_twice(avatar_id):
    """A double-sided material costs a software rasteriser a second pass over all of its
    triangles (engine.render.renderer: back faces after front ones). Closed parts (shirt,
    collar, hair) and the mouth's insides are one-sided; only thin open ones (lids, lashes,
    brows) keep both sides: an eighth of the head. They were 42% before, a four-avatar
    frame 12-15% slower."""
    from engine import load_gltf

    asset = load_gltf(AVATARS_DIR / avatar_id / f"{avatar_id}.glb")
    total = twice = 0
    for prim in (p for mesh in asset.meshes for p in mesh.primitives):
        count = len(prim.indices) // 3
        total += count
        if prim.material is not None and asset.materials[prim.material].double_sided:
            twice += count
    assert twice / total <= 0.15, f"{avatar_id}: {twice} of {total} triangles drawn twice"
