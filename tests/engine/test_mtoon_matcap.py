"""MToon's matcap (VRM 1.0 ``matcapFactor`` / ``matcapTexture``, VRM 0.x ``_SphereAdd``):
the matcap texel where the view-space normal points, times the factor, added to the rim
as three-vrm draws it. A matcap white at its centre lights the middle of a sphere facing
the camera, not its silhouette; without a texture (or at factor 0) nothing changes. Real
EGL pixels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import load_gltf
from engine.gltf_material import read_material
from engine.gltf_write import pack_glb, unpack_glb
from engine.render.renderer import lit_variant
from tests.engine.conftest import add_texture, bulged_frame, glow_matcap
from tests.engine.test_gltf_materials import MTOON, covered, draw, untextured, write

GREY = [0.2, 0.2, 0.2, 1.0]


def mtoon(texture: Any = None, **fields: Any) -> dict[str, Any]:
    """A grey MToon material; ``texture``: its matcapTexture (the file's texture 0 is
    the glow matcap)."""
    ext: dict[str, Any] = {"specVersion": "1.0", **fields}
    if texture is not None:
        ext["matcapTexture"] = texture
    return untextured(GREY, extensions={MTOON: ext})


def ball(path: Path, material: dict[str, Any], root: dict[str, Any] | None = None) -> np.ndarray:
    return draw(write(path, material, shape="sphere", texture=glow_matcap(), root=root))


def middle(picture: np.ndarray) -> np.ndarray:
    """The mean colour of the sphere's middle (a few pixels around its centre)."""
    ys, xs = np.nonzero(covered(picture))
    cy, cx = int(ys.mean()), int(xs.mean())
    return picture[cy - 2 : cy + 3, cx - 2 : cx + 3].reshape(-1, 3).mean(axis=0)


def rim_ring(picture: np.ndarray) -> np.ndarray:
    """The sphere's outer pixels: further from its centre than 80% of its radius."""
    on = covered(picture)
    ys, xs = np.nonzero(on)
    cy, cx, radius = ys.mean(), xs.mean(), (np.ptp(xs) + 1) / 2
    yy, xx = np.indices(on.shape)
    return on & (np.hypot(yy - cy, xx - cx) > 0.8 * radius)


def test_a_matcap_lights_the_middle_facing_the_camera_not_the_silhouette(egl, tmp_path):
    plain = ball(tmp_path / "plain.glb", mtoon())
    lit = ball(tmp_path / "matcap.glb", mtoon({"index": 0}))
    assert (middle(lit) > middle(plain) + 60).all(), (middle(plain), middle(lit))
    ring = rim_ring(plain)
    assert ring.sum() > 20 and np.abs(lit - plain)[ring].max() <= 3
    material = load_gltf(tmp_path / "matcap.glb").materials[0]
    assert material.matcap_texture is not None and material.toon is not None
    assert material.toon.matcap_factor == (1.0, 1.0, 1.0)  # the spec's default


def test_the_matcaps_top_lights_the_spheres_top(egl, tmp_path):
    """Three-vrm's orientation: a normal pointing up reads the image's top rows (glTF's
    v = 0)."""
    top = np.zeros((16, 16, 4), np.uint8)
    top[..., 3], top[:4, :, :3] = 255, 255
    lit = draw(write(tmp_path / "top.glb", mtoon({"index": 0}), shape="sphere", texture=top))
    plain = ball(tmp_path / "plain.glb", mtoon())
    gain = (lit - plain).sum(axis=-1)
    ys, _ = np.nonzero(gain > 60)
    cy = np.nonzero(covered(plain))[0].mean()
    # (A repeating sampler may bleed the top row into the bottom silhouette's last pixel,
    # as in three-vrm: v reaches 1 there.)
    assert len(ys) > 20 and (ys < cy).mean() > 0.95, (ys, cy)  # image rows run top-down


def test_no_matcap_texture_draws_as_before(egl, tmp_path):
    """A factor alone (no texture, or one that is not there) changes nothing: the
    primitive keeps the variant without the matcap, pixel for pixel."""
    plain = ball(tmp_path / "plain.glb", mtoon())
    for name, texture in (("none", None), ("far", {"index": 9}), ("bad", {"index": "0"})):
        path = write(
            tmp_path / f"{name}.glb",
            mtoon(texture, matcapFactor=[1.0, 1.0, 1.0]),
            shape="sphere",
            texture=glow_matcap(),
        )
        asset = load_gltf(path)
        assert asset.materials[0].matcap_texture is None
        prim = asset.meshes[0].primitives[0]
        assert not lit_variant(asset.materials[0], prim).matcap_texture
        assert np.array_equal(draw(path), plain), name


def test_the_factor_scales_the_matcap(egl, tmp_path):
    plain = ball(tmp_path / "plain.glb", mtoon())
    shown = {
        factor: ball(tmp_path / f"f{factor}.glb", mtoon({"index": 0}, matcapFactor=[0, factor, 0]))
        for factor in (0.0, 0.15, 1.0)
    }
    assert np.array_equal(shown[0.0], plain)  # 0: none of it
    weak, full = middle(shown[0.15]), middle(shown[1.0])
    # Green alone, more of it with the factor; red and blue as they were.
    assert middle(plain)[1] + 15 < weak[1] < full[1] - 15, (middle(plain), weak, full)
    assert np.abs(full[[0, 2]] - middle(plain)[[0, 2]]).max() <= 2


def test_vrm0_sphere_add_draws_the_matcap(egl, tmp_path):
    """VRM 0.x: ``textureProperties._SphereAdd`` names the matcap texture; its factor is
    white (three-vrm's v0 compatibility)."""

    def root(textures: dict[str, Any]) -> dict[str, Any]:
        props = {"name": "toon", "shader": "VRM/MToon", "textureProperties": textures}
        return {"extensions": {"VRM": {"materialProperties": [props]}}, "extensionsUsed": ["VRM"]}

    material = untextured(GREY, name="toon")
    plain = ball(tmp_path / "plain.glb", material, root({}))
    lit = ball(tmp_path / "sphere.glb", material, root({"_SphereAdd": 0}))
    assert (middle(lit) > middle(plain) + 60).all(), (middle(plain), middle(lit))
    toon = load_gltf(tmp_path / "sphere.glb").materials[0].toon
    assert toon is not None and toon.matcap_factor == (1.0, 1.0, 1.0)


def test_a_hostile_factor_is_clamped(egl, tmp_path):
    """Huge, negative or non-finite factors: 0..1000 each, NaN the default (JSON has no
    NaN: a hand-built document can)."""
    mat = mtoon({"index": 0}, matcapFactor=[1e30, float("nan"), -5.0])
    doc = {"textures": [{"source": 0}]}
    read = read_material(doc, 0, mat, lambda _: glow_matcap())
    assert read.toon is not None and read.toon.matcap_factor == (1e3, 1.0, 0.0)

    plain = ball(tmp_path / "plain.glb", mtoon())
    hostile = ball(tmp_path / "hostile.glb", mtoon({"index": 0}, matcapFactor=[1e30, 1.0, -5.0]))
    toon = load_gltf(tmp_path / "hostile.glb").materials[0].toon
    assert toon is not None and toon.matcap_factor == (1e3, 1.0, 0.0)
    # Red saturates, green as a factor of 1 draws it; blue as it was (a negative factor
    # would darken it).
    assert middle(hostile)[0] > 250 and middle(hostile)[1] > middle(plain)[1] + 60
    assert abs(middle(hostile)[2] - middle(plain)[2]) <= 2


def _matcap_scene(src: Path, dst: Path) -> Path:
    """The sphere scene with the glow matcap on the ball (MToon)."""
    doc, blob = unpack_glb(src.read_bytes())
    index = add_texture(doc, glow_matcap())
    skin = next(m for m in doc["materials"] if m["name"] == "skin")
    skin["extensions"] = {MTOON: {"specVersion": "1.0", "matcapTexture": {"index": index}}}
    doc["extensionsUsed"] = sorted({*doc.get("extensionsUsed", []), MTOON})
    dst.write_bytes(pack_glb(doc, blob))
    return dst


@pytest.mark.parametrize("host", [False, True], ids=["shader morphs", "host morphs"])
def test_both_morph_paths_draw_the_matcap(egl, sphere_scene_path, tmp_path, host):
    path = _matcap_scene(sphere_scene_path, tmp_path / "matcap.glb")
    plain_doc, blob = unpack_glb(path.read_bytes())
    for m in plain_doc["materials"]:
        m.get("extensions", {}).get(MTOON, {}).pop("matcapTexture", None)
    plain_path = tmp_path / "plain.glb"
    plain_path.write_bytes(pack_glb(plain_doc, blob))
    lit, plain = bulged_frame(path, 0.7, host), bulged_frame(plain_path, 0.7, host)
    # A disc of the ball (where it faces the camera) brightens, nothing darkens; the
    # box below (no matcap) is untouched.
    gain = (lit - plain)[..., :3]
    assert ((gain.sum(axis=-1) > 60).sum() > 40) and gain.min() >= -2
    assert np.array_equal(lit[-20:], plain[-20:])
    if host:  # both paths draw the same matcap
        shader = bulged_frame(path, 0.7, False)
        assert np.abs(shader - lit).max() <= 2
