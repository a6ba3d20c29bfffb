"""A VRM figure (avatar_files, written to the VRM 1.0 / 0.x specs) whose skin is an MToon
material: drawn toon-shaded through real EGL, as a VRoid export would be, not as a plain
lit material."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from avatar_files import vrm1_humanoid, write_figure

from avatarkit.avatar import Avatar
from avatarkit.contact_sheet import render_poses
from engine.gltf_write import pack_glb, unpack_glb

BLUE_SHADE = [0.05, 0.1, 0.7]


def figure(path: Path, vrm0: bool = False, mtoon: dict[str, Any] | None = None) -> Path:
    """write_figure's VRM rig; ``mtoon``: the skin's VRMC_materials_mtoon (VRM 1.0), or
    with ``vrm0`` the same as VRM 0.x ``materialProperties``."""
    ext = vrm1_humanoid({"hips": 1, "head": 2, "leftEye": 3, "rightEye": 4})
    glb = write_figure(path.with_suffix(".glb"), rig="vrm", hat=False, raised_arm=False,
                       extensions=ext)  # fmt: skip
    doc, blob = unpack_glb(glb.read_bytes())
    skin = next(m for m in doc["materials"] if m["name"] == "skin")
    if mtoon is not None and not vrm0:
        skin["extensions"] = {"VRMC_materials_mtoon": {"specVersion": "1.0", **mtoon}}
        doc["extensionsUsed"] = sorted({*doc["extensionsUsed"], "VRMC_materials_mtoon"})
    elif mtoon is not None:
        shade = [*mtoon["shadeColorFactor"], 1.0]
        props = {
            "name": "skin", "shader": "VRM/MToon",
            "floatProperties": {"_ShadeToony": mtoon["shadingToonyFactor"],
                                "_ShadeShift": mtoon["shadingShiftFactor"]},
            "vectorProperties": {"_ShadeColor": [c ** (1 / 2.2) for c in shade]},
        }  # fmt: skip
        doc["extensions"]["VRM"] = {"materialProperties": [props]}
        doc["extensionsUsed"] = sorted({*doc["extensionsUsed"], "VRM"})
    path.write_bytes(pack_glb(doc, blob))
    return path


def face(path: Path) -> np.ndarray:
    return render_poses(Avatar.from_file(path), (96, 96))[0].astype(np.int16)


@pytest.mark.parametrize("vrm0", [False, True], ids=["VRM 1.0", "VRM 0.x"])
def test_mtoon_skin_is_toon_shaded(tmp_path, make_headless_app, vrm0):
    make_headless_app(size=(16, 16)).close()  # skips where there is no EGL
    plain = face(figure(tmp_path / "plain.vrm"))
    toon = {"shadeColorFactor": BLUE_SHADE, "shadingToonyFactor": 0.95, "shadingShiftFactor": -0.2}
    toon_face = face(figure(tmp_path / "toon.vrm", vrm0, toon))
    head = np.abs(toon_face - plain).max(axis=-1) > 30
    blue = (toon_face[..., 2] > toon_face[..., 0] + 40) & head
    # The skin's shaded side turns the shade colour; the plain material has no blue skin.
    assert blue.mean() > 0.03, blue.mean()
    assert not ((plain[..., 2] > plain[..., 0] + 40) & head).any()
    # The toony step: few in-between shades across the head's terminator.
    hue = (toon_face[..., 2] - toon_face[..., 0]).astype(float)[head]
    assert ((hue > 0) & (hue < 40)).mean() < 0.25


@pytest.mark.parametrize("vrm0", [False, True], ids=["VRM 1.0", "VRM 0.x"])
def test_an_mtoon_outline_rings_the_skinned_face(tmp_path, caplog, vrm0):
    """MToon's outline on a skinned, morphed avatar (the software rasteriser's paths: host
    morphs, rigid runs) in the contact sheet: a ring of the outline colour around the
    head, none without a width; nothing said about it at load."""
    import logging

    shading = {"shadeColorFactor": BLUE_SHADE, "shadingToonyFactor": 0.9,
               "shadingShiftFactor": 0.0}  # fmt: skip
    rings = []
    for width in (0.0, 0.004):
        path = figure(tmp_path / f"o{width}.vrm", vrm0, shading)
        doc, blob = unpack_glb(path.read_bytes())
        if vrm0:
            props = doc["extensions"]["VRM"]["materialProperties"][0]
            props["floatProperties"].update(
                _OutlineWidthMode=1.0, _OutlineWidth=width * 100, _OutlineLightingMix=0.0
            )  # centimetres
            props["vectorProperties"]["_OutlineColor"] = [1.0, 0.0, 0.0, 1.0]
        else:
            skin = next(m for m in doc["materials"] if m["name"] == "skin")
            skin["extensions"]["VRMC_materials_mtoon"].update(
                outlineWidthMode="worldCoordinates",
                outlineWidthFactor=width,
                outlineColorFactor=[1.0, 0.0, 0.0],
                outlineLightingMixFactor=0.0,
            )
        path.write_bytes(pack_glb(doc, blob))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="avatarkit"):
            image = render_poses(Avatar.from_file(path), (160, 160))[0].astype(int)
        assert not any("outline" in r.getMessage() for r in caplog.records)
        rings.append(int(((image[..., 0] > 200) & (image[..., 1] < 60)).sum()))
    assert rings[0] == 0 and rings[1] > 150, rings


def test_the_parametric_rim_follows_its_power_lift_and_mix(tmp_path):
    """MToon's rim: (1 - N.V + lift) ** power in the rim colour. Lifted all the way it
    tints the whole face, not only its edge; VRM 0.x's _RimFresnelPower / _RimLift /
    _RimLightingMix are read the same way."""
    shading = {"shadeColorFactor": BLUE_SHADE, "shadingToonyFactor": 0.9,
               "shadingShiftFactor": 0.0, "parametricRimColorFactor": [0.6, 0.0, 0.0],
               "parametricRimFresnelPowerFactor": 1.0, "rimLightingMixFactor": 0.0}  # fmt: skip
    centres = []
    for lift in (0.0, 1.0):
        path = figure(
            tmp_path / f"rim{lift}.vrm", False, {**shading, "parametricRimLiftFactor": lift}
        )
        image = face(path)
        h, w = image.shape[:2]
        centres.append(image[h // 3 : h // 2, 2 * w // 5 : 3 * w // 5].reshape(-1, 3).mean(0))
    # Redder in the middle of the face (near white already: the tone curve squeezes it),
    # its green and blue as they were.
    assert centres[1][0] > centres[0][0] + 6, centres
    assert np.abs(centres[1][1:] - centres[0][1:]).max() < 3, centres
    toon = Avatar.from_file(path).asset.materials[0].toon
    assert toon is not None and (toon.rim_power, toon.rim_lift, toon.rim_mix) == (1.0, 1.0, 0.0)

    zero = figure(tmp_path / "rim0.vrm", True, shading)
    doc, blob = unpack_glb(zero.read_bytes())
    floats = doc["extensions"]["VRM"]["materialProperties"][0]["floatProperties"]
    floats.update(_RimFresnelPower=3.0, _RimLift=0.25, _RimLightingMix=0.5)
    zero.write_bytes(pack_glb(doc, blob))
    materials = Avatar.from_file(zero).asset.materials
    toon = next(m.toon for m in materials if m.name == "skin")
    assert toon is not None and (toon.rim_power, toon.rim_lift, toon.rim_mix) == (3.0, 0.25, 0.5)


@pytest.mark.parametrize("vrm0", [False, True], ids=["VRM 1.0", "VRM 0.x"])
def test_a_matcap_lights_the_skinned_face(tmp_path, make_headless_app, vrm0):
    """MToon's matcap (VRM 1.0 ``matcapTexture``, VRM 0.x ``_SphereAdd``) on the skinned,
    morphed figure in the contact sheet (host morphs, rigid runs): the middle of the face,
    which faces the camera, brightens where the matcap is white at its centre."""
    from tests.engine.conftest import add_texture, glow_matcap

    make_headless_app(size=(16, 16)).close()  # skips where there is no EGL
    shading = {"shadeColorFactor": BLUE_SHADE, "shadingToonyFactor": 0.9,
               "shadingShiftFactor": 0.0}  # fmt: skip
    plain = face(figure(tmp_path / "plain.vrm", vrm0, shading))
    path = figure(tmp_path / "matcap.vrm", vrm0, shading)
    doc, blob = unpack_glb(path.read_bytes())
    index = add_texture(doc, glow_matcap())
    if vrm0:
        doc["extensions"]["VRM"]["materialProperties"][0]["textureProperties"] = {
            "_SphereAdd": index
        }
    else:
        skin = next(m for m in doc["materials"] if m["name"] == "skin")
        skin["extensions"]["VRMC_materials_mtoon"]["matcapTexture"] = {"index": index}
    path.write_bytes(pack_glb(doc, blob))
    lit = face(path)
    h, w = lit.shape[:2]
    middle = (slice(h // 3, h // 2), slice(2 * w // 5, 3 * w // 5))
    gain = (lit - plain)[middle][..., :3].reshape(-1, 3).mean(axis=0)
    assert gain.min() > 5 and gain.sum() > 40, gain  # red nears white already
    assert (lit - plain)[..., :3].min() >= -2  # the matcap only adds
