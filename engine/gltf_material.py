"""glTF materials as the renderer draws them: base colour and emissive (factor, texture,
UV set, ``KHR_texture_transform``, sampler), alpha mode, double-sided,
``KHR_materials_unlit``, ``KHR_materials_emissive_strength``, the diffuse colour of the
archived ``KHR_materials_pbrSpecularGlossiness`` (older exporters' only colour), and
MToon (VRM 1.0 ``VRMC_materials_mtoon`` and VRM 0.x ``materialProperties`` with shader
``VRM/MToon``) drawn as a two-tone toon approximation with its rim, matcap and outline.
Runs on the loading thread.

The document is untrusted: every number read here is checked to be a finite number (or
falls back to the default, with the field named in ``invalidGltf`` only where the core
schema requires it; ``engine.gltf_validate`` checks the core fields first).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.gltf_asset import GltfMaterial, TextureSlot, Toon

UNLIT = "KHR_materials_unlit"
EMISSIVE_STRENGTH = "KHR_materials_emissive_strength"
TRANSFORM = "KHR_texture_transform"
MTOON = "VRMC_materials_mtoon"
SPEC_GLOSS = "KHR_materials_pbrSpecularGlossiness"
# Extensions this module reads: a file may require them (the loader's warning names any
# other a material uses).
READ = frozenset({UNLIT, EMISSIVE_STRENGTH, TRANSFORM, MTOON, SPEC_GLOSS})

_WRAP = {33071: "clamp", 33648: "mirror", 10497: "repeat"}
_NEAREST = {9728, 9984, 9986}  # NEAREST, NEAREST_MIPMAP_NEAREST, NEAREST_MIPMAP_LINEAR

TextureImage = Callable[[int], "np.ndarray | None"]


def read_material(
    doc: dict[str, Any],
    index: int,
    mat: dict[str, Any],
    texture_image: TextureImage,
    vrm0: dict[str, Any] | None = None,
) -> GltfMaterial:
    """The material ``mat`` (``doc["materials"][index]``); ``texture_image(i)`` decodes
    ``textures[i]``; ``vrm0``: this material's VRM 0.x ``materialProperties`` entry."""
    pbr = _obj(mat.get("pbrMetallicRoughness"))
    ext = _obj(mat.get("extensions"))
    colour, texture = "baseColorFactor", "baseColorTexture"
    if isinstance(ext.get(SPEC_GLOSS), dict):  # preferred where read, its spec says
        pbr, colour, texture = ext[SPEC_GLOSS], "diffuseFactor", "diffuseTexture"
    factor = _floats(pbr.get(colour), (1.0, 1.0, 1.0, 1.0))
    base, base_slot = _texture(doc, pbr.get(texture), texture_image)
    emissive, emissive_slot = _texture(doc, mat.get("emissiveTexture"), texture_image)
    strength = _number(_obj(ext.get(EMISSIVE_STRENGTH)).get("emissiveStrength"), 1.0)
    mtoon = _obj(ext.get(MTOON))
    toon = _toon(mtoon, vrm0)
    matcap, matcap_slot = None, TextureSlot()
    if toon is not None:  # VRM 0.x's _SphereAdd: a texture index alone
        sphere = _obj(_obj(vrm0).get("textureProperties")).get("_SphereAdd")
        info = mtoon.get("matcapTexture") if mtoon else {"index": sphere}
        matcap, matcap_slot = _texture(doc, info, texture_image)
    cutoff = mat.get("alphaCutoff")
    return GltfMaterial(
        name=mat.get("name") or f"material{index}",
        base_color_factor=(factor[0], factor[1], factor[2], factor[3]),
        base_color_texture=base,
        alpha_mode=mat.get("alphaMode") or "OPAQUE",
        alpha_cutoff=float(cutoff if cutoff is not None else 0.5),
        double_sided=bool(mat.get("doubleSided", False)),
        base_color_slot=base_slot,
        emissive_factor=tuple(
            v * max(strength, 0.0) for v in _floats(mat.get("emissiveFactor"), (0.0,) * 3)
        ),
        emissive_texture=emissive,
        emissive_slot=emissive_slot,
        matcap_texture=matcap,
        matcap_slot=matcap_slot,
        unlit=UNLIT in ext,
        toon=toon,
    )


def _texture(
    doc: dict[str, Any], info: Any, texture_image: TextureImage
) -> tuple[np.ndarray | None, TextureSlot]:
    info = _obj(info)
    index = info.get("index")
    textures = doc.get("textures") or []
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(textures):
        return None, TextureSlot()
    uv_set = info.get("texCoord", 0)
    transform = _obj(_obj(info.get("extensions")).get(TRANSFORM))
    if "texCoord" in transform:  # the extension may move the texture to another UV set
        uv_set = transform["texCoord"]
    slot = TextureSlot(
        uv_set=1 if uv_set == 1 else 0,
        transform=uv_matrix(transform),
        **_sampler(doc, textures[index]),
    )
    return texture_image(index), slot


def uv_matrix(transform: dict[str, Any]) -> tuple[float, ...]:
    """``KHR_texture_transform`` as a row-major 2x3 matrix: T * R * S, as the spec says."""
    ox, oy = _floats(transform.get("offset"), (0.0, 0.0))
    sx, sy = _floats(transform.get("scale"), (1.0, 1.0))
    r = _number(transform.get("rotation"), 0.0)
    c, s = math.cos(r), math.sin(r)
    return (c * sx, s * sy, ox, -s * sx, c * sy, oy)


def _sampler(doc: dict[str, Any], texture: Any) -> dict[str, Any]:
    samplers = doc.get("samplers") or []
    index = _obj(texture).get("sampler")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(samplers):
        return {}
    sampler = _obj(samplers[index])
    return {
        "wrap": (
            _WRAP.get(sampler.get("wrapS", 10497), "repeat"),
            _WRAP.get(sampler.get("wrapT", 10497), "repeat"),
        ),
        "nearest": sampler.get("magFilter") in _NEAREST,
    }


def _toon(mtoon: dict[str, Any], vrm0: dict[str, Any] | None) -> Toon | None:
    """MToon's lit/shade split: VRM 1.0 names, else VRM 0.x's ``floatProperties`` /
    ``vectorProperties`` (``_ShadeColor``, ``_ShadeToony``, ``_ShadeShift``, ``_RimColor``).
    The matcap factor: VRM 1.0's ``matcapFactor``; VRM 0.x has none (white)."""
    if mtoon:
        return Toon(
            matcap_factor=_color(_floats(mtoon.get("matcapFactor"), (1.0, 1.0, 1.0))),
            shade_color=_floats(mtoon.get("shadeColorFactor"), (0.0, 0.0, 0.0)),
            toony=_number(mtoon.get("shadingToonyFactor"), 0.9),
            shift=_number(mtoon.get("shadingShiftFactor"), 0.0),
            rim_color=_floats(mtoon.get("parametricRimColorFactor"), (0.0, 0.0, 0.0)),
            **_rim(
                _number(mtoon.get("parametricRimFresnelPowerFactor"), 5.0),
                _number(mtoon.get("parametricRimLiftFactor"), 0.0),
                _number(mtoon.get("rimLightingMixFactor"), 1.0),
            ),
            **_outline(
                mtoon.get("outlineWidthMode"),
                _number(mtoon.get("outlineWidthFactor"), 0.0),
                _floats(mtoon.get("outlineColorFactor"), (0.0, 0.0, 0.0)),
                _number(mtoon.get("outlineLightingMixFactor"), 1.0),
            ),
        )
    if vrm0 is None or vrm0.get("shader") != "VRM/MToon":
        return None
    floats = _obj(vrm0.get("floatProperties"))
    vectors = _obj(vrm0.get("vectorProperties"))
    # VRM 0.x's shade colour is sRGB-encoded (Unity colour), its toony/shift on other
    # scales: shift -1..1 like 1.0's, toony 0..1 with the same meaning.
    shade = _floats(vectors.get("_ShadeColor"), (0.0, 0.0, 0.0, 1.0))[:3]
    rim = _floats(vectors.get("_RimColor"), (0.0, 0.0, 0.0, 1.0))[:3]
    return Toon(
        shade_color=tuple(_srgb_to_linear(v) for v in shade),
        toony=_number(floats.get("_ShadeToony"), 0.9),
        shift=_number(floats.get("_ShadeShift"), 0.0),
        rim_color=tuple(_srgb_to_linear(v) for v in rim),
        **_rim(
            _number(floats.get("_RimFresnelPower"), 1.0),
            _number(floats.get("_RimLift"), 0.0),
            _number(floats.get("_RimLightingMix"), 0.0),
        ),
        # UniVRM 0.x: _OutlineWidthMode 1 world, 2 screen; the width in centimetres (world)
        # or hundredths of half the screen's height (its clip offset); the colour sRGB.
        **_outline(
            {1.0: "worldCoordinates", 2.0: "screenCoordinates"}.get(
                _number(floats.get("_OutlineWidthMode"), 0.0)
            ),
            _number(floats.get("_OutlineWidth"), 0.0)
            * (0.01 if _number(floats.get("_OutlineWidthMode"), 0.0) == 1.0 else 0.005),
            tuple(
                _srgb_to_linear(v)
                for v in _floats(vectors.get("_OutlineColor"), (0.0, 0.0, 0.0, 1.0))[:3]
            ),
            _number(floats.get("_OutlineLightingMix"), 1.0),
        ),
    )


def _rim(power: float, lift: float, mix: float) -> dict[str, Any]:
    """Toon's rim fields, each in its range (MToon: power 0..100, lift 0..1, mix 0..1)."""
    return {
        "rim_power": min(max(power, 1e-5), 100.0),
        "rim_lift": min(max(lift, 0.0), 1.0),
        "rim_mix": min(max(mix, 0.0), 1.0),
    }


def _outline(mode: Any, width: float, color: tuple[float, ...], mix: float) -> dict[str, Any]:
    """Toon's outline fields: none unless the mode draws one with a width; the width at
    most 0.1 (a hostile file's hull swallowing the scene), the mix 0..1."""
    if mode not in ("worldCoordinates", "screenCoordinates") or not width > 0:
        return {}
    return {
        "outline_width": min(width, 0.1),
        "outline_screen": mode == "screenCoordinates",
        "outline_color": _color(color),
        "outline_mix": min(max(mix, 0.0), 1.0),
    }


def _color(color: tuple[float, ...]) -> tuple[float, ...]:
    """A linear RGB factor in 0..1000: nothing negative, nothing a hostile file could
    blow through the tone curve with."""
    return tuple(min(max(c, 0.0), 1e3) for c in color[:3])


def vrm0_material_properties(extensions: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """VRM 0.x ``materialProperties`` by material name (how VRM 0.x ties them)."""
    props = _obj(extensions.get("VRM")).get("materialProperties")
    if not isinstance(props, list):
        return {}
    return {p["name"]: p for p in props if isinstance(p, dict) and isinstance(p.get("name"), str)}


def _srgb_to_linear(c: float) -> float:
    c = min(max(c, 0.0), 1.0)
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any, default: float) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(min(max(value, -1e6), 1e6)) if ok else default


def _floats(value: Any, default: tuple[float, ...]) -> tuple[float, ...]:
    if not isinstance(value, list) or len(value) < len(default):
        return default
    return tuple(_number(v, d) for v, d in zip(value, default, strict=False))
