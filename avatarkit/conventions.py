"""Which convention a morph target's name follows, and what it stands for.

Models in the wild name their targets after ARKit (``eyeBlinkLeft``, ``eyeBlink_L``,
``blendShape1.eyeBlink_L``, ``eye_blink_left``), after Oculus/Ready Player Me visemes
(``viseme_aa``, plus ``mouthOpen``, ``eyesClosed``, ...) or after VRM expressions (VRM 1.0
``aa``/``blink``/``happy``, VRM 0.x ``A``/``Blink``/``Joy``, VRoid's ``Fcl_MTH_A``); a VRM
file may also bind expressions to targets in its ``VRMC_vrm`` / ``VRM`` extension. This
module recognises all of them (pure functions over names and the file's JSON);
``blendshapes.build_map`` turns what it finds into the matrices that drive a model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from avatarkit.arkit import ARKIT_NAMES

if TYPE_CHECKING:
    from engine import GltfAsset

_CANONICAL = {name.lower(): name for name in ARKIT_NAMES}

# The five vowels vowel-only avatars have (VRM aa/ih/ou/ee/oh, viseme_aa/E/I/O/U); their
# weights come from the articulation (``blendshapes.vowel_weights``).
VOWELS: tuple[str, ...] = ("aa", "ih", "ou", "ee", "oh")
MAX_RULES = 64  # override rules read from one file (three groups per preset at most)


# -- conventions --------------------------------------------------------------------------
def _pair(name: str, gain: float = 0.5) -> dict[str, float]:
    return {name + "Left": gain, name + "Right": gain}


@dataclass(frozen=True)
class Convention:
    """What one non-ARKit target stands for: feature gains (weight = sum, clipped to 0..1)."""

    gains: dict[str, float]
    # Per-channel gains used instead when the model has direct ARKit mouth channels
    # (a vowel then shows only the part of the shape the model lacks).
    fallback: dict[str, float] | None = None


_VOWEL_FALLBACK = {
    "aa": {"jawOpen": 1.0},
    "ee": {"mouthDimpleLeft": 0.8, "mouthDimpleRight": 0.8},
    "ih": {"mouthUpperUpLeft": 0.6, "mouthUpperUpRight": 0.6},
    "oh": {"mouthFunnel": 1.0},
    "ou": {"mouthPucker": 1.0},
}


def _vowel(name: str) -> Convention:
    return Convention({name: 1.0}, _VOWEL_FALLBACK[name])


# Oculus/OVR lip-sync visemes (Ready Player Me ``viseme_*``): consonants from the ARKit
# channels that make that mouth shape, vowels from the derived vowel weights.
VISEMES: dict[str, Convention] = {
    "sil": Convention({}),  # the rest pose: never driven
    "pp": Convention({"mouthClose": 1.0, "mouthPressLeft": 0.5, "mouthPressRight": 0.5}),
    "ff": Convention({"mouthRollLower": 1.0, "mouthUpperUpLeft": 0.3, "mouthUpperUpRight": 0.3}),
    "th": Convention({"tongueOut": 1.0}),
    "dd": Convention({"mouthShrugUpper": 0.8}),
    "kk": Convention({"mouthStretchLeft": 0.5, "mouthStretchRight": 0.5}),
    "ch": Convention({"mouthShrugLower": 0.8, "mouthShrugUpper": 0.4}),
    "ss": Convention({"mouthSmileLeft": 0.6, "mouthSmileRight": 0.6}),
    "nn": Convention({"mouthLowerDownLeft": 0.6, "mouthLowerDownRight": 0.6}),
    "rr": Convention({"mouthRollUpper": 0.8}),
    "aa": _vowel("aa"),
    "e": _vowel("ee"),
    "i": _vowel("ih"),
    "o": _vowel("oh"),
    "u": _vowel("ou"),
}
# Kept for callers of the per-channel table (the vowels' fallback gains).
VISEME_CHANNELS: dict[str, dict[str, float]] = {
    k: c.fallback or c.gains for k, c in VISEMES.items()
}

# Ready Player Me's extra targets next to the visemes.
RPM_EXTRAS: dict[str, Convention] = {
    "mouthopen": Convention({"jawOpen": 1.0}),
    "mouthsmile": Convention(_pair("mouthSmile")),
    "eyesclosed": Convention(_pair("eyeBlink")),
    "eyeslookup": Convention(_pair("eyeLookUp")),
    "eyeslookdown": Convention(_pair("eyeLookDown")),
}

# VRM 1.0 preset expressions (``VRMC_vrm.expressions.preset``). lookLeft/lookRight are the
# avatar's own left/right, as ARKit's eyeLookOutLeft is.
VRM_EXPRESSIONS: dict[str, Convention] = {
    **{v: _vowel(v) for v in VOWELS},
    "blink": Convention(_pair("eyeBlink")),
    "blinkleft": Convention({"eyeBlinkLeft": 1.0}),
    "blinkright": Convention({"eyeBlinkRight": 1.0}),
    # Speech spreads the lips with a little smile: a whole-face "happy" reads only what is
    # above it (the ``happy`` feature), so talking does not flash joy.
    "happy": Convention({"happy": 1.0}),
    "angry": Convention(_pair("browDown")),
    "sad": Convention(_pair("mouthFrown")),
    "surprised": Convention(_pair("eyeWide")),
    "relaxed": Convention({}),
    "neutral": Convention({}),
    "lookup": Convention(_pair("eyeLookUp")),
    "lookdown": Convention(_pair("eyeLookDown")),
    "lookleft": Convention({"eyeLookOutLeft": 0.5, "eyeLookInRight": 0.5}),
    "lookright": Convention({"eyeLookOutRight": 0.5, "eyeLookInLeft": 0.5}),
}
# VRM 0.x blendShapeMaster presetName (lower case in the spec) -> VRM 1.0 name.
VRM0_PRESETS: dict[str, str] = {
    "a": "aa", "i": "ih", "u": "ou", "e": "ee", "o": "oh",
    "blink": "blink", "blink_l": "blinkleft", "blink_r": "blinkright",
    "joy": "happy", "angry": "angry", "sorrow": "sad", "fun": "relaxed", "surprised": "surprised",
    "lookup": "lookup", "lookdown": "lookdown", "lookleft": "lookleft", "lookright": "lookright",
    "neutral": "neutral",
}  # fmt: skip
# VRoid Studio's own target names for the same shapes (a VRM exported without its extension).
_VROID_NAMES = {
    "fclmtha": "aa", "fclmthi": "ih", "fclmthu": "ou", "fclmthe": "ee", "fclmtho": "oh",
    "fcleyeclose": "blink", "fcleyeclosel": "blinkleft", "fcleyecloser": "blinkright",
    "fclalljoy": "happy", "fclallangry": "angry", "fclallsorrow": "sad",
    "fclallsurprised": "surprised",
}  # fmt: skip

_VISEME_RE = re.compile(r"^(?:.*[.:|])?viseme[_\-\s]?([a-z]+)$", re.IGNORECASE)
_SIDE_RE = re.compile(r"^(.*?)(?:[_.\-\s]?(left|right|l|r))$")


def name_key(name: str) -> str:
    """A name without case or separators: how names of one convention are compared."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def arkit_channel(name: str) -> str | None:
    """The ARKit channel a target name stands for, or None.

    >>> (arkit_channel("eyeBlink_L"), arkit_channel("blendShape1.JawOpen"),
    ...  arkit_channel("viseme_aa"))
    ('eyeBlinkLeft', 'jawOpen', None)
    """
    # The whole name first (``browOuterUp.R``), then without a namespace (``blendShape1.x``).
    for base in (name, re.split(r"[.:|]", name)[-1]):
        key = name_key(base)
        if key in _CANONICAL:
            return _CANONICAL[key]
        # eyeBlink_L, eyeBlinkL, eye_blink_l: a trailing side letter or word.
        match = _SIDE_RE.match(base.lower())
        if match:
            side = {"l": "left", "r": "right"}.get(match.group(2), match.group(2))
            channel = _CANONICAL.get(name_key(match.group(1)) + side)
            if channel:
                return channel
    return None


def viseme_name(name: str) -> str | None:
    """The Oculus viseme (``aa``, ``pp``, ...) a target name stands for, or None."""
    match = _VISEME_RE.match(name.strip())
    if match and match.group(1).lower() in VISEMES:
        return match.group(1).lower()
    return None


def vrm_expression(name: str) -> str | None:
    """The VRM 1.0 expression (lower case) a name stands for: a VRM 1.0 name (``aa``,
    ``blinkLeft``), a VRM 0.x preset (``A``, ``Blink_L``, ``Joy``) or a VRoid target name
    (``Fcl_MTH_A``), with or without a namespace; else None."""
    for base in (name, re.split(r"[.:|]", name)[-1]):
        low = base.strip().lower()
        if low in VRM0_PRESETS:
            return VRM0_PRESETS[low]
        key = name_key(base)
        if key in VRM_EXPRESSIONS:
            return key
        if key in _VROID_NAMES:
            return _VROID_NAMES[key]
    return None


def convention_for(name: str) -> tuple[str, Convention] | None:
    """(label, convention) for a plain target name that follows a known convention."""
    if (viseme := viseme_name(name)) is not None:
        return f"viseme {viseme}", VISEMES[viseme]
    key = name_key(re.split(r"[.:|]", name)[-1])
    if key in RPM_EXTRAS:
        return f"rpm {key}", RPM_EXTRAS[key]
    if (expression := vrm_expression(name)) is not None:
        return f"vrm {expression}", VRM_EXPRESSIONS[expression]
    return None


# -- VRM extensions -----------------------------------------------------------------------
@dataclass(frozen=True)
class ExpressionBind:
    """One morph target an expression of the file's VRM extension moves."""

    expression: str  # VRM 1.0 preset name, lower case
    mesh: int
    target: int
    weight: float  # 0..1 at full expression


def index_below(value: Any, size: int) -> int | None:
    """``value`` if it is an int index into ``size`` items (untrusted JSON), else None."""
    return (
        value
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < size
        else None
    )


def number_list(value: Any, size: int, default: tuple[float, ...]) -> tuple[float, ...] | None:
    """The first ``size`` numbers of a JSON list (untrusted: all finite numbers, at least
    ``size`` of them), ``default`` when absent (None), else None."""
    if value is None:
        return default
    if not (isinstance(value, list) and len(value) >= size):
        return None
    out = []
    for v in value[:size]:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return None
        out.append(float(v))
    return tuple(out)


def _weight(value: Any, scale: float) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return min(max(float(value) / scale, 0.0), 1.0)
    return None


def vrm1_expressions(asset: GltfAsset) -> Iterator[tuple[str, dict[str, Any]]] | None:
    """(name, expression) of a ``VRMC_vrm`` extension's preset and custom expressions
    (untrusted JSON: only string names and object expressions); None without VRM 1.0
    expressions."""
    vrm1 = asset.extensions.get("VRMC_vrm")
    if not (isinstance(vrm1, dict) and isinstance(vrm1.get("expressions"), dict)):
        return None
    groups = vrm1["expressions"]
    return (
        (name, expr)
        for kind in ("preset", "custom")
        if isinstance(groups.get(kind), dict)
        for name, expr in groups[kind].items()
        if isinstance(name, str) and isinstance(expr, dict)
    )


def vrm0_groups(asset: GltfAsset) -> Iterator[dict[str, Any]]:
    """The object entries of a ``VRM`` extension's ``blendShapeMaster.blendShapeGroups``."""
    vrm0 = asset.extensions.get("VRM")
    master = vrm0.get("blendShapeMaster") if isinstance(vrm0, dict) else None
    groups = master.get("blendShapeGroups") if isinstance(master, dict) else None
    return (g for g in (groups if isinstance(groups, list) else ()) if isinstance(g, dict))


def expression_binds(asset: GltfAsset) -> list[ExpressionBind]:
    """Expression -> morph target binds from ``VRMC_vrm`` (VRM 1.0) or ``VRM`` (VRM 0.x).

    The extension is untrusted JSON: anything malformed (wrong types, indices out of
    range) is skipped, never raised."""
    counts = [len(m.target_names) for m in asset.meshes]
    binds: list[ExpressionBind] = []

    def add(expression: str | None, mesh: int | None, target: Any, weight: float | None) -> None:
        if expression is None or mesh is None or weight is None:
            return
        t = index_below(target, counts[mesh])
        if t is not None:
            binds.append(ExpressionBind(expression, mesh, t, weight))

    vrm1 = vrm1_expressions(asset)
    if vrm1 is not None:
        for name, expr in vrm1:  # custom ones count only if named like a preset
            if not isinstance(expr.get("morphTargetBinds"), list):
                continue
            expression = name_key(name) if name_key(name) in VRM_EXPRESSIONS else None
            for b in expr["morphTargetBinds"]:
                if isinstance(b, dict):
                    node = index_below(b.get("node"), len(asset.nodes))
                    mesh = (
                        None if node is None else index_below(asset.nodes[node].mesh, len(counts))
                    )
                    add(expression, mesh, b.get("index"), _weight(b.get("weight", 1.0), 1.0))
        return binds
    for group in vrm0_groups(asset):
        if not isinstance(group.get("binds"), list):
            continue
        preset = group.get("presetName")
        expression = VRM0_PRESETS.get(preset.lower()) if isinstance(preset, str) else None
        if expression is None and isinstance(group.get("name"), str):
            expression = vrm_expression(group["name"])
        for b in group["binds"]:
            if isinstance(b, dict):
                # VRM 0.x weights run 0..100.
                add(
                    expression,
                    index_below(b.get("mesh"), len(counts)),
                    b.get("index"),
                    _weight(b.get("weight", 100.0), 100.0),
                )
    return binds


# VRM 1.0: an expression may override the blink, look-at or mouth expressions: they show
# (1 - its amount) of their weight, the amount being its weight ("blend") or 1 while it
# shows at all ("block"); the largest amount of any overriding expression counts.
OVERRIDE_KEYS = {"blink": "overrideBlink", "lookat": "overrideLookAt", "mouth": "overrideMouth"}
OVERRIDDEN = {
    "blink": ("blink", "blinkleft", "blinkright"),
    "lookat": ("lookup", "lookdown", "lookleft", "lookright"),
    "mouth": VOWELS,
}


@dataclass(frozen=True)
class ExpressionRules:
    """A VRM file's rules over its expressions' weights, as three-vrm applies them to morph
    and material binds alike: an ``isBinary`` expression shows fully past half weight and
    not at all below; an overriding one holds back the blink, look-at or mouth group."""

    binary: frozenset[str] = frozenset()
    overrides: tuple[tuple[str, str, bool], ...] = ()  # (expression, group, block?)

    @property
    def changed(self) -> frozenset[str]:
        """The expressions whose weight these rules can change."""
        held = {name for _, group, _ in self.overrides for name in OVERRIDDEN[group]}
        return self.binary | held

    @property
    def read(self) -> frozenset[str]:
        """The expressions whose weight :meth:`apply` reads."""
        return self.changed | {name for name, _, _ in self.overrides}

    def describe(self) -> str | None:
        """One line for ``avatarkit inspect``, or None without rules."""
        held = [f"{name} overrides {group} ({'block' if block else 'blend'})"
                for name, group, block in self.overrides]  # fmt: skip
        binary = [f"{', '.join(sorted(self.binary))} binary"] if self.binary else []
        return "VRM expression rules: " + "; ".join(binary + held) if binary or held else None

    def apply(self, weights: dict[str, float]) -> dict[str, float]:
        """The weights shown, from each expression's own (0..1; at least those of ``read``
        that the file has)."""
        out = {name: (float(w > 0.5) if name in self.binary else w) for name, w in weights.items()}
        amount = dict.fromkeys(OVERRIDDEN, 0.0)
        for name, group, block in self.overrides:
            shown = out.get(name, 0.0)
            amount[group] = max(amount[group], float(shown > 0) if block else shown)
        for group, names in OVERRIDDEN.items():
            for name in names:
                if name in out and amount[group] > 0:
                    out[name] *= 1.0 - amount[group]
                    if name in self.binary and out[name] < 1.0:
                        out[name] = 0.0  # a binary expression overridden at all is gone
        return out


def expression_rules(asset: GltfAsset) -> ExpressionRules:
    """The ``isBinary`` and override rules of a ``VRMC_vrm`` or ``VRM`` extension's preset
    expressions (untrusted JSON: anything else is ignored)."""
    binary: set[str] = set()
    overrides: list[tuple[str, str, bool]] = []
    vrm1 = vrm1_expressions(asset)
    if vrm1 is not None:
        for name, expr in vrm1:
            expression = name_key(name) if name_key(name) in VRM_EXPRESSIONS else None
            if expression is None:
                continue
            if expr.get("isBinary") is True:
                binary.add(expression)
            for held, key in OVERRIDE_KEYS.items():
                if expr.get(key) in ("block", "blend") and len(overrides) < MAX_RULES:
                    overrides.append((expression, held, expr[key] == "block"))
        return ExpressionRules(frozenset(binary), tuple(overrides))
    for group in vrm0_groups(asset):
        preset = group.get("presetName")
        expression = VRM0_PRESETS.get(preset.lower()) if isinstance(preset, str) else None
        if expression is None and isinstance(group.get("name"), str):
            expression = vrm_expression(group["name"])
        if expression is not None and group.get("isBinary") is True:
            binary.add(expression)
    return ExpressionRules(frozenset(binary))


def has_vrm_extension(asset: GltfAsset) -> bool:
    return isinstance(asset.extensions.get("VRMC_vrm"), dict) or isinstance(
        asset.extensions.get("VRM"), dict
    )
