"""Map a model's morph targets onto the 52 ARKit channels the motion drives.

Models in the wild name their targets ``eyeBlinkLeft``, ``eyeBlink_L``, ``EyeBlinkLeft``,
``blendShape1.eyeBlink_L`` or ``eye_blink_left``; others follow a different convention:
Oculus/Ready Player Me visemes (``viseme_aa``, plus ``mouthOpen``, ``eyesClosed``, ...) or
VRM expressions (VRM 1.0 ``aa``/``blink``/``happy``, VRM 0.x ``A``/``Blink``/``Joy``), read
from the file's ``VRMC_vrm`` / ``VRM`` extension (expression -> morph target binds) or from
plain target names. :func:`build_map` turns all of it into a :class:`BlendshapeMap`: per
mesh a (targets x FEATURES) matrix over the 52 ARKit channels plus five vowel weights
derived from the articulation (:func:`vowel_weights`), so one ``M @ features`` gives all
target weights of a mesh. A direct ARKit target always wins; convention targets only stand
in for channels the model has no direct target for (so lips do not move twice).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from avatarkit.arkit import ARKIT_INDEX, ARKIT_NAMES, NUM_BLENDSHAPES

if TYPE_CHECKING:
    from engine import GltfAsset

log = logging.getLogger(__name__)

_CANONICAL = {name.lower(): name for name in ARKIT_NAMES}

# -- vowels from the articulation ---------------------------------------------------------
# Avatars with only vowel shapes (VRM aa/ih/ou/ee/oh, viseme_aa/E/I/O/U) need to know which
# vowel the mouth is making, not how far each muscle moved. The ARKit mouth is reduced to
# three articulators (how open, how rounded, how spread) and the vowels sit at the corners
# of that space, like the vowel chart: aa open+neutral, oh open+round, ou closed+round,
# ee open+spread, ih closed+spread. Bilinear weights make a smooth cross-fade between them.
VOWELS: tuple[str, ...] = ("aa", "ih", "ou", "ee", "oh")
FEATURE_NAMES: tuple[str, ...] = (*ARKIT_NAMES, *VOWELS)
FEATURE_INDEX: dict[str, int] = {name: i for i, name in enumerate(FEATURE_NAMES)}
NUM_FEATURES = len(FEATURE_NAMES)
# ARKit values that count as "fully" open / rounded / spread (the Motion Server's widest
# vowel reaches jawOpen 0.62, funnel 0.72, pucker 0.9, stretch 0.35 per side).
JAW_FULL, FUNNEL_FULL, PUCKER_FULL, STRETCH_FULL = 0.6, 0.7, 0.85, 0.35
# Channels that make vowels on an ARKit model: with any of them direct, vowel targets fall
# back to their per-channel mapping (``Convention.fallback``).
VOWEL_SOURCES: tuple[str, ...] = (
    "jawOpen", "mouthFunnel", "mouthPucker", "mouthStretchLeft", "mouthStretchRight",
)  # fmt: skip


def vowel_weights(arkit: np.ndarray) -> np.ndarray:
    """(..., 5) weights of ``VOWELS`` for (..., 52) ARKit vectors, each in 0..1.

    open o = jawOpen / JAW_FULL, round r = max(funnel, pucker) (each over its full value),
    spread s = mean stretch / STRETCH_FULL (r wins over s); then aa = o(1-r)(1-s),
    oh = o r, ou = (1-o) r, ee = o s, ih = (1-o) s. A closed mouth is all zeros.
    """
    w = np.asarray(arkit, np.float32)
    i = ARKIT_INDEX
    o = np.clip(w[..., i["jawOpen"]] / JAW_FULL, 0.0, 1.0)
    r = np.clip(
        np.maximum(w[..., i["mouthFunnel"]] / FUNNEL_FULL, w[..., i["mouthPucker"]] / PUCKER_FULL),
        0.0,
        1.0,
    )
    stretch = (w[..., i["mouthStretchLeft"]] + w[..., i["mouthStretchRight"]]) / (2 * STRETCH_FULL)
    s = np.clip(stretch, 0.0, 1.0) * (1.0 - r)
    return np.stack(
        [o * (1 - r) * (1 - s), (1 - o) * s, (1 - o) * r, o * s, o * r], axis=-1
    ).astype(np.float32)


def features(arkit: np.ndarray) -> np.ndarray:
    """The (..., NUM_FEATURES) vector a map's matrices multiply: ARKit-52 then the vowels."""
    w = np.asarray(arkit, np.float32)
    return np.concatenate([w, vowel_weights(w)], axis=-1)


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
    "happy": Convention(_pair("mouthSmile")),
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


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def arkit_channel(name: str) -> str | None:
    """The ARKit channel a target name stands for, or None.

    >>> (arkit_channel("eyeBlink_L"), arkit_channel("blendShape1.JawOpen"),
    ...  arkit_channel("viseme_aa"))
    ('eyeBlinkLeft', 'jawOpen', None)
    """
    # The whole name first (``browOuterUp.R``), then without a namespace (``blendShape1.x``).
    for base in (name, re.split(r"[.:|]", name)[-1]):
        key = _key(base)
        if key in _CANONICAL:
            return _CANONICAL[key]
        # eyeBlink_L, eyeBlinkL, eye_blink_l: a trailing side letter or word.
        match = _SIDE_RE.match(base.lower())
        if match:
            side = {"l": "left", "r": "right"}.get(match.group(2), match.group(2))
            channel = _CANONICAL.get(_key(match.group(1)) + side)
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
        key = _key(base)
        if key in VRM_EXPRESSIONS:
            return key
        if key in _VROID_NAMES:
            return _VROID_NAMES[key]
    return None


def _convention(name: str) -> tuple[str, Convention] | None:
    """(label, convention) for a plain target name that follows a known convention."""
    if (viseme := viseme_name(name)) is not None:
        return f"viseme {viseme}", VISEMES[viseme]
    key = _key(re.split(r"[.:|]", name)[-1])
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


def _index(value: Any, size: int) -> int | None:
    return (
        value
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < size
        else None
    )


def _weight(value: Any, scale: float) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return min(max(float(value) / scale, 0.0), 1.0)
    return None


def expression_binds(asset: GltfAsset) -> list[ExpressionBind]:
    """Expression -> morph target binds from ``VRMC_vrm`` (VRM 1.0) or ``VRM`` (VRM 0.x).

    The extension is untrusted JSON: anything malformed (wrong types, indices out of
    range) is skipped, never raised."""
    ext = asset.extensions
    counts = [len(m.target_names) for m in asset.meshes]
    binds: list[ExpressionBind] = []

    def add(expression: str | None, mesh: int | None, target: Any, weight: float | None) -> None:
        if expression is None or mesh is None or weight is None:
            return
        t = _index(target, counts[mesh])
        if t is not None:
            binds.append(ExpressionBind(expression, mesh, t, weight))

    vrm1 = ext.get("VRMC_vrm")
    if isinstance(vrm1, dict) and isinstance(vrm1.get("expressions"), dict):
        groups = vrm1["expressions"]
        for kind in ("preset", "custom"):  # custom ones count only if named like a preset
            named = groups.get(kind)
            for name, expr in named.items() if isinstance(named, dict) else ():
                if not (
                    isinstance(name, str)
                    and isinstance(expr, dict)
                    and isinstance(expr.get("morphTargetBinds"), list)
                ):
                    continue
                expression = _key(name) if _key(name) in VRM_EXPRESSIONS else None
                for b in expr["morphTargetBinds"]:
                    if isinstance(b, dict):
                        node = _index(b.get("node"), len(asset.nodes))
                        mesh = None if node is None else _index(asset.nodes[node].mesh, len(counts))
                        add(expression, mesh, b.get("index"), _weight(b.get("weight", 1.0), 1.0))
        return binds
    vrm0 = ext.get("VRM")
    master = vrm0.get("blendShapeMaster") if isinstance(vrm0, dict) else None
    groups0 = master.get("blendShapeGroups") if isinstance(master, dict) else None
    for group in groups0 if isinstance(groups0, list) else ():
        if not (isinstance(group, dict) and isinstance(group.get("binds"), list)):
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
                    _index(b.get("mesh"), len(counts)),
                    b.get("index"),
                    _weight(b.get("weight", 100.0), 100.0),
                )
    return binds


def has_vrm_extension(asset: GltfAsset) -> bool:
    return isinstance(asset.extensions.get("VRMC_vrm"), dict) or isinstance(
        asset.extensions.get("VRM"), dict
    )


# -- the map ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TargetBinding:
    """One morph target driven by an ARKit channel: weight = gain * channel value
    (``via``: the convention or vowel in between, e.g. ``vrm aa``)."""

    mesh: int  # mesh index in the glTF file
    mesh_name: str
    target: int  # morph target index within that mesh
    target_name: str
    gain: float
    via: str = ""


@dataclass
class BlendshapeMap:
    """How a float32[52] ARKit vector drives a model's morph targets."""

    mesh_names: list[str]
    mesh_targets: list[list[str]]  # target names per mesh, in file order
    matrices: dict[int, np.ndarray]  # mesh index -> (targets, NUM_FEATURES) float32
    bindings: dict[str, list[TargetBinding]]  # ARKit channel -> targets it drives
    _by_names: dict[tuple[str, ...], np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def available_channels(self) -> tuple[str, ...]:
        """ARKit channels this model can show, in ARKit order."""
        return tuple(name for name in ARKIT_NAMES if self.bindings.get(name))

    @property
    def missing_channels(self) -> tuple[str, ...]:
        return tuple(name for name in ARKIT_NAMES if not self.bindings.get(name))

    def mesh_weights(self, arkit: np.ndarray) -> dict[int, np.ndarray]:
        """Per mesh index, the target weights for one ARKit vector (clipped to 0..1)."""
        x = features(np.asarray(arkit, dtype=np.float32).reshape(NUM_BLENDSHAPES))
        return {mesh: np.clip(m @ x, 0.0, 1.0) for mesh, m in self.matrices.items()}

    def matrix_for(self, target_names: Sequence[str]) -> np.ndarray:
        """(len(target_names), NUM_FEATURES) matrix for a renderer that keys weights by name.

        A name present on several meshes takes the row of its first driven occurrence.
        Cached per distinct name order, so calling it every frame costs a dict lookup.
        """
        key = tuple(target_names)
        matrix = self._by_names.get(key)
        if matrix is None:
            rows: dict[str, np.ndarray] = {}
            for mesh, m in self.matrices.items():
                for t, name in enumerate(self.mesh_targets[mesh]):
                    if name not in rows and m[t].any():
                        rows[name] = m[t]
            zero = np.zeros(NUM_FEATURES, np.float32)
            matrix = (
                np.stack([rows.get(n, zero) for n in key])
                if key
                else np.zeros((0, NUM_FEATURES), np.float32)
            )
            self._by_names[key] = matrix
        return matrix

    def weights_for(self, arkit: np.ndarray, target_names: Sequence[str]) -> np.ndarray:
        """Target weights in ``target_names`` order for one ARKit vector (clipped to 0..1)."""
        x = features(np.asarray(arkit, dtype=np.float32).reshape(NUM_BLENDSHAPES))
        return np.clip(self.matrix_for(target_names) @ x, 0.0, 1.0)

    def __call__(self, arkit: np.ndarray) -> dict[str, float]:
        """``{target name: weight}`` for every driven target (for name-keyed renderers)."""
        names = self._driven_names()
        return dict(zip(names, self.weights_for(arkit, names).tolist(), strict=True))

    def _driven_names(self) -> tuple[str, ...]:
        names: dict[str, None] = {}
        for mesh, m in self.matrices.items():
            names.update((n, None) for t, n in enumerate(self.mesh_targets[mesh]) if m[t].any())
        return tuple(names)

    def report(self) -> str:
        """A short human-readable summary: what the model can and cannot drive."""
        lines = [f"{len(self.available_channels)}/{NUM_BLENDSHAPES} ARKit channels driven"]
        for name in self.available_channels:
            targets = ", ".join(
                f"{b.mesh_name}:{b.target_name}"
                + ("" if b.gain == 1 else f"x{b.gain:g}")
                + (f" ({b.via})" if b.via else "")
                for b in self.bindings[name]
            )
            lines.append(f"  {name}: {targets}")
        if self.missing_channels:
            lines.append("  missing: " + ", ".join(self.missing_channels))
        return "\n".join(lines)

    def coverage_warning(self, label: str) -> str | None:
        """One line naming the channels that move nothing on this model, or None if all do."""
        missing = self.missing_channels
        if not missing:
            return None
        if len(missing) == NUM_BLENDSHAPES:
            return (
                f"{label}: no morph target follows a known convention "
                "(ARKit-52, Oculus/RPM visemes, VRM); the face will not move"
            )
        return (
            f"{label}: {len(missing)}/{NUM_BLENDSHAPES} ARKit channels move nothing on this model: "
            f"{', '.join(missing)}"
        )


def _sources(gains: dict[str, float]) -> Iterable[tuple[str, float]]:
    """The ARKit channels behind feature gains (a vowel stands for the mouth channels it reads)."""
    for name, gain in gains.items():
        if name in ARKIT_INDEX:
            yield name, gain
        else:
            yield from ((c, gain) for c in VOWEL_SOURCES)


def build_map(
    meshes: list[tuple[str, list[str]]], binds: Sequence[ExpressionBind] | None = None
) -> BlendshapeMap:
    """Build the map from (mesh name, target names) per mesh, in file order, plus the binds
    of a VRM extension (:func:`expression_binds`). With binds, VRM expressions come only
    from them; otherwise also from plain target names."""
    # Per mesh, per target: (label, convention, weight) it stands for.
    found: dict[tuple[int, int], list[tuple[str, Convention, float]]] = {}
    direct: dict[tuple[int, int], str] = {}
    for m, (_, names) in enumerate(meshes):
        for t, target_name in enumerate(names):
            if (channel := arkit_channel(target_name)) is not None:
                direct[m, t] = channel
            elif (named := _convention(target_name)) is not None and not (
                binds and named[0].startswith("vrm ")
            ):
                found.setdefault((m, t), []).append((named[0], named[1], 1.0))
    bound: set[tuple[int, int]] = set()
    for b in binds or ():
        if (b.mesh, b.target) in direct:
            continue
        if (b.mesh, b.target) not in bound:  # the file's binds replace what the name suggests
            bound.add((b.mesh, b.target))
            found[b.mesh, b.target] = []
        found[b.mesh, b.target].append(
            (f"vrm {b.expression}", VRM_EXPRESSIONS[b.expression], b.weight)
        )
    covered = set(direct.values())
    labels = {label for entries in found.values() for label, _, _ in entries}
    # Per-side targets (VRM blinkLeft/Right) cover their channel, so a both-eyes "blink"
    # does not close the eyes a second time; vowel shapes open the mouth, so RPM's
    # mouthOpen (a plain jaw drop) only stands in when the model has none.
    side_covered = {
        c
        for label in labels
        if label.startswith("vrm blink") and label != "vrm blink"
        for c in VRM_EXPRESSIONS[label[4:]].gains
    }
    has_vowels = any(label.split()[-1] in (*VOWELS, "e", "i", "o", "u") for label in labels)
    mouth_direct = any(c in covered for c in VOWEL_SOURCES)

    matrices: dict[int, np.ndarray] = {}
    bindings: dict[str, list[TargetBinding]] = {name: [] for name in ARKIT_NAMES}
    for mesh_index, (mesh_name, names) in enumerate(meshes):
        if not names:
            continue
        mat = np.zeros((len(names), NUM_FEATURES), np.float32)
        for t, target_name in enumerate(names):
            if (mesh_index, t) in direct:
                channel = direct[mesh_index, t]
                mat[t, ARKIT_INDEX[channel]] = 1.0
                bindings[channel].append(TargetBinding(mesh_index, mesh_name, t, target_name, 1.0))
                continue
            for label, conv, weight in found.get((mesh_index, t), ()):
                gains = conv.fallback if conv.fallback is not None and mouth_direct else conv.gains
                skip = covered | (side_covered if label == "vrm blink" else set())
                if label == "rpm mouthopen" and has_vowels:
                    skip = skip | {"jawOpen"}
                gains = {c: g for c, g in gains.items() if c not in skip}
                for name, gain in gains.items():
                    mat[t, FEATURE_INDEX[name]] += weight * gain
                for channel, gain in _sources(gains):
                    bindings[channel].append(
                        TargetBinding(mesh_index, mesh_name, t, target_name, weight * gain, label)
                    )
        if mat.any():
            matrices[mesh_index] = mat
    return BlendshapeMap(
        [name for name, _ in meshes], [list(names) for _, names in meshes], matrices, bindings
    )


def mesh_target_names(asset: GltfAsset) -> list[tuple[str, list[str]]]:
    """(mesh name, morph target names) per mesh of a parsed glTF, in file order."""
    return [(mesh.name, list(mesh.target_names)) for mesh in asset.meshes]


def map_asset(asset: GltfAsset) -> BlendshapeMap:
    """The map of a parsed glTF: its target names and, where present, its VRM expressions."""
    return build_map(
        mesh_target_names(asset), expression_binds(asset) if has_vrm_extension(asset) else None
    )
