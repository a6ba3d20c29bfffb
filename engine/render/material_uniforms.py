"""The lit shader's material uniforms beyond base colour and alpha: texture UV sets and
transforms, emissive, unlit and MToon (``engine.gltf_material``). Render thread only."""

from __future__ import annotations

import moderngl
import numpy as np

from engine.gltf_asset import GltfMaterial, Toon
from engine.render.shaders import LitVariant

_NO_TOON = Toon()


def needs_extras(material: GltfMaterial) -> bool:
    """Whether the material needs the lit shader's extras variant (unlit or MToon)."""
    return material.unlit or material.toon is not None


def set_material_uniforms(
    program: moderngl.Program, material: GltfMaterial, variant: LitVariant
) -> None:
    """``material``'s uniforms in ``program``, the lit shader ``variant`` drawing it (its
    texture uniforms exist only where it samples that texture)."""
    program["u_emissive"].value = tuple(float(v) for v in material.emissive_factor[:3])
    for sampled, slot, name in (
        (variant.base_texture, material.base_color_slot, "base"),
        (variant.emissive_texture, material.emissive_slot, "emissive"),
    ):
        if sampled:
            if variant.uv1:
                program[f"u_{name}_uv_set"].value = slot.uv_set
            program[f"u_{name}_uv_row"].write(_rows(slot.transform))
    if variant.alpha_mask:
        program["u_alpha_cutoff"].value = material.alpha_cutoff
    if not needs_extras(material):  # the plain variant (no u_toon; "in" walks every uniform)
        return
    program["u_unlit"].value = material.unlit
    toon = material.toon or _NO_TOON
    program["u_toon"].value = material.toon is not None
    program["u_shade_color"].value = tuple(float(v) for v in toon.shade_color[:3])
    program["u_toony"].value = float(min(max(toon.toony, 0.0), 1.0))
    program["u_shade_shift"].value = float(min(max(toon.shift, -1.0), 1.0))
    program["u_rim_color"].value = tuple(float(v) for v in toon.rim_color[:3])


def _rows(transform: tuple[float, ...]) -> bytes:
    return np.asarray(transform[:6], np.float32).tobytes()  # two vec3 rows
