"""VRM expressions that change materials (a blush colour, a face drawn by texture whose
offset moves), written to the published layouts: VRM 1.0 ``materialColorBinds`` /
``textureTransformBinds``, VRM 0.x ``materialValues`` (``_Color``, ``_MainTex_ST``). Each
bind moves its material from its own value toward the target by the expression's weight,
as three-vrm draws them; what cannot be drawn is named once at load."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_conventions import vrm0, vrm1, write_head

from avatarkit.arkit import ARKIT_INDEX, NUM_BLENDSHAPES
from avatarkit.avatar import Avatar
from avatarkit.motion.face import SPEECH_SMILE
from engine.gltf_write import GltfBuilder
from engine.meshes import uv_sphere

RED = [1.0, 0.1, 0.1, 1.0]
REGIONS = {"m0": "mouth", "lids": "eyes", "grin": None}


def arkit(**channels: float) -> np.ndarray:
    w = np.zeros(NUM_BLENDSHAPES, np.float32)
    for name, value in channels.items():
        w[ARKIT_INDEX[name]] = value
    return w


SMILE = {"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0}


def happy(weight: float) -> dict[str, float]:
    """The smile that shows "happy" at ``weight`` (the part beyond speech's own smile)."""
    smile = SPEECH_SMILE + weight * (1.0 - SPEECH_SMILE)
    return {"mouthSmileLeft": smile, "mouthSmileRight": smile}


BLINK = {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0}


def with_binds(ext: dict[str, Any], **binds: dict[str, Any]) -> dict[str, Any]:
    preset = ext["VRMC_vrm"]["expressions"]["preset"]
    for name, extra in binds.items():
        preset.setdefault(name, {"morphTargetBinds": []}).update(extra)
    return ext


def test_vrm1_colour_and_texture_binds_follow_their_expressions(tmp_path):
    ext = with_binds(
        vrm1({"aa": [(0, 1.0)], "blink": [(1, 1.0)], "happy": [(2, 1.0)]}),
        happy={"materialColorBinds": [{"material": 0, "type": "color", "targetValue": RED}]},
        blink={"textureTransformBinds": [{"material": 0, "offset": [0.5, 0.25], "scale": [2, 1]}]},
        angry={
            "isBinary": True,
            "materialColorBinds": [
                {"material": 0, "type": "emissionColor", "targetValue": [0.4, 0, 0]}
            ],
        },
    )
    avatar = Avatar.from_file(write_head(tmp_path / "head.vrm", REGIONS, ext))
    binds = avatar.material_expressions
    assert binds is not None
    own = avatar.asset.materials[0]

    rest = binds.materials(arkit())[0]
    assert rest.base_color_factor == pytest.approx(own.base_color_factor)
    assert rest.base_color_slot.transform == pytest.approx(own.base_color_slot.transform)

    full = binds.materials(arkit(**SMILE))[0]
    assert full.base_color_factor == pytest.approx(RED)
    half = binds.materials(arkit(**happy(0.5)))[0]
    expected = 0.5 * (np.array(own.base_color_factor) + np.array(RED))
    assert half.base_color_factor == pytest.approx(expected)

    # The texture transform: scale 1 -> 2 on u, offset to (0.5, 0.25), base and emissive.
    blink = binds.materials(arkit(**BLINK))[0]
    assert blink.base_color_slot.transform == pytest.approx((2, 0, 0.5, 0, 1, 0.25))
    assert blink.emissive_slot.transform == pytest.approx((2, 0, 0.5, 0, 1, 0.25))
    # Both at once: each bind adds its own change.
    both = binds.materials(arkit(**SMILE, **BLINK))[0]
    assert both.base_color_factor == pytest.approx(RED)
    assert both.base_color_slot.transform == pytest.approx((2, 0, 0.5, 0, 1, 0.25))

    # isBinary: nothing below half weight, all of it above.
    assert binds.materials(arkit(browDownLeft=0.4, browDownRight=0.4))[0].emissive_factor == (
        pytest.approx(own.emissive_factor)
    )
    assert binds.materials(arkit(browDownLeft=0.6, browDownRight=0.6))[0].emissive_factor == (
        pytest.approx([0.4, 0, 0])
    )
    # The asset's own material is never changed.
    assert avatar.asset.materials[0].base_color_factor == pytest.approx(own.base_color_factor)


def test_vrm0_material_values_by_material_name(tmp_path):
    groups = vrm0([("Joy", "joy", [(2, 100.0)]), ("Blink", "blink", [(1, 100.0)])])
    joy, blink = groups["VRM"]["blendShapeMaster"]["blendShapeGroups"]
    joy["materialValues"] = [{"materialName": "skin", "propertyName": "_Color", "targetValue": RED}]
    # Unity's _MainTex_ST: (scale u, scale v, offset u, offset v), v running bottom-up.
    blink["materialValues"] = [
        {"materialName": "skin", "propertyName": "_MainTex_ST", "targetValue": [1, 0.5, 0.25, 0.1]},
        {"materialName": "no such material", "propertyName": "_Color", "targetValue": RED},
    ]
    avatar = Avatar.from_file(write_head(tmp_path / "head0.vrm", REGIONS, groups))
    binds = avatar.material_expressions
    assert binds is not None
    assert binds.materials(arkit(**SMILE))[0].base_color_factor == pytest.approx(RED)
    moved = binds.materials(arkit(**BLINK))[0].base_color_slot.transform
    assert moved == pytest.approx((1, 0, 0.25, 0, 0.5, 1 - 0.1 - 0.5))


def textured_head(path: Path, ext: dict[str, Any]) -> Path:
    """A sphere head whose texture is green on the face (u near 0 and 1) and magenta behind
    (u 0.25-0.75): a texture offset of half a turn shows magenta where the face was."""
    b = GltfBuilder()
    head = uv_sphere(0.1, 24, 48)
    texture = np.zeros((4, 8, 4), np.uint8)
    texture[:] = (40, 200, 60, 255)
    texture[:, 2:6] = (200, 40, 200, 255)
    skin = b.add_material((1.0, 1.0, 1.0, 1.0), texture, name="skin")
    deltas = [{"POSITION": np.full_like(head["positions"], 1e-4), "NORMAL": None}] * 3
    mesh = b.add_mesh([dict(head, material=skin, targets=deltas)], "Face", ["a", "b", "c"])
    b.add_node("Face", mesh=mesh)
    b.doc.extensions = ext
    b.doc.extensionsUsed = sorted(ext)
    return b.save(path)


def test_material_binds_are_drawn(tmp_path, make_headless_app):
    """Real EGL pixels: the smile turns the face red, the blink moves its texture."""
    make_headless_app(size=(16, 16)).close()  # skips where there is no EGL
    from avatarkit.contact_sheet import POSES, render_poses

    ext = with_binds(
        vrm1({"aa": [(0, 1.0)], "blink": [(1, 1.0)], "happy": [(2, 1.0)]}),
        happy={"materialColorBinds": [{"material": 0, "type": "color", "targetValue": RED}]},
        blink={"textureTransformBinds": [{"material": 0, "offset": [0.5, 0.0]}]},
    )
    cells = render_poses(Avatar.from_file(textured_head(tmp_path / "t.vrm", ext)), (96, 96))
    shown = {label: cells[i].astype(np.int16) for i, (label, _) in enumerate(POSES)}
    centre = (slice(36, 60), slice(36, 60))  # the middle of the face

    def mean(label: str) -> np.ndarray:
        return shown[label][centre][..., :3].reshape(-1, 3).mean(axis=0)

    neutral, smile, blink = mean("neutral"), mean("smile"), mean("blink")
    assert neutral[1] > neutral[0] + 60 and neutral[1] > neutral[2] + 60, neutral  # green
    # The smile (0.8) tints the texture red: green falls, red holds or rises.
    assert smile[1] < neutral[1] - 50 and smile[0] >= neutral[0] - 5, (neutral, smile)
    # The blink moves the texture half a turn: the magenta back shows on the face.
    assert blink[0] > blink[1] + 60 and blink[2] > blink[1] + 60, blink


def test_what_cannot_be_drawn_is_named_once(tmp_path, caplog):
    """Colour types with no such shading here and expressions no preset stands for are
    named in one warning at load and in ``avatarkit inspect``; a file whose binds
    are all drawn (MToon's matcap colour among them) says nothing. A hostile file's names
    cannot forge lines or flood one."""
    from avatarkit.inspection import inspect_avatar

    ext = with_binds(
        vrm1({"aa": [(0, 1.0)]}),
        happy={
            "materialColorBinds": [
                {"material": 0, "type": "color", "targetValue": RED},
                {"material": 0, "type": "sparkleColor", "targetValue": RED},
            ]
        },
    )
    ext["VRMC_vrm"]["expressions"]["custom"] = {
        "blush": {"materialColorBinds": [{"material": 0, "type": "color", "targetValue": RED}]}
    }
    path = write_head(tmp_path / "head.vrm", REGIONS, ext)
    with caplog.at_level(logging.WARNING, logger="avatarkit"):
        Avatar.from_file(path)
    named = [r.getMessage() for r in caplog.records if "not drawn" in r.getMessage()]
    assert len(named) == 1, named
    assert "happy (sparkleColor (no such shading here))" in named[0]
    assert "blush (not a preset expression: nothing drives it)" in named[0]
    assert any("blush" in n for n in inspect_avatar(path).notes)

    drawn = with_binds(
        vrm1({"aa": [(0, 1.0)]}),
        happy={
            "materialColorBinds": [
                {"material": 0, "type": "color", "targetValue": RED},
                {"material": 0, "type": "matcapColor", "targetValue": RED},
            ]
        },
    )
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="avatarkit"):
        Avatar.from_file(write_head(tmp_path / "drawn.vrm", REGIONS, drawn))
    assert not any("not drawn" in r.getMessage() for r in caplog.records)

    many = vrm1({"aa": [(0, 1.0)]})
    for k in range(40):
        many["VRMC_vrm"]["expressions"]["preset"][f"x{k:02d}\nFAKE LINE"] = {
            "materialColorBinds": [{"material": 0, "type": "color", "targetValue": [1, 1, 1, 1]}],
        }
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="avatarkit"):
        Avatar.from_file(write_head(tmp_path / "many.vrm", REGIONS, many))
    named = [r.getMessage() for r in caplog.records if "not drawn" in r.getMessage()]
    assert len(named) == 1 and "\n" not in named[0] and "'x00\\nFAKE LINE'" in named[0]
    assert named[0].endswith("and 28 more") and len(named[0]) < 1500

    # Malformed binds (wrong types, indices out of range, NaN) are skipped, not raised.
    bad = with_binds(
        vrm1({"aa": [(0, 1.0)]}),
        happy={
            "materialColorBinds": [
                {"material": 7, "type": "color", "targetValue": RED},
                {"material": 0, "type": "color", "targetValue": ["red", 0, True, 1]},
                "not an object",
            ],
            "textureTransformBinds": [{"material": 0, "offset": "far"}],
        },
    )
    avatar = Avatar.from_file(write_head(tmp_path / "bad.vrm", REGIONS, bad))
    assert avatar.material_expressions is None


@pytest.mark.parametrize("binary", ["happy", "blink"])
def test_overrides_follow_the_vrm_1_specification(tmp_path, binary):
    """The two cases of the VRM specification's own samples
    (``VRMC_vrm_expressions_isBinary_Overrides`` / ``_Overridden``): ``happy`` overrides the
    blink ("blend"); when ``happy`` is binary it overrides fully past half weight and not
    at all below; when ``blink`` is binary, any override at all suppresses it."""
    ext = with_binds(
        vrm1({"aa": [(0, 1.0)]}),
        happy={"overrideBlink": "blend", "isBinary": binary == "happy"},
        blink={
            "isBinary": binary == "blink",
            "textureTransformBinds": [{"material": 0, "offset": [0.5, 0.0]}],
        },
        aa={"materialColorBinds": [{"material": 0, "type": "color", "targetValue": RED}]},
        surprised={"overrideMouth": "block"},
    )
    binds = Avatar.from_file(write_head(tmp_path / "o.vrm", REGIONS, ext)).material_expressions
    assert binds is not None

    def blink_with(joy: float) -> float:
        return binds.weights(arkit(**happy(joy), **BLINK))["blink"]

    assert blink_with(0.0) == 1.0
    if binary == "happy":
        assert blink_with(0.4) == 1.0  # happy shows 0: no override
        assert blink_with(0.6) == 0.0  # happy shows 1: all of it
    else:
        assert blink_with(0.4) == 0.0  # blink is binary: overridden at all, gone
    # "block": any surprise at all closes the mouth's expressions.
    jaw = {"jawOpen": 0.6}
    assert binds.weights(arkit(**jaw))["aa"] > 0.5
    assert binds.weights(arkit(**jaw, eyeWideLeft=0.05, eyeWideRight=0.05))["aa"] == 0.0


def test_a_view_draws_its_expressions_materials(tmp_path, make_headless_app):
    """Through ``AvatarView``, as a kiosk shows it: the app's smile reaches the material on
    the render thread (``ModelRenderer.material_overrides``) and the face on screen."""
    from tests.avatars.test_skinned_head import SIZE, _settle, framed_view

    ext = with_binds(
        vrm1({"aa": [(0, 1.0)], "blink": [(1, 1.0)], "happy": [(2, 1.0)]}),
        happy={"materialColorBinds": [{"material": 0, "type": "color", "targetValue": RED}]},
    )
    views = framed_view(make_headless_app, textured_head(tmp_path / "v.vrm", ext))
    app, view = next(views)
    try:
        rest = _settle(app, 3).astype(np.int16)
        view.set_expression(SMILE, fade_s=0.0)
        smiling = _settle(app, 3).astype(np.int16)
        assert view.model.material_overrides[0].base_color_factor == pytest.approx(RED)
        h, w = SIZE[1], SIZE[0]
        centre = (slice(h // 3, 2 * h // 3), slice(w // 3, 2 * w // 3))
        before, after = rest[centre][..., :3].mean((0, 1)), smiling[centre][..., :3].mean((0, 1))
        assert after[1] < before[1] - 50 and after[0] >= before[0] - 5, (before, after)
    finally:
        views.close()


def test_an_outline_colour_bind_moves_the_mtoon_outline(tmp_path):
    """``outlineColor`` is drawn now that MToon's outline is: the bind moves it."""
    from engine.gltf_write import pack_glb, unpack_glb

    ext = with_binds(
        vrm1({"aa": [(0, 1.0)]}),
        happy={"materialColorBinds": [{"material": 0, "type": "outlineColor", "targetValue": RED}]},
    )
    path = write_head(tmp_path / "o.vrm", REGIONS, ext)
    doc, blob = unpack_glb(path.read_bytes())
    doc["materials"][0]["extensions"] = {
        "VRMC_materials_mtoon": {
            "specVersion": "1.0",
            "outlineWidthMode": "worldCoordinates",
            "outlineWidthFactor": 0.003,
            "outlineColorFactor": [0.0, 0.0, 0.0],
        }
    }
    doc["extensionsUsed"] = sorted({*doc["extensionsUsed"], "VRMC_materials_mtoon"})
    path.write_bytes(pack_glb(doc, blob))
    binds = Avatar.from_file(path).material_expressions
    assert binds is not None and binds.names == ("happy",)
    assert binds.materials(arkit())[0].toon.outline_color == pytest.approx([0, 0, 0])
    half = binds.materials(arkit(**happy(0.5)))[0].toon.outline_color
    assert half == pytest.approx([0.5, 0.05, 0.05])


def test_a_matcap_colour_bind_lights_the_matcap(tmp_path, make_headless_app):
    """``matcapColor`` (VRM 0.x ``_MatcapColor``) moves MToon's matcap factor: a face
    whose matcap is off (factor 0) shows it magenta in the middle once smiling. Real EGL
    pixels, through the contact sheet."""
    from avatarkit.contact_sheet import POSES, render_poses
    from engine.gltf_write import pack_glb, unpack_glb
    from tests.engine.conftest import add_texture, glow_matcap

    make_headless_app(size=(16, 16)).close()  # skips where there is no EGL
    magenta = [1.0, 0.0, 1.0, 1.0]
    ext = with_binds(
        vrm1({"aa": [(0, 1.0)], "blink": [(1, 1.0)], "happy": [(2, 1.0)]}),
        happy={
            "materialColorBinds": [{"material": 0, "type": "matcapColor", "targetValue": magenta}]
        },
    )
    path = textured_head(tmp_path / "m.vrm", ext)
    doc, blob = unpack_glb(path.read_bytes())
    doc["materials"][0]["extensions"] = {
        "VRMC_materials_mtoon": {
            "specVersion": "1.0",
            "matcapTexture": {"index": add_texture(doc, glow_matcap())},
            "matcapFactor": [0.0, 0.0, 0.0],
        }
    }
    doc["extensionsUsed"] = sorted({*doc["extensionsUsed"], "VRMC_materials_mtoon"})
    path.write_bytes(pack_glb(doc, blob))
    avatar = Avatar.from_file(path)
    binds = avatar.material_expressions
    assert binds is not None
    assert binds.materials(arkit(**SMILE))[0].toon.matcap_factor == pytest.approx(magenta[:3])

    cells = render_poses(avatar, (96, 96))
    shown = {label: cells[i].astype(np.int16) for i, (label, _) in enumerate(POSES)}
    centre = (slice(40, 56), slice(40, 56))  # the middle of the face, facing the camera
    neutral, smile = (
        shown[k][centre][..., :3].reshape(-1, 3).mean(axis=0) for k in ("neutral", "smile")
    )
    # Red and blue rise where the matcap is white; green as it was.
    assert smile[0] > neutral[0] + 40 and smile[2] > neutral[2] + 40, (neutral, smile)
    assert abs(smile[1] - neutral[1]) < 6, (neutral, smile)


def test_hostile_bind_targets_are_bounded(tmp_path):
    """A finite but huge target (1e300) would overflow the GPU's 32-bit floats to infinity:
    colours stay in 0..1e3, texture scales and offsets in -1e3..1e3."""
    ext = with_binds(
        vrm1({"aa": [(0, 1.0)], "blink": [(1, 1.0)], "happy": [(2, 1.0)]}),
        happy={
            "materialColorBinds": [
                {"material": 0, "type": "color", "targetValue": [1e300, -1e300, 0.5, 1.0]}
            ]
        },
        blink={
            "textureTransformBinds": [
                {"material": 0, "offset": [1e300, -1e300], "scale": [1e300, 1]}
            ]
        },
    )
    avatar = Avatar.from_file(write_head(tmp_path / "head.vrm", REGIONS, ext))
    binds = avatar.material_expressions
    assert binds is not None
    shown = binds.materials(arkit(**SMILE, **BLINK))[0]
    assert shown.base_color_factor == pytest.approx((1e3, 0.0, 0.5, 1.0))
    assert shown.base_color_slot.transform == pytest.approx((1e3, 0, 1e3, 0, 1, -1e3))
    assert np.isfinite(np.float32(shown.base_color_slot.transform)).all()
