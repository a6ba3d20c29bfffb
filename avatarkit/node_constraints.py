"""VRM 1.0 node constraints (``VRMC_node_constraint`` on a node): it follows another node's
turn from rest (``rotation``), only the part of it about one axis (``roll``: a forearm's
twist bone, a collar under the neck), or turns one axis towards it (``aim``), each by a
weight, as three-vrm applies them.

``AvatarView`` applies them each drawn frame on the render thread, after the head, neck,
eye and jaw bones are posed (a constraint's source is often one of them) and before the
spring bones, in the order sources first. They read and write the model's node transforms.
The extension is untrusted JSON: a constraint with a missing or out-of-range source, an
unknown axis, or one in a cycle is skipped, never raised; at most ``MAX_CONSTRAINTS``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyrr

from avatarkit.conventions import index_below
from engine.transform import (
    Transform,
    quat_between_rows,
    quat_multiply,
    quat_slerp,
    rotation_of,
)

if TYPE_CHECKING:
    from engine import GltfAsset

EXTENSION = "VRMC_node_constraint"
MAX_CONSTRAINTS = 256
_ROLL_AXES = {"X": (1.0, 0.0, 0.0), "Y": (0.0, 1.0, 0.0), "Z": (0.0, 0.0, 1.0)}
_AIM_AXES = {
    f"{sign}{axis}": tuple(s * v for v in _ROLL_AXES[axis])
    for sign, s in (("Positive", 1.0), ("Negative", -1.0))
    for axis in "XYZ"
}


@dataclass(frozen=True)
class NodeConstraint:
    kind: str  # "rotation", "roll" or "aim"
    node: int  # the destination
    source: int
    weight: float  # 0..1
    axis: tuple[float, ...] = (1.0, 0.0, 0.0)  # roll: the axis; aim: the one that aims


def find_constraints(asset: GltfAsset) -> list[NodeConstraint]:
    """The file's constraints, each after the constraints that move its source (and, for
    an aim, its destination's parent); those in a cycle left out."""
    count = len(asset.nodes)
    found: dict[int, NodeConstraint] = {}
    for index, gltf_node in enumerate(asset.nodes):
        ext = gltf_node.extensions.get(EXTENSION)
        body = ext.get("constraint") if isinstance(ext, dict) else None
        if not isinstance(body, dict) or len(found) >= MAX_CONSTRAINTS:
            continue
        for kind in ("rotation", "roll", "aim"):
            spec = body.get(kind)
            if isinstance(spec, dict):
                made = _constraint(kind, index, spec, count)
                if made is not None:
                    found[index] = made
                break
    parent = {c: i for i, n in enumerate(asset.nodes) for c in n.children}
    order: list[NodeConstraint] = []
    state: dict[int, str] = {}  # node -> "visiting" | "done"

    def visit(node: int) -> bool:
        """Place ``node``'s constraint after what it depends on; False in a cycle."""
        if state.get(node) == "done":
            return True
        if state.get(node) == "visiting":
            return False
        state[node] = "visiting"
        c = found[node]
        needs = [c.source] + ([parent[node]] if c.kind == "aim" and node in parent else [])
        ok = True
        for need in needs:  # a constrained node, or one below one, moves with it
            up: int | None = need
            while up is not None and ok:
                if up in found:
                    ok = visit(up)
                up = parent.get(up)
        state[node] = "done"
        if ok:
            order.append(c)
        return ok

    for node in found:
        visit(node)
    return order


def _constraint(kind: str, node: int, spec: dict[str, Any], count: int) -> NodeConstraint | None:
    source = index_below(spec.get("source"), count)
    weight = spec.get("weight", 1.0)
    if source is None or source == node or isinstance(weight, bool):
        return None
    if not isinstance(weight, (int, float)) or not np.isfinite(weight):
        return None
    weight = min(max(float(weight), 0.0), 1.0)
    if kind == "rotation":
        return NodeConstraint(kind, node, source, weight)
    axes, key = (_ROLL_AXES, "rollAxis") if kind == "roll" else (_AIM_AXES, "aimAxis")
    name = spec.get(key)
    axis = axes.get(name) if isinstance(name, str) else None
    return None if axis is None else NodeConstraint(kind, node, source, weight, axis)


class NodeConstraints:
    """One model's constraints and the rest rotations they turn from (render thread)."""

    def __init__(self, nodes: Sequence[Transform], constraints: Sequence[NodeConstraint]) -> None:
        self.constraints = list(constraints)
        for c in self.constraints:
            nodes[c.node].to_trs()  # an explicit matrix would hide the rotation
            nodes[c.source].to_trs()
        self._rest = {i: _unit(nodes[i].rotation) for c in constraints for i in (c.node, c.source)}
        self._parents: dict[int, int] = {}

    @classmethod
    def of(cls, asset: GltfAsset, nodes: Sequence[Transform]) -> NodeConstraints | None:
        """The constraints of ``asset`` on ``nodes`` (a model's editable transforms, at
        rest), or None."""
        found = find_constraints(asset)
        if not found:
            return None
        made = cls(nodes, found)
        made._parents = {c: i for i, n in enumerate(asset.nodes) for c in n.children}
        return made

    def apply(self, nodes: Sequence[Transform], world: Callable[[], np.ndarray]) -> None:
        """Turn each destination as its constraint says. ``world``: the model's node
        matrices as posed so far (``ModelRenderer.world_matrices``; read by aims only)."""
        for c in self.constraints:
            rest = self._rest[c.node]
            source = _unit(nodes[c.source].rotation)
            if c.kind == "rotation":  # the source's turn from its rest, after the rest
                delta = quat_multiply(_inverse(self._rest[c.source]), source)
                target = quat_multiply(rest, delta)
            elif c.kind == "roll":
                target = self._roll(c, rest, source)
            else:
                target = self._aim(c, rest, world())
            nodes[c.node].rotation = quat_slerp(rest, target, c.weight)

    def _roll(self, c: NodeConstraint, rest: np.ndarray, source: np.ndarray) -> np.ndarray:
        """The part of the source's turn about the roll axis, in the destination's frame."""
        to_source = quat_multiply(_inverse(self._rest[c.source]), rest)
        delta = quat_multiply(quat_multiply(_inverse(rest), source), to_source)
        axis = np.array(c.axis)
        turned = pyrr.quaternion.apply_to_vector(delta, axis)
        untwist = _between(turned, axis)
        return quat_multiply(quat_multiply(rest, untwist), delta)

    def _aim(self, c: NodeConstraint, rest: np.ndarray, world: np.ndarray) -> np.ndarray:
        """The destination's axis (as it rests) turned towards the source's position."""
        up = self._parents.get(c.node)
        parent = rotation_of(world[up]) if up is not None else np.array([0.0, 0.0, 0.0, 1.0])
        axis = pyrr.quaternion.apply_to_vector(
            parent, pyrr.quaternion.apply_to_vector(rest, np.array(c.axis))
        )
        toward = world[c.source][:3, 3] - world[c.node][:3, 3]
        length = float(np.linalg.norm(toward))
        if length < 1e-12:
            return rest
        turn = _between(axis, toward / length)
        return quat_multiply(quat_multiply(_inverse(parent), turn), quat_multiply(parent, rest))


def _unit(q: Any) -> np.ndarray:
    q = np.asarray(q, np.float64)
    norm = float(np.linalg.norm(q))
    return q / norm if norm > 0 else np.array([0.0, 0.0, 0.0, 1.0])


def _inverse(q: np.ndarray) -> np.ndarray:
    return np.asarray(pyrr.quaternion.inverse(q), np.float64)


def _between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The shortest turn taking unit ``a`` onto unit ``b``."""
    return quat_between_rows(np.asarray(a, np.float64)[None], np.asarray(b, np.float64)[None])[0]
