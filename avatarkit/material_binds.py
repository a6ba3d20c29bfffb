"""VRM expressions that change materials, drawn: a colour (blush, a darker shade) or a
texture's offset and scale (a face drawn by texture, eye highlights) moved with the face.

The VRM extension binds an expression to materials beside (or instead of) morph targets:
VRM 1.0 ``materialColorBinds`` (``color``, ``emissionColor``, ``shadeColor``, ``rimColor``,
``matcapColor``, ``outlineColor``) and ``textureTransformBinds``; VRM 0.x
``materialValues`` (``_Color``, ``_EmissionColor``, ``_ShadeColor``, ``_RimColor``,
``_MatcapColor``, ``_OutlineColor`` and ``_MainTex_ST``, by material name). As three-vrm
applies them, each bind moves its value from the material's own toward the target by the
expression's weight, binds adding up. An expression's weight comes from the frame's ARKit
weights through the same convention that drives its morph targets
(``conventions.VRM_EXPRESSIONS``).

What the engine has nothing to draw with (a colour type it does not know, expressions no
preset stands for) is named in one warning at load (``MaterialBinds.undrawn_warning``).
The extension is untrusted JSON: anything malformed is skipped, never raised.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from avatarkit.blendshapes import ExpressionWeights, features
from avatarkit.conventions import (
    VRM0_PRESETS,
    VRM_EXPRESSIONS,
    ExpressionRules,
    index_below,
    name_key,
    number_list,
    vrm0_groups,
    vrm1_expressions,
    vrm_expression,
)

if TYPE_CHECKING:
    from engine import GltfAsset
    from engine.gltf_asset import GltfMaterial, TextureSlot

# VRM 1.0 colour types the renderer draws, and VRM 0.x property names for each type.
DRAWN_COLORS = (
    "color", "emissionColor", "shadeColor", "rimColor", "matcapColor", "outlineColor",
)  # fmt: skip
_TOON_FIELDS = {
    "shadeColor": "shade_color",
    "rimColor": "rim_color",
    "matcapColor": "matcap_factor",
    "outlineColor": "outline_color",
}
_VRM0_COLORS = {
    "_Color": "color",
    "_EmissionColor": "emissionColor",
    "_ShadeColor": "shadeColor",
    "_RimColor": "rimColor",
    "_OutlineColor": "outlineColor",
    "_MatcapColor": "matcapColor",
}
MAX_LISTED = 12  # expressions a warning names
MAX_BINDS = 4096  # binds read from one file (each costs a little every frame)
BIND_LIMIT = 1e3  # the largest target a bind may name (as the toon colours, engine.gltf_material)


@dataclass(frozen=True)
class ColorBind:
    expression: str  # a key of VRM_EXPRESSIONS
    material: int
    kind: str  # one of DRAWN_COLORS
    target: tuple[float, ...]  # linear RGBA (the alpha used by "color" only)


@dataclass(frozen=True)
class TextureBind:
    expression: str
    material: int
    scale: tuple[float, ...]  # (u, v)
    offset: tuple[float, ...]  # (u, v), glTF UV space


@dataclass
class MaterialBinds:
    """A file's VRM material binds (``find_binds``): what the renderer draws, and what it
    cannot, by the file's expression names."""

    colors: list[ColorBind] = field(default_factory=list)
    textures: list[TextureBind] = field(default_factory=list)
    undrawn: dict[str, set[str]] = field(default_factory=dict)  # name -> what is not drawn

    def undrawn_warning(self) -> str | None:
        """One line naming the expressions whose material changes are not drawn (and why),
        or None when every one is."""
        if not self.undrawn:
            return None
        shown = [f"{name} ({', '.join(sorted(why))})" for name, why in sorted(self.undrawn.items())]
        more = len(shown) - MAX_LISTED
        listed = ", ".join(shown[:MAX_LISTED]) + (f" and {more} more" if more > 0 else "")
        return f"VRM expression material changes not drawn: {listed}"


def _shown(name: str) -> str:
    name = name[:64]
    return name if name.isprintable() else repr(name)


def find_binds(asset: GltfAsset) -> MaterialBinds:
    """The material binds of a ``VRMC_vrm`` or ``VRM`` extension, split into what the
    renderer draws and what it cannot (by expression name, with the reason)."""
    found = MaterialBinds()
    count = len(asset.materials)

    def undrawn(name: str, why: str) -> None:
        found.undrawn.setdefault(_shown(name), set()).add(why)

    vrm1 = vrm1_expressions(asset)
    if vrm1 is not None:
        for name, expr in vrm1:
            expression = name_key(name) if name_key(name) in VRM_EXPRESSIONS else None
            colors, textures = expr.get("materialColorBinds"), expr.get("textureTransformBinds")
            binds = [b for b in (colors, textures) if isinstance(b, list) and b]
            if not binds:
                continue
            if expression is None:
                undrawn(name, "not a preset expression: nothing drives it")
                continue
            for b in colors if isinstance(colors, list) else ():
                b = b if isinstance(b, dict) else {}
                material = index_below(b.get("material"), count)
                _add_color(
                    found, undrawn, name, expression, material, b.get("type"), b.get("targetValue")
                )
            for b in textures if isinstance(textures, list) else ():
                b = b if isinstance(b, dict) else {}
                material = index_below(b.get("material"), count)
                scale = number_list(b.get("scale"), 2, (1.0, 1.0))
                offset = number_list(b.get("offset"), 2, (0.0, 0.0))
                if material is None or scale is None or offset is None:
                    undrawn(name, "a malformed textureTransformBind")
                elif len(found.textures) < MAX_BINDS:
                    found.textures.append(
                        TextureBind(expression, material, _bounded(scale), _bounded(offset))
                    )
        return found
    by_name: dict[str, list[int]] = {}
    for i, m in enumerate(asset.materials):
        by_name.setdefault(m.name, []).append(i)
    for group in vrm0_groups(asset):
        values = group.get("materialValues")
        label = group.get("name") or group.get("presetName")
        if not (isinstance(values, list) and values and isinstance(label, str)):
            continue
        preset = group.get("presetName")
        expression = VRM0_PRESETS.get(preset.lower()) if isinstance(preset, str) else None
        if expression is None:
            expression = vrm_expression(label)
        if expression is None:
            undrawn(label, "not a preset expression: nothing drives it")
            continue
        for v in values:
            if not isinstance(v, dict) or not isinstance(v.get("materialName"), str):
                undrawn(label, "a malformed materialValue")
                continue
            target = number_list(v.get("targetValue"), 4, ())
            prop = v.get("propertyName")
            for material in by_name.get(v["materialName"], []):
                if prop == "_MainTex_ST" and target:
                    sx, sy, ox, oy = target
                    # Unity's texture space runs bottom-up, glTF's top-down (three-vrm).
                    if len(found.textures) < MAX_BINDS:
                        found.textures.append(
                            TextureBind(
                                expression,
                                material,
                                _bounded((sx, sy)),
                                _bounded((ox, 1.0 - oy - sy)),
                            )
                        )
                elif prop in _VRM0_COLORS and target:
                    _add_color(
                        found,
                        undrawn,
                        label,
                        expression,
                        material,
                        _VRM0_COLORS[prop],
                        v["targetValue"],
                    )
                else:
                    undrawn(label, f"material property {_shown(str(prop))}")
    return found


def _add_color(
    found: MaterialBinds,
    undrawn: Callable[[str, str], None],
    name: str,
    expression: str,
    material: int | None,
    kind: Any,
    value: Any,
) -> None:
    """One colour bind (untrusted: ``kind`` and ``value`` as the file has them)."""
    rgb = number_list(value, 3, ())
    if material is None or not rgb or not isinstance(kind, str):
        undrawn(name, "a malformed materialColorBind")
    elif kind not in DRAWN_COLORS:
        undrawn(name, f"{_shown(kind)} (no such shading here)")
    elif len(found.colors) < MAX_BINDS:
        rgba = number_list(value, 4, ()) or (*rgb, 1.0)
        found.colors.append(ColorBind(expression, material, kind, _bounded(rgba, 0.0)))


def _bounded(values: tuple[float, ...], low: float = -BIND_LIMIT) -> tuple[float, ...]:
    """A bind's target inside ``low``..``BIND_LIMIT``: finite is not enough, a 1e300 colour
    or texture offset overflows to infinity in the GPU's 32-bit floats."""
    return tuple(min(max(v, low), BIND_LIMIT) for v in values)


class MaterialExpressions:
    """Per frame: the materials as the face shows them (``materials(arkit)``)."""

    def __init__(self, asset: GltfAsset, found: MaterialBinds, rules: ExpressionRules) -> None:
        self._base = asset.materials
        self._colors, self._textures = found.colors, found.textures
        self._expressions = ExpressionWeights(self.names, rules)
        self._last: tuple[bytes, dict[int, GltfMaterial]] | None = None

    @classmethod
    def of(
        cls, asset: GltfAsset, found: MaterialBinds, rules: ExpressionRules
    ) -> MaterialExpressions | None:
        """``found`` (``find_binds(asset)``) drawn on ``asset`` under the file's ``rules``
        (``conventions.expression_rules``); None when it draws nothing."""
        return cls(asset, found, rules) if found.colors or found.textures else None

    @property
    def names(self) -> tuple[str, ...]:
        """The expressions whose material changes are drawn."""
        return tuple(
            sorted({b.expression for b in self._colors} | {b.expression for b in self._textures})
        )

    def weights(self, arkit: np.ndarray) -> dict[str, float]:
        """Each bound (or overriding) expression's weight for one ARKit vector."""
        return self._expressions(features(arkit))

    def materials(self, arkit: np.ndarray) -> dict[int, GltfMaterial]:
        """Material index -> the material with this frame's expressions applied, for every
        bound material (its own where no expression shows). The same dict while the
        expressions' weights stand still."""
        weights = self.weights(arkit)
        key = np.array(list(weights.values()), np.float32).tobytes()
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        out: dict[int, Any] = {}
        fields: dict[int, dict[str, np.ndarray]] = {}
        for b in self._colors:
            w = weights[b.expression]
            base = self._base[b.material]
            current = fields.setdefault(b.material, {})
            own = _color_of(base, b.kind)
            value = current.setdefault(b.kind, np.array(own, np.float64))
            size = len(own)
            value += w * (np.asarray(b.target[:size]) - np.asarray(own))
        uv: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for t in self._textures:
            w = weights[t.expression]
            scale, offset, _ = _decompose(self._base[t.material].base_color_slot)
            s, o = uv.setdefault(t.material, (np.array(scale), np.array(offset)))
            s += w * (np.asarray(t.scale) - scale)
            o += w * (np.asarray(t.offset) - offset)
        for index in {*fields, *uv}:
            material = self._base[index]
            changes: dict[str, Any] = {}
            for kind, value in fields.get(index, {}).items():
                changes.update(_with_color(material, kind, tuple(float(v) for v in value)))
            if index in uv:
                s, o = uv[index]
                changes["base_color_slot"] = _moved(material.base_color_slot, s, o)
                changes["emissive_slot"] = _moved(material.emissive_slot, s, o)
            out[index] = replace(material, **changes)
        self._last = (key, out)
        return out


def _color_of(material: GltfMaterial, kind: str) -> tuple[float, ...]:
    if kind == "color":
        return tuple(material.base_color_factor)
    if kind == "emissionColor":
        return tuple(material.emissive_factor[:3])
    toon = material.toon
    if toon is None:
        return (0.0, 0.0, 0.0)  # no MToon shading: nothing draws it (kept for the sum)
    return tuple(getattr(toon, _TOON_FIELDS[kind])[:3])


def _with_color(material: GltfMaterial, kind: str, value: tuple[float, ...]) -> dict[str, Any]:
    if kind == "color":
        return {"base_color_factor": value}
    if kind == "emissionColor":
        return {"emissive_factor": value}
    if material.toon is None:
        return {}
    changes: dict[str, Any] = {_TOON_FIELDS[kind]: value}
    return {"toon": replace(material.toon, **changes)}


def _decompose(slot: TextureSlot) -> tuple[tuple[float, float], tuple[float, float], float]:
    """(scale, offset, rotation) of a slot's ``KHR_texture_transform`` (``uv_matrix``)."""
    a, b, c, d, e, f = slot.transform[:6]
    sx, sy = math.hypot(a, d), math.hypot(b, e)
    return (sx, sy), (c, f), math.atan2(-d, a)


def _moved(slot: TextureSlot, scale: np.ndarray, offset: np.ndarray) -> TextureSlot:
    _, _, r = _decompose(slot)
    cos, sin = math.cos(r), math.sin(r)
    sx, sy = float(scale[0]), float(scale[1])
    transform = (cos * sx, sin * sy, float(offset[0]), -sin * sx, cos * sy, float(offset[1]))
    return replace(slot, transform=transform)
