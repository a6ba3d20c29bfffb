"""The lit shader's material uniforms as bytes: base colour, alpha mode and cutoff,
texture UV sets and transforms, emissive, unlit and MToon with its matcap
(``engine.gltf_material``)."""

from __future__ import annotations

import struct
from dataclasses import replace

import numpy as np

from engine.gltf_asset import GltfMaterial, Toon
from engine.render.shaders import LitVariant

_NO_TOON = Toon()
ALPHA_MODES = {"OPAQUE": 0, "MASK": 1, "BLEND": 2}  # the shader's u_alpha_mode


def needs_extras(material: GltfMaterial) -> bool:
    """Whether the material needs the lit shader's extras variant (unlit or MToon)."""
    return material.unlit or material.toon is not None


def material_uniforms(material: GltfMaterial, variant: LitVariant) -> dict[str, bytes]:
    """``material``'s uniforms in the lit shader ``variant`` drawing it (its texture
    uniforms exist only where it samples that texture), name -> bytes: the renderer writes
    only those a program does not hold already (primitives of one avatar switch between
    materials that mostly differ in their colour alone)."""
    if variant.outline:  # the toon's outline, and what a cut-out one is cut by
        toon = material.toon or _NO_TOON
        plain = replace(variant, outline=False, extras=False)
        return {
            **(material_uniforms(material, plain) if variant.alpha_mask else {}),
            "u_outline_width": _floats([toon.outline_width]),
            "u_outline_screen": _int(toon.outline_screen),
            "u_outline_color": _floats(toon.outline_color[:3]),
            "u_outline_mix": _floats([toon.outline_mix]),
        }
    out = {
        "u_base_color": _floats(material.base_color_factor[:4]),  # glTF factors are linear
        "u_alpha_mode": _int(ALPHA_MODES.get(material.alpha_mode, 0)),
        "u_emissive": _floats(material.emissive_factor[:3]),
    }
    for sampled, slot, name in (
        (variant.base_texture, material.base_color_slot, "base"),
        (variant.emissive_texture, material.emissive_slot, "emissive"),
    ):
        if sampled:
            if variant.uv1:
                out[f"u_{name}_uv_set"] = _int(slot.uv_set)
            out[f"u_{name}_uv_row"] = _rows(slot.transform)
    if variant.alpha_mask:
        out["u_alpha_cutoff"] = _floats([material.alpha_cutoff])
    if not needs_extras(material):  # the plain variant (no u_toon; "in" walks every uniform)
        return out
    toon = material.toon or _NO_TOON
    out["u_unlit"] = _int(material.unlit)
    out["u_toon"] = _int(material.toon is not None)
    out["u_shade_color"] = _floats(toon.shade_color[:3])
    out["u_toony"] = _floats([min(max(toon.toony, 0.0), 1.0)])
    out["u_shade_shift"] = _floats([min(max(toon.shift, -1.0), 1.0)])
    out["u_rim_color"] = _floats(toon.rim_color[:3])
    out["u_rim"] = _floats([toon.rim_power, toon.rim_lift, toon.rim_mix])
    if variant.matcap_texture:
        out["u_matcap_factor"] = _floats(toon.matcap_factor[:3])
        out["u_matcap_uv_row"] = _rows(material.matcap_slot.transform)
    return out


def _floats(values) -> bytes:
    return np.asarray(values, np.float32).tobytes()


def _int(value: int | bool) -> bytes:  # GLSL int and bool uniforms: 4 bytes
    return struct.pack("i", int(value))


def _rows(transform: tuple[float, ...]) -> bytes:
    return np.asarray(transform[:6], np.float32).tobytes()  # two vec3 rows
