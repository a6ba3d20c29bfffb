"""MToon's outline (``VRMC_materials_mtoon`` outlineWidthMode / outlineWidthFactor /
outlineColorFactor, VRM 0.x ``_OutlineWidthMode`` / ``_OutlineWidth`` / ``_OutlineColor``):
the hull pushed out along the normals drawn with its front faces culled, so a ring of the
outline colour shows around the silhouette. It follows the morph targets on both morph
paths (the shader's loop, the host blend) and nothing of it shows without a width. Real
EGL pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine import App, ModelRenderer, load_gltf
from engine.gltf_write import pack_glb, unpack_glb
from tests.engine.conftest import bulged_frame

RED = (1.0, 0.0, 0.0)


def outlined(src: Path, dst: Path, width: float, mode: str = "worldCoordinates") -> Path:
    doc, blob = unpack_glb(src.read_bytes())
    for material in doc["materials"]:
        material["extensions"] = {
            "VRMC_materials_mtoon": {
                "specVersion": "1.0",
                "outlineWidthMode": mode,
                "outlineWidthFactor": width,
                "outlineColorFactor": list(RED),
                "outlineLightingMixFactor": 0.0,
            }
        }
    doc["extensionsUsed"] = sorted({*doc.get("extensionsUsed", []), "VRMC_materials_mtoon"})
    dst.write_bytes(pack_glb(doc, blob))
    return dst


def _frame(path: Path, host: bool, bulge: float) -> np.ndarray:
    return bulged_frame(path, bulge, host, (160, 160))


def _red(image: np.ndarray) -> np.ndarray:
    return (image[..., 0] > 200) & (image[..., 1] < 80) & (image[..., 2] < 80)


@pytest.mark.parametrize("host", [False, True], ids=["shader morphs", "host morphs"])
def test_the_outline_rings_the_silhouette_and_follows_the_morphs(
    egl, sphere_scene_path, tmp_path, host
):
    plain = _frame(outlined(sphere_scene_path, tmp_path / "none.glb", 0.0), host, 0.0)
    assert not _red(plain).any()  # no width: no outline
    path = outlined(sphere_scene_path, tmp_path / "ring.glb", 0.04)
    rest, bulged = _frame(path, host, 0.0), _frame(path, host, 1.0)
    for image in (rest, bulged):
        ring = _red(image)
        assert ring.sum() > 60
        # Around the shape, not over it: the middle of the sphere is not red.
        ys, xs = np.nonzero(ring)
        cy, cx = int(ys.mean()), int(xs.mean())
        assert not ring[cy - 3 : cy + 4, cx - 3 : cx + 4].any()

    # The ring follows the morphed silhouette, as the mesh itself does.
    def extent(image: np.ndarray) -> int:
        ys, xs = np.nonzero(_red(image))
        return int(np.ptp(xs) + np.ptp(ys))

    assert extent(bulged) != extent(rest)


def test_both_morph_paths_draw_the_same_outline(egl, sphere_scene_path, tmp_path):
    path = outlined(sphere_scene_path, tmp_path / "ring.glb", 0.04)
    shader, host = _frame(path, False, 0.7), _frame(path, True, 0.7)
    assert np.abs(shader - host).max() <= 2


def test_a_screen_outline_keeps_its_width_in_pixels(egl, sphere_scene_path, tmp_path):
    """screenCoordinates: a fraction of the screen's height, whatever the distance."""
    path = outlined(sphere_scene_path, tmp_path / "screen.glb", 0.05, "screenCoordinates")
    widths = []
    for distance in (5.0, 9.0):
        with App.headless((160, 160), fps=30, samples=0) as app:
            app.scene.camera.look_at((0.0, 0.4, distance), (0.0, 0.4, 0.0))
            app.scene.create_entity("m").add_component(ModelRenderer(load_gltf(path)))
            app.step()
            ring = _red(app.read_pixels().astype(int))
        column = ring[:, ring.shape[1] // 2]  # down the middle: the ring's top comes first
        top = int(np.argmax(column))
        widths.append(int(np.argmin(column[top:])))  # its run of red
    # 0.05 of the height: 2 x 0.05 of the half-height's 80 pixels, at either distance.
    assert widths == pytest.approx([8.0, 8.0], abs=1.5)


@pytest.mark.parametrize("alpha,shown", [(1.0, True), (0.2, False)])
def test_a_cut_out_outline_is_cut_where_its_material_is(
    egl, sphere_scene_path, tmp_path, alpha, shown
):
    """Alpha MASK (VRoid's hair cards): the outline is cut by the same cutoff."""
    path = outlined(sphere_scene_path, tmp_path / "mask.glb", 0.04)
    doc, blob = unpack_glb(path.read_bytes())
    for material in doc["materials"]:
        material["alphaMode"], material["alphaCutoff"] = "MASK", 0.5
        pbr = material.setdefault("pbrMetallicRoughness", {})
        pbr["baseColorFactor"] = [*pbr.get("baseColorFactor", [1, 1, 1, 1])[:3], alpha]
    path.write_bytes(pack_glb(doc, blob))
    assert bool(_red(_frame(path, True, 0.0)).any()) is shown
