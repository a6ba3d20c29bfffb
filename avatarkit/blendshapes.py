"""Map a model's morph-target names onto the 52 ARKit channels.

Models in the wild name their targets ``eyeBlinkLeft``, ``eyeBlink_L``, ``EyeBlinkLeft``,
``blendShape1.eyeBlink_L`` or ``eye_blink_left``; Ready Player Me style avatars add the
Oculus ``viseme_*`` set. :func:`build_map` turns the names of every mesh into a
:class:`BlendshapeMap`: per mesh a (targets x 52) matrix, so one ``M @ arkit`` gives all
target weights of that mesh, vectorised. A direct ARKit target always wins; visemes only
drive channels the model has no direct target for (so lips do not move twice).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from avatarkit.arkit import ARKIT_INDEX, ARKIT_NAMES, NUM_BLENDSHAPES

if TYPE_CHECKING:
    from engine import GltfAsset

_CANONICAL = {name.lower(): name for name in ARKIT_NAMES}

# Oculus/OVR lip-sync visemes, each approximated by the ARKit channels that make that
# mouth shape. A viseme target's weight is the sum over its channels (clipped to 0..1).
VISEME_CHANNELS: dict[str, dict[str, float]] = {
    "sil": {},
    "pp": {"mouthClose": 1.0, "mouthPressLeft": 0.5, "mouthPressRight": 0.5},
    "ff": {"mouthRollLower": 1.0, "mouthUpperUpLeft": 0.3, "mouthUpperUpRight": 0.3},
    "th": {"tongueOut": 1.0},
    "dd": {"mouthShrugUpper": 0.8},
    "kk": {"mouthStretchLeft": 0.5, "mouthStretchRight": 0.5},
    "ch": {"mouthShrugLower": 0.8, "mouthShrugUpper": 0.4},
    "ss": {"mouthSmileLeft": 0.6, "mouthSmileRight": 0.6},
    "nn": {"mouthLowerDownLeft": 0.6, "mouthLowerDownRight": 0.6},
    "rr": {"mouthRollUpper": 0.8},
    "aa": {"jawOpen": 1.0},
    "e": {"mouthDimpleLeft": 0.8, "mouthDimpleRight": 0.8},
    "i": {"mouthUpperUpLeft": 0.6, "mouthUpperUpRight": 0.6},
    "o": {"mouthFunnel": 1.0},
    "u": {"mouthPucker": 1.0},
}
_VISEME_RE = re.compile(r"^(?:.*[.:|])?viseme[_\-\s]?([a-z]+)$", re.IGNORECASE)
_SIDE_RE = re.compile(r"^(.*?)(?:[_.\-\s]?(left|right|l|r))$")


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def arkit_channel(name: str) -> str | None:
    """The ARKit channel a target name stands for, or None.

    >>> arkit_channel("eyeBlink_L"), arkit_channel("blendShape1.JawOpen"), arkit_channel("viseme_aa")
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
    if match and match.group(1).lower() in VISEME_CHANNELS:
        return match.group(1).lower()
    return None


@dataclass(frozen=True)
class TargetBinding:
    """One morph target driven by an ARKit channel: weight = gain * channel value."""

    mesh: int  # mesh index in the glTF file
    mesh_name: str
    target: int  # morph target index within that mesh
    target_name: str
    gain: float


@dataclass
class BlendshapeMap:
    """How a float32[52] ARKit vector drives a model's morph targets."""

    mesh_names: list[str]
    mesh_targets: list[list[str]]  # target names per mesh, in file order
    matrices: dict[int, np.ndarray]  # mesh index -> (targets, 52) float32
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
        w = np.asarray(arkit, dtype=np.float32).reshape(NUM_BLENDSHAPES)
        return {mesh: np.clip(m @ w, 0.0, 1.0) for mesh, m in self.matrices.items()}

    def matrix_for(self, target_names: Sequence[str]) -> np.ndarray:
        """(len(target_names), 52) matrix for a renderer that keys weights by target name.

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
            zero = np.zeros(NUM_BLENDSHAPES, np.float32)
            matrix = np.stack([rows.get(n, zero) for n in key]) if key else np.zeros((0, NUM_BLENDSHAPES), np.float32)
            self._by_names[key] = matrix
        return matrix

    def weights_for(self, arkit: np.ndarray, target_names: Sequence[str]) -> np.ndarray:
        """Target weights in ``target_names`` order for one ARKit vector (clipped to 0..1)."""
        w = np.asarray(arkit, dtype=np.float32).reshape(NUM_BLENDSHAPES)
        return np.clip(self.matrix_for(target_names) @ w, 0.0, 1.0)

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
            targets = ", ".join(f"{b.mesh_name}:{b.target_name}" + ("" if b.gain == 1 else f"x{b.gain:g}") for b in self.bindings[name])
            lines.append(f"  {name}: {targets}")
        if self.missing_channels:
            lines.append("  missing: " + ", ".join(self.missing_channels))
        return "\n".join(lines)


def build_map(meshes: list[tuple[str, list[str]]]) -> BlendshapeMap:
    """Build the map from (mesh name, target names) per mesh, in file order."""
    direct: set[str] = set()
    for _, names in meshes:
        direct.update(c for c in map(arkit_channel, names) if c)
    matrices: dict[int, np.ndarray] = {}
    bindings: dict[str, list[TargetBinding]] = {name: [] for name in ARKIT_NAMES}
    for mesh_index, (mesh_name, names) in enumerate(meshes):
        if not names:
            continue
        m = np.zeros((len(names), NUM_BLENDSHAPES), np.float32)
        for t, target_name in enumerate(names):
            channel = arkit_channel(target_name)
            if channel is not None:
                gains = {channel: 1.0}
            elif (viseme := viseme_name(target_name)) is not None:
                gains = {c: g for c, g in VISEME_CHANNELS[viseme].items() if c not in direct}
            else:
                continue
            for c, gain in gains.items():
                m[t, ARKIT_INDEX[c]] = gain
                bindings[c].append(TargetBinding(mesh_index, mesh_name, t, target_name, gain))
        if m.any():
            matrices[mesh_index] = m
    return BlendshapeMap([name for name, _ in meshes], [list(names) for _, names in meshes], matrices, bindings)


def mesh_target_names(asset: GltfAsset) -> list[tuple[str, list[str]]]:
    """(mesh name, morph target names) per mesh of a parsed glTF, in file order."""
    return [(mesh.name, list(mesh.target_names)) for mesh in asset.meshes]
