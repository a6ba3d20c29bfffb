"""Spring bones: hair, ears and cloth that swing as the head moves (VRM ``VRMC_springBone``
1.0 and VRM 0.x ``secondaryAnimation``), simulated as three-vrm simulates them.

Each joint's tail (where its child bone starts) is a point on a rod of the bone's length.
Per frame it keeps its velocity less the joint's drag, is pulled towards the bone's rest
direction (stiffness) and along its gravity, is pushed out of the avatar's collider
spheres and capsules, and the bone is turned to point at it.

``AvatarView`` steps it each drawn frame on the render thread, after the head, neck and
eye bones are posed and before the model is drawn: it reads the model's node matrices and
writes the spring joints' local rotations. The tails live in the scene's space, so an
avatar moved through the scene swings its hair; a spring with a ``center`` node keeps its
tails' inertia in that node's space instead, as three-vrm does (hair that moves with the
hips, say, and swings only as the head turns under them). Joints are stepped a level at
a time (a joint after its parent), each level in one batch of numpy calls: a VRoid
model's 100-200 joints cost about as much Python as their chains are deep.

The extension is untrusted JSON: malformed springs, joints and colliders are skipped,
never raised, and at most ``MAX_JOINTS`` joints and ``MAX_COLLIDERS`` colliders are read;
joints more than ``MAX_DEPTH`` springs deep stay at rest.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from avatarkit.conventions import index_below, number_list
from engine.skeleton import Skeleton, trs_matrices
from engine.transform import Transform, quat_between_rows, quat_multiply_rows

if TYPE_CHECKING:
    from engine import GltfAsset

MAX_JOINTS = 1024
MAX_COLLIDERS = 256
MAX_DEPTH = 32  # levels of joints stepped (a frame costs one batch a level); deeper ones stay
MAX_COORD = 1e3  # an offset or direction component past this is malformed
MAX_STEP_S = 0.1  # a longer frame (a hitch, a resume) is stepped as this long
TELEPORT = 1.0  # the model moved this far (scene units) in one step: placed, not moved
LEAF_TAIL = 0.07  # a VRM 0.x chain's last bone: a tail this far along it (local units)
_LIMITS = {  # per setting: default, lowest, highest
    "hitRadius": (0.0, 0.0, 1e3),
    "stiffness": (1.0, 0.0, 1e3),
    "gravityPower": (0.0, 0.0, 1e3),
    "dragForce": (0.4, 0.0, 1.0),
}


@dataclass(frozen=True)
class SpringJoint:
    """One simulated bone: its node, the node its tail follows (None: a virtual tail along
    the bone) and how it moves."""

    node: int
    child: int | None
    hit_radius: float
    stiffness: float
    gravity_power: float
    gravity_dir: tuple[float, ...]  # asset space
    drag: float
    colliders: tuple[int, ...]  # indices into the colliders
    center: int | None = None  # the node whose space the tail's inertia lives in


@dataclass(frozen=True)
class SpringCollider:
    """A sphere (``end`` None) or a capsule from ``offset`` to ``end``, in its node's space."""

    node: int
    offset: tuple[float, ...]
    radius: float
    end: tuple[float, ...] | None = None


def find_springs(asset: GltfAsset) -> tuple[list[SpringJoint], list[SpringCollider]]:
    """The spring joints and colliders of a ``VRMC_springBone`` or VRM 0.x
    ``secondaryAnimation`` extension (none without either)."""
    ext = asset.extensions.get("VRMC_springBone")
    if isinstance(ext, dict):
        return _vrm1(ext, len(asset.nodes))
    vrm0 = asset.extensions.get("VRM")
    secondary = vrm0.get("secondaryAnimation") if isinstance(vrm0, dict) else None
    if isinstance(secondary, dict):
        return _vrm0(secondary, asset)
    return [], []


def _setting(source: dict[str, Any], key: str, name: str | None = None) -> float:
    default, low, high = _LIMITS[name or key]
    value = source.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        return default
    return min(max(float(value), low), high)


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every entry of a JSON list, an empty object for one that is not an object (indices
    into the list stay right)."""
    return (v if isinstance(v, dict) else {} for v in _list(value))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _vrm1(ext: dict[str, Any], count: int) -> tuple[list[SpringJoint], list[SpringCollider]]:
    colliders: list[SpringCollider] = []
    slots: list[int | None] = []  # the file's collider index -> ours (None: malformed)
    for c in _objects(ext.get("colliders")):
        node = index_below(c.get("node"), count)
        shape = c.get("shape")
        shape = shape if isinstance(shape, dict) else {}
        sphere, capsule = shape.get("sphere"), shape.get("capsule")
        is_sphere = isinstance(sphere, dict)
        kind: Any = sphere if is_sphere else capsule
        collider = None
        if node is not None and isinstance(kind, dict) and len(colliders) < MAX_COLLIDERS:
            offset = _point(kind.get("offset"), (0.0, 0.0, 0.0))
            radius = _radius(kind.get("radius"))
            end = None if is_sphere else _point(kind.get("tail"), (0.0, 0.0, 0.0))
            if offset is not None and radius is not None and (is_sphere or end is not None):
                collider = SpringCollider(node, offset, radius, end)
        slots.append(len(colliders) if collider is not None else None)
        if collider is not None:
            colliders.append(collider)
    groups = [
        tuple(s for i in _list(g.get("colliders")) if (s := _slot(slots, i)) is not None)
        for g in _objects(ext.get("colliderGroups"))
    ]
    joints: list[SpringJoint] = []
    taken: set[int] = set()
    for spring in _objects(ext.get("springs")):
        touched = _touched(groups, spring)
        center = index_below(spring.get("center"), count)
        chain = list(_objects(spring.get("joints")))
        # Each joint's tail is the next joint; the last one is only a tail.
        for bone, tail in zip(chain, chain[1:], strict=False):
            node, child = index_below(bone.get("node"), count), index_below(tail.get("node"), count)
            if node is None or child is None or node in taken or len(joints) >= MAX_JOINTS:
                continue
            direction = _point(bone.get("gravityDir"), (0.0, -1.0, 0.0))
            taken.add(node)
            joints.append(
                _joint(bone, node, child, direction or (0.0, -1.0, 0.0), touched, center=center)
            )
    return joints, colliders


def _vrm0(
    secondary: dict[str, Any], asset: GltfAsset
) -> tuple[list[SpringJoint], list[SpringCollider]]:
    count = len(asset.nodes)
    colliders: list[SpringCollider] = []
    groups: list[tuple[int, ...]] = []
    for g in _objects(secondary.get("colliderGroups")):
        node = index_below(g.get("node"), count)
        members = []
        for c in _objects(g.get("colliders")):
            offset = _xyz(c.get("offset"), (0.0, 0.0, 0.0))
            radius = _radius(c.get("radius"))
            if node is None or offset is None or radius is None or len(colliders) >= MAX_COLLIDERS:
                continue
            x, y, z = offset
            members.append(len(colliders))
            colliders.append(SpringCollider(node, (x, y, -z), radius))  # Unity's z, turned
        groups.append(tuple(members))
    joints: list[SpringJoint] = []
    taken: set[int] = set()
    for group in _objects(secondary.get("boneGroups")):
        touched = _touched(groups, group)
        direction = _xyz(group.get("gravityDir"), (0.0, -1.0, 0.0)) or (0.0, -1.0, 0.0)
        center = index_below(group.get("center"), count)  # UniVRM writes -1 for none
        for root in _list(group.get("bones")):
            stack = [] if index_below(root, count) is None else [root]
            while stack:  # the root and all below it, each bone's tail its first child
                node = stack.pop()
                children = asset.nodes[node].children
                if node not in taken and len(joints) < MAX_JOINTS:
                    taken.add(node)
                    first = children[0] if children else None
                    joints.append(
                        _joint(group, node, first, direction, touched, "stiffiness", center)
                    )
                stack.extend(reversed(children))
    return joints, colliders


def _joint(
    source: dict[str, Any],
    node: int,
    child: int | None,
    direction: tuple[float, ...],
    colliders: tuple[int, ...],
    stiffness: str = "stiffness",
    center: int | None = None,
) -> SpringJoint:
    return SpringJoint(
        node,
        child,
        _setting(source, "hitRadius"),
        _setting(source, stiffness, "stiffness"),
        _setting(source, "gravityPower"),
        direction,
        _setting(source, "dragForce"),
        colliders,
        center,
    )


def _radius(value: Any) -> float | None:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        return None
    return min(max(float(value), 0.0), 1e3)


def _xyz(value: Any, default: tuple[float, ...]) -> tuple[float, ...] | None:
    """A VRM 0.x ``{x, y, z}`` object."""
    if value is None:
        return default
    if not isinstance(value, dict):
        return None
    return _point([value.get(k, 0.0) for k in "xyz"], default)


def _point(value: Any, default: tuple[float, ...]) -> tuple[float, ...] | None:
    """Three finite numbers no larger than ``MAX_COORD`` (an offset, a direction), the
    default when absent, else None."""
    xyz = number_list(value, 3, default)
    return xyz if xyz is not None and max(map(abs, xyz)) <= MAX_COORD else None


def _slot(slots: list[int | None], index: Any) -> int | None:
    i = index_below(index, len(slots))
    return None if i is None else slots[i]


def _touched(groups: list[tuple[int, ...]], source: dict[str, Any]) -> tuple[int, ...]:
    """The colliders of the collider groups ``source`` names."""
    picked = (index_below(g, len(groups)) for g in _list(source.get("colliderGroups")))
    return tuple(sorted({c for i in picked if i is not None for c in groups[i]}))


class SpringBones:
    """The spring joints of one model and their tails' state (render thread)."""

    def __init__(
        self,
        skeleton: Skeleton,
        nodes: Sequence[Transform],
        joints: Sequence[SpringJoint],
        colliders: Sequence[SpringCollider] = (),
    ) -> None:
        for j in joints:
            nodes[j.node].to_trs()  # an explicit matrix would hide the rotation
        world = skeleton.world(nodes)
        kept, tails = [], []
        for j in joints:  # the tail in the bone's own space at rest
            if j.child is not None:
                tail = _solve(world[j.node][None], world[j.child][None, :, 3:])[0, :3, 0]
            else:
                t = np.asarray(nodes[j.node].translation, np.float64)
                tail = t / max(float(np.linalg.norm(t)), 1e-12) * LEAF_TAIL
            if 1e-9 < np.linalg.norm(tail) < np.inf:  # a zero-length bone points nowhere
                kept.append(j)
                tails.append(tail)
        self.joints, self.colliders = kept, list(colliders)
        rest = [nodes[j.node] for j in kept]
        self._t = np.array([n.translation for n in rest], np.float64).reshape(-1, 3)
        q = np.array([n.rotation for n in rest], np.float64).reshape(-1, 4)
        self._q = q / np.linalg.norm(q, axis=1, keepdims=True)
        self._s = np.array([n.scale for n in rest], np.float64).reshape(-1, 3)
        self._rest = trs_matrices(self._t, self._q, self._s)
        self._tail = np.array(tails, np.float64).reshape(-1, 3)
        self._axis = self._tail / np.linalg.norm(self._tail, axis=1, keepdims=True)
        self._hit = np.array([j.hit_radius for j in kept], np.float64)
        self._stiffness = np.array([j.stiffness for j in kept], np.float64)[:, None]
        self._gravity = np.array(
            [np.multiply(j.gravity_dir, j.gravity_power) for j in kept], np.float64
        ).reshape(-1, 3)
        self._keep = 1.0 - np.array([j.drag for j in kept], np.float64)[:, None]
        centers = np.array([-1 if j.center is None else j.center for j in kept], np.intp)
        self._centered = np.flatnonzero(centers >= 0)
        self._centers = centers[self._centered]
        self._levels = self._plan(skeleton.parent)
        self._current: np.ndarray | None = None  # each tail now and a step ago (scene space)
        self._where: np.ndarray | None = None  # the model's place at the last step
        self._previous = np.zeros((len(kept), 3))

    @classmethod
    def of(cls, asset: GltfAsset, nodes: Sequence[Transform]) -> SpringBones | None:
        """The springs of ``asset`` on ``nodes`` (a model's editable transforms, at rest),
        or None."""
        joints, colliders = find_springs(asset)
        springs = cls(Skeleton(asset), nodes, joints, colliders) if joints else None
        return springs if springs is not None and springs.joints else None

    def _plan(self, parent: np.ndarray) -> list[_Level]:
        """The joints by level, each with where its parent's matrix comes from."""
        index = {j.node: i for i, j in enumerate(self.joints)}
        anchor = np.full(len(self.joints), -1, np.intp)  # nearest spring ancestor
        level = np.zeros(len(self.joints), np.intp)
        for i in sorted(range(len(self.joints)), key=lambda i: _depth(parent, self.joints[i].node)):
            up = int(parent[self.joints[i].node])
            while up >= 0 and up not in index:
                up = int(parent[up])
            if up >= 0:
                anchor[i], level[i] = index[up], level[index[up]] + 1
        c = len(self.colliders)
        plans = []
        for d in range(min(int(level.max(initial=-1)) + 1, MAX_DEPTH)):
            rows = np.flatnonzero(level == d)
            mask = np.zeros((len(rows), c), bool)
            for k, i in enumerate(rows):
                mask[k, list(self.joints[i].colliders)] = True
            plans.append(
                _Level(
                    rows,
                    [self.joints[i].node for i in rows],
                    np.array([int(parent[self.joints[i].node]) for i in rows], np.intp),
                    anchor[rows],
                    np.array([self.joints[a].node if a >= 0 else -1 for a in anchor[rows]]),
                    mask,
                    self._rest[rows],
                    self._tail[rows][:, :, None],
                    self._axis[rows],
                    self._t[rows],
                    self._q[rows],
                    self._s[rows],
                    self._keep[rows],
                    self._stiffness[rows],
                    self._gravity[rows],
                    self._hit[rows][:, None],
                )
            )
        return plans

    def reset(self) -> None:
        """Let every tail start again where its bone points at rest (no swing left)."""
        self._current = None

    def step(
        self,
        nodes: Sequence[Transform],
        world: np.ndarray,
        dt: float,
        place: np.ndarray | None = None,
    ) -> None:
        """Move the tails on by ``dt`` seconds and turn the joints' nodes to them.
        ``world``: every node's asset-space matrix as posed this frame before the springs
        (``ModelRenderer.world_matrices``); ``place``: the model's matrix in the scene (its
        entity's; None: where the asset is). The tails live in the scene's space, so an
        avatar moved through it swings its hair, and gravity points down in the scene."""
        dt = min(max(float(dt), 0.0), MAX_STEP_S)
        if place is not None:
            place = np.asarray(place, np.float64)
            where = place[:3, 3].copy()
            if self._where is not None and np.linalg.norm(where - self._where) > TELEPORT:
                self.reset()  # put somewhere else: the hair does not fly after it
            self._where = where
            world = place @ world
        posed = np.empty((len(self.joints), 4, 4))  # each joint's new matrix
        first = self._current is None
        current = np.zeros((len(self.joints), 3)) if self._current is None else self._current
        previous = self._previous
        centered = self._centered
        if len(centered):  # this frame's centres: their tails from centre space to the scene's
            centre = world[self._centers]
            if not first:
                current[centered] = _affine(centre, current[centered])
                previous[centered] = _affine(centre, previous[centered])
        shapes = collider_ends(self.colliders, world) if self.colliders else None
        for plan in self._levels:
            rows = plan.rows
            parents = _parent_matrices(plan, world, posed)
            initial = parents @ plan.rest  # the bone at rest under its parent
            origin = initial[:, :3, 3]
            reach = (initial[:, :3, :3] @ plan.tail)[:, :, 0]
            length = _length(reach)
            if first:
                current[rows] = previous[rows] = origin + reach
            now = current[rows]
            tail = (
                now
                + (now - previous[rows]) * plan.keep
                + reach * (plan.stiffness * dt / np.maximum(length, 1e-12))
                + plan.gravity * dt
            )
            tail = origin + _unit(tail - origin) * length
            if shapes is not None and plan.mask.any():
                tail = origin + _unit(self._collide(plan, tail, shapes) - origin) * length
            previous[rows], current[rows] = now, tail
            # Turn the bone: its rest axis onto the tail, seen from its own rest frame.
            local = _solve(initial[:, :3, :3], (tail - origin)[:, :, None])[:, :, 0]
            turn = quat_between_rows(plan.axis, _unit(local))
            rotation = quat_multiply_rows(plan.q, turn)
            posed[rows] = parents @ trs_matrices(plan.t, rotation, plan.s)
            for node, q in zip(plan.nodes, rotation.astype(np.float32), strict=True):
                nodes[node].rotation = q
        if len(centered):  # and back: next frame's inertia moves with the centre
            current[centered] = _unaffine(centre, current[centered])
            previous[centered] = _unaffine(centre, previous[centered])
        self._current, self._previous = current, previous

    def _collide(
        self, plan: _Level, tail: np.ndarray, shapes: tuple[np.ndarray, np.ndarray, np.ndarray]
    ) -> np.ndarray:
        """``tail`` pushed out of every collider its joint touches (each joint against all
        its colliders at once, three-vrm takes them in turn: the same unless two overlap)."""
        distance, direction = collider_distances(tail, plan.hit, *shapes)
        inside = np.where(plan.mask & (distance < 0), -distance, 0.0)
        return tail + (direction * inside[..., None]).sum(axis=1)


def collider_ends(
    colliders: Sequence[SpringCollider], world: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each collider's two ends in the space of ``world`` (its nodes' matrices; a sphere's
    ends are one point) and its radius."""
    m = world[[c.node for c in colliders]]
    start = np.array([c.offset for c in colliders], np.float64)
    end = np.array([c.end if c.end is not None else c.offset for c in colliders], np.float64)
    a = (m[:, :3, :3] @ start[:, :, None])[:, :, 0] + m[:, :3, 3]
    b = (m[:, :3, :3] @ end[:, :, None])[:, :, 0] + m[:, :3, 3]
    return a, b, np.array([c.radius for c in colliders], np.float64)


def collider_distances(
    points: np.ndarray, hit: np.ndarray, a: np.ndarray, b: np.ndarray, radius: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For (n, 3) ``points`` with (n, 1) hit radii against capsules from ``a`` to ``b``
    (spheres where they meet) of ``radius``: (n, colliders) distances from the surfaces
    (negative inside) and the unit directions that push out (three-vrm's
    ``calculateCollision``)."""
    ab = b - a
    span = (ab * ab).sum(axis=1)
    d = points[:, None, :] - a[None]  # (points, colliders, 3)
    along = np.divide((d * ab).sum(-1), span, out=np.zeros(d.shape[:2]), where=span > 0)
    away = d - np.clip(along, 0.0, 1.0)[..., None] * ab
    length = np.sqrt((away * away).sum(axis=-1))
    direction = away / np.maximum(length, 1e-12)[..., None]
    return length - radius[None] - hit, direction


@dataclass(frozen=True)
class _Level:
    """Joints whose nearest spring ancestors are all stepped before them, and their
    constants (gathered once: a frame indexes nothing)."""

    rows: np.ndarray  # joint indices
    nodes: list[int]  # each one's node
    parent: np.ndarray  # its parent node (-1: a root)
    anchor: np.ndarray  # its nearest spring ancestor (joint index; -1: none)
    anchor_node: np.ndarray  # that joint's node (-1: none)
    mask: np.ndarray  # (rows, colliders): the colliders each one touches
    rest: np.ndarray  # (rows, 4, 4) local matrix at rest
    tail: np.ndarray  # (rows, 3, 1) the tail in the bone's own space
    axis: np.ndarray  # (rows, 3) its direction
    t: np.ndarray  # rest translation, rotation, scale
    q: np.ndarray
    s: np.ndarray
    keep: np.ndarray  # (rows, 1) 1 - drag
    stiffness: np.ndarray  # (rows, 1)
    gravity: np.ndarray  # (rows, 3) direction x power
    hit: np.ndarray  # (rows, 1) hit radius


def _parent_matrices(plan: _Level, world: np.ndarray, posed: np.ndarray) -> np.ndarray:
    """Each joint's parent matrix as the springs above it moved it."""
    out = np.where(plan.parent[:, None, None] >= 0, world[plan.parent], np.eye(4))
    moved = plan.anchor >= 0
    if moved.any():
        direct = moved & (plan.anchor_node == plan.parent)
        out[direct] = posed[plan.anchor[direct]]
        between = moved & ~direct  # nodes between: carried along by the anchor's turn
        for k in np.flatnonzero(between):
            a = plan.anchor_node[k]
            out[k] = posed[plan.anchor[k]] @ _solve(world[a][None], world[plan.parent[k]][None])[0]
    return out


def _affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` [n, 3] through the matrices ``m`` [n, 4, 4], row by row."""
    return (m[:, :3, :3] @ points[:, :, None])[:, :, 0] + m[:, :3, 3]


def _unaffine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` [n, 3] through the inverses of ``m`` (pseudo-inverses where singular)."""
    return _solve(m[:, :3, :3], (points - m[:, :3, 3])[:, :, None])[:, :, 0]


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a^-1 b`` row by row; a bone scaled to nothing (a singular ``a``) by its
    pseudo-inverse, so a degenerate file never stops the frame."""
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(a) @ b


def _depth(parent: np.ndarray, node: int) -> int:
    depth = 0
    while parent[node] >= 0:
        node, depth = int(parent[node]), depth + 1
    return depth


def _length(v: np.ndarray) -> np.ndarray:
    return np.sqrt((v * v).sum(axis=-1, keepdims=True))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(_length(v), 1e-12)
