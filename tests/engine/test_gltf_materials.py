"""Materials as avatars use them, drawn through real EGL: KHR_materials_unlit,
KHR_materials_emissive_strength, KHR_texture_transform, a texture on TEXCOORD_1, sampler
wrap modes, alpha BLEND sorted back to front, and MToon (VRM 1.0 and VRM 0.x) drawn as a
toon approximation. Each file is written here, then its JSON edited as exporters write it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import App, ModelRenderer
from engine.gltf import load_gltf
from engine.gltf_write import GltfBuilder, pack_glb, unpack_glb
from engine.meshes import cube, uv_sphere

RED_BLUE = np.array([[[255, 0, 0, 255], [0, 0, 255, 255]]], np.uint8)  # u < 0.5 red, else blue


def write(
    path: Path,
    material: dict[str, Any],
    *,
    uv0: float = 0.75,
    uv1: float | None = None,
    sampler: dict[str, Any] | None = None,
    shape: str = "cube",
    root: dict[str, Any] | None = None,
    texture: np.ndarray = RED_BLUE,
) -> Path:
    """One cube (or sphere) whose every UV is ``(uv0, 0.5)`` (TEXCOORD_1: ``uv1``), with the
    red|blue texture and ``material``'s keys over the builder's material."""
    b = GltfBuilder()
    mesh = cube(1.0) if shape == "cube" else uv_sphere(0.5, 24, 48)
    n = len(mesh["positions"])
    mesh["uvs"] = np.tile(np.float32([uv0, 0.5]), (n, 1))
    extra = b.accessor(np.tile(np.float32([uv1, 0.5]), (n, 1)), "VEC2") if uv1 else None
    b.add_node("m", mesh=b.add_mesh([dict(mesh, material=b.add_material(texture_rgba=texture))]))
    glb = b.save(path)
    doc, blob = unpack_glb(glb.read_bytes())
    doc["materials"][0].update(copy.deepcopy(material))
    if extra is not None:
        doc["meshes"][0]["primitives"][0]["attributes"]["TEXCOORD_1"] = extra
    doc["samplers"] = [sampler or {"magFilter": 9728, "minFilter": 9728}]
    doc.update(copy.deepcopy(root or {}))
    used = {e for m in doc["materials"] for e in m.get("extensions", {})}
    for key in ("baseColorTexture",):
        info = doc["materials"][0].get("pbrMetallicRoughness", {}).get(key, {})
        used |= set(info.get("extensions", {}))
    if used:
        doc["extensionsUsed"] = sorted(used)
    path.write_bytes(pack_glb(doc, blob))
    return path


def draw(path: Path | None, size: int = 48) -> np.ndarray:
    """The file from the front (None: the background alone)."""
    with App.headless(size=(size, size), fps=30) as app:
        app.scene.camera.look_at((0.0, 0.0, 2.5), (0.0, 0.0, 0.0))
        if path is not None:
            app.scene.create_entity("m").add_component(ModelRenderer(path))
        app.step()
        return app.read_pixels()[:, :, :3].astype(np.int16)


def covered(picture: np.ndarray) -> np.ndarray:
    """Where the model is: pixels that differ from the background alone."""
    return np.abs(picture - draw(None)).max(axis=-1) > 12


def centre(path: Path) -> np.ndarray:
    return draw(path)[24, 24]


@pytest.fixture(autouse=True)
def _egl(make_headless_app):
    make_headless_app(size=(16, 16)).close()  # skips where there is no EGL


def _srgb(c: float) -> float:
    return 255 * (12.92 * c if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055)


def untextured(factor: list[float], **more: Any) -> dict[str, Any]:
    return {"pbrMetallicRoughness": {"baseColorFactor": factor}, **more}


def test_unlit_draws_the_base_colour_as_authored(tmp_path):
    colour = [0.2, 0.5, 0.8, 1.0]
    unlit = untextured(colour, extensions={"KHR_materials_unlit": {}})
    pixel = centre(write(tmp_path / "unlit.glb", unlit))
    np.testing.assert_allclose(pixel, [_srgb(c) for c in colour[:3]], atol=2)
    lit = centre(write(tmp_path / "lit.glb", untextured(colour)))
    assert np.abs(lit - pixel).max() > 10


def test_textures_decode_and_frames_encode_srgb_within_a_level(tmp_path):
    """The shader's sRGB curves are fits (pow() costs llvmpipe ~20% of a frame): an unlit
    texel decoded to linear and encoded again comes out as it went in, within one level,
    across the whole range and around the curves' linear segments."""
    unlit = {
        "pbrMetallicRoughness": {"baseColorFactor": [1, 1, 1, 1], "baseColorTexture": {"index": 0}},
        "extensions": {"KHR_materials_unlit": {}},
    }
    for value in (0, 3, 10, 11, 12, 14, 20, 40, 64, 100, 128, 180, 230, 254, 255):
        texel = np.array([[[value, value // 2, 255 - value, 255]]], np.uint8)
        path = write(tmp_path / f"v{value}.glb", unlit, texture=texel)
        np.testing.assert_allclose(centre(path), texel[0, 0, :3], atol=1, err_msg=str(value))


def test_emissive_strength_multiplies_the_emissive_factor(tmp_path):
    def glow(strength: float | None) -> np.ndarray:
        mat = untextured([0, 0, 0, 1], emissiveFactor=[0.15, 0.0, 0.0])
        if strength is not None:
            mat["extensions"] = {"KHR_materials_emissive_strength": {"emissiveStrength": strength}}
        return centre(write(tmp_path / f"e{strength}.glb", mat))

    dark, plain, strong = (
        centre(write(tmp_path / "d.glb", untextured([0, 0, 0, 1]))),
        glow(None),
        glow(4.0),
    )
    assert dark[0] < 10 and plain[0] > dark[0] + 30 and strong[0] > plain[0] + 40
    assert load_gltf(tmp_path / "e4.0.glb").materials[0].emissive_factor[0] == pytest.approx(0.6)


def textured(tex_coord: int = 0, transform: dict[str, Any] | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {"index": 0, "texCoord": tex_coord}
    if transform is not None:
        info["extensions"] = {"KHR_texture_transform": transform}
    return {"pbrMetallicRoughness": {"baseColorTexture": info}}


def is_red(pixel: np.ndarray) -> bool:
    return bool(pixel[0] > pixel[2] + 60)


def is_blue(pixel: np.ndarray) -> bool:
    return bool(pixel[2] > pixel[0] + 60)


def test_second_uv_set_and_texture_transform(tmp_path):
    # TEXCOORD_0 points at blue, TEXCOORD_1 at red.
    assert is_blue(centre(write(tmp_path / "uv0.glb", textured(0), uv1=0.25)))
    assert is_red(centre(write(tmp_path / "uv1.glb", textured(1), uv1=0.25)))
    # KHR_texture_transform: an offset of half the texture moves red to blue and back.
    moved = textured(1, {"offset": [0.5, 0.0]})
    assert is_blue(centre(write(tmp_path / "offset.glb", moved, uv1=0.25)))
    assert is_red(centre(write(tmp_path / "scaled.glb", textured(0, {"scale": [0.3, 1.0]}))))
    # the transform's own texCoord overrides the texture info's
    over = textured(0, {"texCoord": 1})
    assert is_red(centre(write(tmp_path / "over.glb", over, uv1=0.25)))


def test_an_emissive_texture_is_sampled_without_a_base_texture(tmp_path):
    """A black, untextured material glowing through an emissive texture on TEXCOORD_1:
    drawn by the shader variant that samples the emissive texture and not the base one
    (shaders.LitVariant)."""
    glow = untextured([0, 0, 0, 1], emissiveFactor=[1, 1, 1])
    glow["emissiveTexture"] = {"index": 0, "texCoord": 1}
    assert is_red(centre(write(tmp_path / "red.glb", glow, uv1=0.25)))
    assert is_blue(centre(write(tmp_path / "blue.glb", glow, uv1=0.75)))


def test_sampler_wrap_modes(tmp_path):
    # u = 1.25: REPEAT wraps to 0.25 (red); CLAMP_TO_EDGE stays on the last texel (blue).
    repeat = {"wrapS": 10497, "magFilter": 9728}
    clamp = {"wrapS": 33071, "magFilter": 9728}
    assert is_red(centre(write(tmp_path / "repeat.glb", textured(0), uv0=1.25, sampler=repeat)))
    assert is_blue(centre(write(tmp_path / "clamp.glb", textured(0), uv0=1.25, sampler=clamp)))


def test_blended_primitives_are_drawn_back_to_front(tmp_path):
    def boxes(*names: str) -> np.ndarray:
        b = GltfBuilder()
        red = b.add_material((1, 0, 0, 0.5), alpha_mode="BLEND")
        blue = b.add_material((0, 0, 1, 0.5), alpha_mode="BLEND")
        at = {"near": (red, 0.6), "far": (blue, -0.6)}  # the near one first in the file
        for name in names:
            material, z = at[name]
            mesh = b.add_mesh([dict(cube(1.0), material=material)])
            b.add_node(name, mesh=mesh, translation=(0, 0, z), scale=(1, 1, 0.1))
        return centre(b.save(tmp_path / f"{'-'.join(names)}.glb"))

    both, near = boxes("near", "far"), boxes("near")
    # Far first: the blue shows through the red. Near first, the far one would fail the
    # depth test and the picture would be the near one's alone.
    assert both[2] > near[2] + 15 and both[0] > 60, (both, near)


MTOON = "VRMC_materials_mtoon"


def mtoon(shade: list[float], toony: float = 0.95, shift: float = 0.0) -> dict[str, Any]:
    return untextured(
        [0.9, 0.9, 0.9, 1.0],
        extensions={
            MTOON: {"specVersion": "1.0", "shadeColorFactor": shade,
                    "shadingToonyFactor": toony, "shadingShiftFactor": shift}
        },
    )  # fmt: skip


def test_mtoon_shade_colour_and_toony_step(tmp_path):
    red = draw(write(tmp_path / "red.glb", mtoon([0.6, 0.0, 0.0], shift=-0.3), shape="sphere"))
    blue = draw(write(tmp_path / "blue.glb", mtoon([0.0, 0.0, 0.6], shift=-0.3), shape="sphere"))
    ball = covered(red)
    # The shade side takes the shade colour; the lit side stays the (grey) lit colour.
    assert (red[ball][:, 0] > red[ball][:, 2] + 40).mean() > 0.1
    assert (blue[ball][:, 2] > blue[ball][:, 0] + 40).mean() > 0.1
    lit = (np.abs(red - blue).max(axis=-1) < 6) & ball
    assert lit.mean() > 0.1
    # A hard step (toony 1) leaves fewer in-between shades than a soft ramp (toony 0).
    hard = draw(write(tmp_path / "hard.glb", mtoon([0.0, 0.0, 0.6], 1.0), shape="sphere"))
    soft = draw(write(tmp_path / "soft.glb", mtoon([0.0, 0.0, 0.6], 0.0), shape="sphere"))

    def between(p: np.ndarray) -> float:  # neither mostly grey-lit nor mostly shade-blue
        hue = (p[..., 2] - p[..., 0]).astype(float)
        return float(((hue > 25) & (hue < 90) & ball).mean())

    assert between(hard) < 0.5 * between(soft)
    # shift -1 puts the whole ball in shade: blue everywhere on it
    dark = draw(write(tmp_path / "dark.glb", mtoon([0.0, 0.0, 0.6], 0.95, -1.0), shape="sphere"))
    assert (dark[ball][:, 2] > dark[ball][:, 0] + 40).mean() > 0.9


def test_vrm0_mtoon_material_properties(tmp_path):
    props = {
        "name": "toon", "shader": "VRM/MToon",
        "floatProperties": {"_ShadeToony": 0.95, "_ShadeShift": -1.0},
        "vectorProperties": {"_ShadeColor": [0.0, 0.0, 0.8, 1.0], "_Color": [1, 1, 1, 1]},
    }  # fmt: skip
    root = {"extensions": {"VRM": {"materialProperties": [props]}}, "extensionsUsed": ["VRM"]}
    path = write(
        tmp_path / "vrm0.glb",
        untextured([0.9, 0.9, 0.9, 1], name="toon"),
        shape="sphere",
        root=root,
    )
    toon = load_gltf(path).materials[0].toon
    assert (
        toon is not None
        and toon.shift == -1.0
        and toon.shade_color[2] == pytest.approx(0.6038, abs=1e-3)
    )
    picture = draw(path)
    ball = covered(picture)
    assert (picture[ball][:, 2] > picture[ball][:, 0] + 40).mean() > 0.9


def test_specular_glossiness_diffuse_is_the_base_colour(tmp_path):
    """KHR_materials_pbrSpecularGlossiness (older exporters' only colour): its diffuse
    factor and texture are drawn as the base colour, ahead of a metallic-roughness
    fallback; before, such a file drew the fallback (or plain white without one)."""
    diffuse = [0.1, 0.6, 0.3, 1.0]
    gloss = {"diffuseFactor": diffuse, "specularFactor": [0.2, 0.2, 0.2]}
    material = untextured(
        [1.0, 1.0, 1.0, 1.0],
        extensions={"KHR_materials_pbrSpecularGlossiness": gloss, "KHR_materials_unlit": {}},
    )
    pixel = centre(write(tmp_path / "sg.glb", material))  # unlit: the colour as authored
    np.testing.assert_allclose(pixel, [_srgb(c) for c in diffuse[:3]], atol=2)
    textured = {"diffuseTexture": {"index": 0}}  # the red|blue texture, u = 0.75: blue
    material = {
        "pbrMetallicRoughness": {"baseColorFactor": [0.0, 1.0, 0.0, 1.0]},
        "extensions": {"KHR_materials_pbrSpecularGlossiness": textured, "KHR_materials_unlit": {}},
    }
    pixel = centre(write(tmp_path / "sgtex.glb", material))
    assert pixel[2] > 200 and pixel[0] < 30 and pixel[1] < 30


@pytest.mark.parametrize(
    "extension",
    [
        "KHR_texture_transform",
        "KHR_materials_unlit",
        "KHR_materials_emissive_strength",
        "KHR_materials_pbrSpecularGlossiness",
    ],
)
def test_a_file_may_require_an_extension_the_engine_draws(tmp_path, extension):
    """Refused as unsupportedGltfExtension before, although each is drawn."""
    material = untextured([0.5, 0.5, 0.5, 1.0], extensions={extension: {}})
    path = write(tmp_path / "req.glb", material, root={"extensionsRequired": [extension]})
    assert load_gltf(path).materials[0] is not None
