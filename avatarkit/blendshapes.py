"""Map a model's morph targets onto the 52 ARKit channels the motion drives.

Which convention each target name follows (ARKit spellings, Oculus/Ready Player Me
visemes, VRM expressions by name or by the file's ``VRMC_vrm`` / ``VRM`` binds) is
``conventions.py``'s job. :func:`build_map` turns what it finds into a
:class:`BlendshapeMap`: per mesh a (targets x FEATURES) matrix over the 52 ARKit channels
plus five vowel weights derived from the articulation (:func:`vowel_weights`), so one
``M @ features`` gives all target weights of a mesh. A direct ARKit target always wins;
convention targets only stand in for channels the model has no direct target for (so
lips do not move twice).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from avatarkit.arkit import ARKIT_INDEX, ARKIT_NAMES, NUM_BLENDSHAPES
from avatarkit.conventions import (
    VOWELS,
    VRM_EXPRESSIONS,
    Convention,
    ExpressionBind,
    ExpressionRules,
    arkit_channel,
    convention_for,
    expression_binds,
    expression_rules,
    has_vrm_extension,
)
from avatarkit.motion.face import SPEECH_SMILE

if TYPE_CHECKING:
    from engine import GltfAsset

log = logging.getLogger(__name__)

# -- vowels from the articulation ---------------------------------------------------------
# Avatars with only vowel shapes (VRM aa/ih/ou/ee/oh, viseme_aa/E/I/O/U) need to know which
# vowel the mouth is making, not how far each muscle moved. The ARKit mouth is reduced to
# three articulators (how open, how rounded, how spread) and the vowels sit at the corners
# of that space, like the vowel chart: aa open+neutral, oh open+round, ou closed+round,
# ee open+spread, ih closed+spread. Bilinear weights make a smooth cross-fade between them.
FEATURE_NAMES: tuple[str, ...] = (*ARKIT_NAMES, *VOWELS, "happy")
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
# The ARKit channels each derived feature reads.
DERIVED_SOURCES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(VOWELS, VOWEL_SOURCES),
    "happy": ("mouthSmileLeft", "mouthSmileRight"),
}


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


def happy_weight(arkit: np.ndarray) -> np.ndarray:
    """(...) weight of a whole-face "happy" for (..., 52) ARKit vectors: the mean smile
    beyond what speech makes (``SPEECH_SMILE``), scaled to 0..1."""
    w = np.asarray(arkit, np.float32)
    i = ARKIT_INDEX
    smile = (w[..., i["mouthSmileLeft"]] + w[..., i["mouthSmileRight"]]) / 2
    line = np.float32(SPEECH_SMILE)  # in float32, so a smile right at the line shows none
    return np.clip((smile - line) / (1 - line), 0.0, 1.0).astype(np.float32)


def features(arkit: np.ndarray) -> np.ndarray:
    """The (..., NUM_FEATURES) vector a map's matrices multiply: ARKit-52, the vowels, then
    "happy"."""
    w = np.asarray(arkit, np.float32)
    return np.concatenate([w, vowel_weights(w), happy_weight(w)[..., None]], axis=-1)


class ExpressionWeights:
    """VRM expressions' weights from a frame's features: each one's convention gains (summed,
    clipped to 0..1), then the file's ``ExpressionRules``."""

    def __init__(self, names: Iterable[str], rules: ExpressionRules) -> None:
        self.rules = rules
        self.names = tuple(sorted(set(names) | rules.read))
        self._gains = np.zeros((len(self.names), NUM_FEATURES), np.float32)
        for row, name in enumerate(self.names):
            for feature, gain in VRM_EXPRESSIONS[name].gains.items():
                self._gains[row, FEATURE_INDEX[feature]] += gain

    def own(self, x: np.ndarray) -> np.ndarray:
        """Each of ``names``' weight before the rules, for a features vector."""
        return np.clip(self._gains @ x, 0.0, 1.0)

    def __call__(self, x: np.ndarray) -> dict[str, float]:
        """Each of ``names``' weight as shown, for a features vector."""
        return self.rules.apply(dict(zip(self.names, self.own(x).tolist(), strict=True)))


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
    # A VRM file's isBinary/override rules, and the share of ``matrices`` each expression
    # they change makes: expression -> mesh index -> (targets, NUM_FEATURES).
    rules: ExpressionRules = field(default_factory=ExpressionRules)
    parts: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)
    _by_names: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray | None]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        self._ruled = tuple(sorted(self.parts))
        self._expressions = ExpressionWeights(self._ruled, self.rules) if self._ruled else None

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
        scale = self._rule_scales(x)
        out = {}
        for mesh, m in self.matrices.items():
            w = m @ x
            for e, s in zip(self._ruled, scale, strict=True):
                if mesh in self.parts[e]:
                    w += s * (self.parts[e][mesh] @ x)
            out[mesh] = np.clip(w, 0.0, 1.0)
        return out

    def matrix_for(self, target_names: Sequence[str]) -> np.ndarray:
        """(len(target_names), NUM_FEATURES) matrix for a renderer that keys weights by name
        (a VRM file's rules aside: :meth:`weights_for` applies them).

        A name present on several meshes takes the row of its first driven occurrence.
        Cached per distinct name order, so calling it every frame costs a dict lookup.
        """
        return self._rows_for(tuple(target_names))[0]

    def weights_for(self, arkit: np.ndarray, target_names: Sequence[str]) -> np.ndarray:
        """Target weights in ``target_names`` order for one ARKit vector (clipped to 0..1)."""
        x = features(np.asarray(arkit, dtype=np.float32).reshape(NUM_BLENDSHAPES))
        matrix, parts = self._rows_for(tuple(target_names))
        w = matrix @ x
        if parts is not None:
            w += self._rule_scales(x) @ (parts @ x)
        return np.clip(w, 0.0, 1.0)

    def _rows_for(self, key: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray | None]:
        """The name-keyed matrix, and its ruled expressions' shares (E, names, features)."""
        cached = self._by_names.get(key)
        if cached is None:
            rows: dict[str, tuple[int, int]] = {}
            for mesh, m in self.matrices.items():
                for t, name in enumerate(self.mesh_targets[mesh]):
                    if name not in rows and m[t].any():
                        rows[name] = (mesh, t)

            def stack(matrices: dict[int, np.ndarray]) -> np.ndarray:
                out = np.zeros((len(key), NUM_FEATURES), np.float32)
                for i, name in enumerate(key):
                    if name in rows and rows[name][0] in matrices:
                        out[i] = matrices[rows[name][0]][rows[name][1]]
                return out

            parts = np.stack([stack(self.parts[e]) for e in self._ruled]) if self._ruled else None
            cached = self._by_names[key] = (stack(self.matrices), parts)
        return cached

    def _rule_scales(self, x: np.ndarray) -> np.ndarray:
        """Per ruled expression, what its share of the weights gains under the file's rules
        (shown / own - 1: -1 where a rule hides it)."""
        if self._expressions is None:
            return np.zeros(0, np.float32)
        own = dict(zip(self._expressions.names, self._expressions.own(x).tolist(), strict=True))
        shown = self.rules.apply(own)
        return np.array(
            [shown[e] / own[e] - 1.0 if own[e] > 1e-6 else -1.0 for e in self._ruled], np.float32
        )

    def __call__(self, arkit: np.ndarray) -> dict[str, float]:
        """``{target name: weight}`` for every driven target (for name-keyed renderers)."""
        names = self._driven_names()
        return dict(zip(names, self.weights_for(arkit, names).tolist(), strict=True))

    def _driven_names(self) -> tuple[str, ...]:
        names: dict[str, None] = {}
        for mesh, m in self.matrices.items():
            names.update((n, None) for t, n in enumerate(self.mesh_targets[mesh]) if m[t].any())
        return tuple(names)

    def report(self, by_bones: Collection[str] = ()) -> str:
        """A short human-readable summary: what the model can and cannot drive.
        ``by_bones``: channels the model's bones show instead (``bones.channels_by_bones``)."""
        lines = [f"{len(self.available_channels)}/{NUM_BLENDSHAPES} ARKit channels driven"]
        for name in self.available_channels:
            targets = ", ".join(
                f"{b.mesh_name}:{b.target_name}"
                + ("" if b.gain == 1 else f"x{b.gain:g}")
                + (f" ({b.via})" if b.via else "")
                for b in self.bindings[name]
            )
            lines.append(f"  {name}: {targets}")
        turned = [c for c in self.missing_channels if c in by_bones]
        missing = [c for c in self.missing_channels if c not in by_bones]
        eyes = [c for c in turned if c != "jawOpen"]
        if eyes:
            lines.append("  by eye bones: " + ", ".join(eyes))
        if "jawOpen" in turned:
            lines.append("  by the jaw bone: jawOpen")
        if missing:
            lines.append("  missing: " + ", ".join(missing))
        return "\n".join(lines)

    def coverage_warning(
        self, label: str, by_bones: Collection[str] = (), by_materials: Collection[str] = ()
    ) -> str | None:
        """One line naming the channels that move nothing on this model (``by_bones``: those
        its bones show, left out; ``by_materials``: VRM expressions drawn by changing
        materials), or None if all do."""
        if len(self.missing_channels) == NUM_BLENDSHAPES:
            shown = []
            if by_materials:
                shown.append(f"the materials of VRM expressions {', '.join(by_materials)} change")
            if "jawOpen" in by_bones:
                shown.append("the jaw bone opens the mouth")
            if any(c.startswith("eyeLook") for c in by_bones):
                shown.append("the eye bones follow the gaze")
            moves = "only " + " and ".join(shown) if shown else "the face will not move"
            return (
                f"{label}: no morph target follows a known convention "
                f"(ARKit-52, Oculus/RPM visemes, VRM); {moves}"
            )
        missing = [c for c in self.missing_channels if c not in by_bones]
        if not missing:
            return None
        return (
            f"{label}: {len(missing)}/{NUM_BLENDSHAPES} ARKit channels move nothing on this model: "
            f"{', '.join(missing)}"
        )


def _sources(gains: dict[str, float]) -> Iterable[tuple[str, float]]:
    """The ARKit channels behind feature gains (a derived feature stands for the channels it
    reads)."""
    for name, gain in gains.items():
        yield from ((c, gain) for c in DERIVED_SOURCES.get(name, (name,)))


def build_map(
    meshes: list[tuple[str, list[str]]],
    binds: Sequence[ExpressionBind] | None = None,
    rules: ExpressionRules | None = None,
) -> BlendshapeMap:
    """Build the map from (mesh name, target names) per mesh, in file order, plus the binds
    of a VRM extension (:func:`expression_binds`) and its ``rules``. With binds, VRM
    expressions come only from them; otherwise also from plain target names."""
    rules = rules or ExpressionRules()
    # Per mesh, per target: (label, convention, weight) it stands for.
    found: dict[tuple[int, int], list[tuple[str, Convention, float]]] = {}
    direct: dict[tuple[int, int], str] = {}
    for m, (_, names) in enumerate(meshes):
        for t, target_name in enumerate(names):
            if (channel := arkit_channel(target_name)) is not None:
                direct[m, t] = channel
            elif (named := convention_for(target_name)) is not None and not (
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
    parts: dict[str, dict[int, np.ndarray]] = {}
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
                gains = {
                    c: g
                    for c, g in gains.items()
                    if c not in skip and not skip.intersection(DERIVED_SOURCES.get(c, ()))
                }
                ruled = label[4:] if label.startswith("vrm ") else None
                ruled = ruled if ruled in rules.changed else None
                for name, gain in gains.items():
                    mat[t, FEATURE_INDEX[name]] += weight * gain
                    if ruled is not None:
                        share = parts.setdefault(ruled, {}).setdefault(
                            mesh_index, np.zeros_like(mat)
                        )
                        share[t, FEATURE_INDEX[name]] += weight * gain
                for channel, gain in _sources(gains):
                    bindings[channel].append(
                        TargetBinding(mesh_index, mesh_name, t, target_name, weight * gain, label)
                    )
        if mat.any():
            matrices[mesh_index] = mat
    return BlendshapeMap(
        [name for name, _ in meshes],
        [list(names) for _, names in meshes],
        matrices,
        bindings,
        rules,
        {e: {m: p for m, p in shares.items() if m in matrices} for e, shares in parts.items()},
    )


def mesh_target_names(asset: GltfAsset) -> list[tuple[str, list[str]]]:
    """(mesh name, morph target names) per mesh of a parsed glTF, in file order."""
    return [(mesh.name, list(mesh.target_names)) for mesh in asset.meshes]


def map_asset(asset: GltfAsset) -> BlendshapeMap:
    """The map of a parsed glTF: its target names and, where present, its VRM expressions."""
    if not has_vrm_extension(asset):
        return build_map(mesh_target_names(asset))
    return build_map(mesh_target_names(asset), expression_binds(asset), expression_rules(asset))
