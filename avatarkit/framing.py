"""Where a model's face is, from its anatomy: the framing of an avatar that has no manifest.

Tried in order, the first that the file offers wins (``Framing.extra["anchor"]`` says which):

1. ``eyes``: the two eyes, from the VRM humanoid's ``leftEye``/``rightEye`` bones or from
   nodes named as eyes (``LeftEye``, ``Eye_L``, ``eyeLeft``, ``mixamorig:LeftEye``,
   VRoid's ``J_Adj_L_FaceEye``, ...). The distance between them sets the scale, so a model
   in centimetres is framed as one in metres.
2. ``morphRegion``: the vertices the model's mapped morph targets move (the face of a
   head-only scan such as an ARKit capture), their extent setting the scale.
3. ``headBone``: the VRM humanoid's ``head`` bone or a node named as the head; the skull
   above it (vertices in a cone over the joint) sets the scale.
4. ``bounds``: nothing anatomical: the whole model is fitted in view.

Never the top of the bounding box: a raised arm, a hat or a hair bun would move the face.
Y is up and the face looks along +Z (glTF's convention); the view puts its camera at
``head_center + (0, 0, camera_distance)``. Pure numpy over the loaded ``GltfAsset``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from avatarkit.package import Framing

if TYPE_CHECKING:
    from avatarkit.blendshapes import BlendshapeMap
    from engine import GltfAsset

# Human proportions the anchors are scaled by (metres, for a head shot like the bundled
# avatars': head centre just below the eyes, the camera ~0.62 m away).
EYE_DROP = 0.2  # head centre below the eyes, in interpupillary distances
EYE_DISTANCE = 10.0  # camera distance, in interpupillary distances (6.3 cm -> 0.63 m)
REGION_LIFT = 0.15  # head centre above the moving region's centre, in region sizes
REGION_DISTANCE = 3.9  # camera distance, in region sizes (brow to chin ~16 cm)
SKULL_CENTRE = 0.45  # head centre above the head joint, in skull heights
SKULL_DISTANCE = 2.9  # camera distance, in skull heights (~21 cm)
ACTIVE = 0.1  # a vertex moves when some target moves it this much of the largest move
BOUNDS_DISTANCE = 3.9  # camera distance, in bounding radii: the sphere fits a 30° view

_TOKEN_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_NOT_AN_EYE = {"brow", "eyebrow", "lash", "lashes", "eyelash", "lid", "eyelid", "socket"}


def anatomical_framing(asset: GltfAsset, blend: BlendshapeMap | None = None) -> Framing:
    """The framing of ``asset`` from the first anchor it offers (see the module doc)."""
    world = asset.world_matrices()
    for find in (_from_eyes, _from_morph_region, _from_head_bone):
        found = find(asset, world, blend)
        if found is not None:
            return found
    return _from_bounds(asset)


def tokens(name: str) -> list[str]:
    """A node name's words, lower case: ``mixamorig:LeftEye`` -> mixamorig, left, eye."""
    return [t.lower() for t in _TOKEN_RE.findall(name)]


def eye_side(name: str) -> str | None:
    """``left``/``right`` when ``name`` names an eye (not a brow, lash or lid), else None."""
    words = tokens(name)
    if not {"eye", "eyes", "eyeball"} & set(words) or _NOT_AN_EYE & set(words):
        return None
    if "left" in words or "l" in words:
        return "left"
    if "right" in words or "r" in words:
        return "right"
    return None


def is_head(name: str) -> bool:
    """True for a head node or bone (``Head``, ``mixamorig:Head``, ``J_Bip_C_Head``), not
    its end marker (``HeadTop_End``)."""
    words = tokens(name)
    return "head" in words and not {"top", "end", "nub", "neck"} & set(words)


def is_jaw(name: str) -> bool:
    """True for a jaw bone (``Jaw``, ``CC_Base_JawRoot``, ``FACIAL_C_Jaw``, ``DEF-jaw``),
    not its end marker (``Jaw_end``)."""
    words = set(tokens(name))
    return bool({"jaw", "jawbone"} & words) and not {"end", "nub", "tip", "top"} & words


def _is_head_top(name: str) -> bool:
    words = tokens(name)
    return "head" in words and bool({"top", "end"} & set(words))


def humanoid_bones(asset: GltfAsset) -> dict[str, int]:
    """VRM humanoid bone -> node index, from ``VRMC_vrm`` (1.0) or ``VRM`` (0.x); untrusted
    JSON, anything malformed skipped."""
    count = len(asset.nodes)
    bones: dict[str, int] = {}

    def add(bone: Any, node: Any) -> None:
        if isinstance(bone, str) and isinstance(node, int) and not isinstance(node, bool):
            if 0 <= node < count:
                bones[bone] = node

    vrm1 = asset.extensions.get("VRMC_vrm")
    humanoid = vrm1.get("humanoid") if isinstance(vrm1, dict) else None
    human = humanoid.get("humanBones") if isinstance(humanoid, dict) else None
    if isinstance(human, dict):
        for bone, entry in human.items():
            add(bone, entry.get("node") if isinstance(entry, dict) else None)
        return bones
    vrm0 = asset.extensions.get("VRM")
    humanoid = vrm0.get("humanoid") if isinstance(vrm0, dict) else None
    human = humanoid.get("humanBones") if isinstance(humanoid, dict) else None
    for entry in human if isinstance(human, list) else ():
        if isinstance(entry, dict):
            add(entry.get("bone"), entry.get("node"))
    return bones


# -- the anchors ----------------------------------------------------------------------------
def _from_eyes(
    asset: GltfAsset, world: dict[int, np.ndarray], _blend: BlendshapeMap | None
) -> Framing | None:
    bones = humanoid_bones(asset)
    pair = (bones.get("leftEye"), bones.get("rightEye"))
    source = "humanoid"
    if None in pair:
        sides: dict[str, int] = {}
        for index in world:  # the default scene's nodes, parents first
            side = eye_side(asset.nodes[index].name)
            if side is not None:
                sides.setdefault(side, index)
        pair, source = (sides.get("left"), sides.get("right")), "names"
    left, right = pair
    if left is None or right is None or left not in world or right not in world:
        return None
    a, b = _node_point(asset, world, left), _node_point(asset, world, right)
    ipd = float(np.linalg.norm(a - b))
    if ipd <= 0 or abs(float(a[0] - b[0])) < 0.5 * ipd:  # one point, or not side by side
        return None
    mid = (a + b) / 2
    centre = mid - np.array([0.0, EYE_DROP * ipd, 0.0])
    return _framing(
        centre,
        EYE_DISTANCE * ipd,
        "eyes",
        {"eye_nodes": [asset.nodes[left].name, asset.nodes[right].name], "from": source},
    )


def _from_morph_region(
    asset: GltfAsset, world: dict[int, np.ndarray], blend: BlendshapeMap | None
) -> Framing | None:
    driven: dict[int, set[int]] = {}  # mesh -> targets the motion drives
    for bindings in blend.bindings.values() if blend is not None else ():
        for binding in bindings:
            driven.setdefault(binding.mesh, set()).add(binding.target)
    moves: list[tuple[np.ndarray, np.ndarray]] = []  # (world positions, largest move)
    for index, matrix in world.items():
        mesh = asset.nodes[index].mesh
        if mesh is None or mesh not in driven:
            continue
        for prim in asset.meshes[mesh].primitives:
            targets = [prim.targets[t] for t in driven[mesh] if t < len(prim.targets)]
            if not targets or not len(prim.positions):
                continue
            moved = np.max([np.linalg.norm(t.positions, axis=1) for t in targets], axis=0)
            points = np.c_[prim.positions, np.ones(len(prim.positions))] @ matrix.T
            moves.append((points[:, :3], moved))
    if not moves:
        return None
    largest = max(float(m.max()) for _, m in moves)
    if not largest > 0:  # nothing moves (or the loader let through a non-finite move)
        return None
    active = np.concatenate([p[m > ACTIVE * largest] for p, m in moves])
    if not len(active) or not np.isfinite(active).all():
        return None
    lo, hi = active.min(axis=0), active.max(axis=0)
    size = float(max(hi[0] - lo[0], hi[1] - lo[1]))
    if size <= 0:
        return None
    centre = (lo + hi) / 2 + np.array([0.0, REGION_LIFT * size, 0.0])
    return _framing(centre, REGION_DISTANCE * size, "morphRegion", {"vertices": len(active)})


def _from_head_bone(
    asset: GltfAsset, world: dict[int, np.ndarray], _blend: BlendshapeMap | None
) -> Framing | None:
    head = humanoid_bones(asset).get("head")
    if head is None or head not in world:
        named = [i for i in world if is_head(asset.nodes[i].name)]
        # A bone before a mesh named for the head (RPM's skinned ``Wolf3D_Head`` sits at
        # the origin: its vertices are placed by the skeleton).
        head = min(named, key=lambda i: asset.nodes[i].mesh is not None, default=None)
    if head is None:
        return None
    joint = world[head][:3, 3].astype(np.float64)
    top = next((c for c in asset.nodes[head].children if _is_head_top(asset.nodes[c].name)), None)
    if top is not None and top in world:  # Mixamo's HeadTop_End marks the top of the skull
        height = float(world[top][1, 3] - joint[1])
    else:
        points = _world_points(asset, world)
        above = points[:, 1] - joint[1]
        aside = np.hypot(points[:, 0] - joint[0], points[:, 2] - joint[2])
        # A cone over the joint: the skull, not the shoulders or arms held out (an arm
        # held straight up would count: files with arms up usually carry eyes or morphs).
        skull = points[(above > 0) & (aside < above)]
        height = float(skull[:, 1].max() - joint[1]) if len(skull) else 0.0
    if height <= 0:
        return None
    centre = joint + np.array([0.0, SKULL_CENTRE * height, 0.0])
    return _framing(
        centre, SKULL_DISTANCE * height, "headBone", {"head_bone": asset.nodes[head].name}
    )


def _from_bounds(asset: GltfAsset) -> Framing:
    lo, hi = asset.bounds()
    radius = max(float(np.linalg.norm(hi - lo)) / 2, 1e-3)
    return _framing((lo + hi) / 2, BOUNDS_DISTANCE * radius, "bounds", {})


# -- helpers --------------------------------------------------------------------------------
def _framing(centre: np.ndarray, distance: float, anchor: str, extra: dict[str, Any]) -> Framing:
    return Framing(
        head_center=(float(centre[0]), float(centre[1]), float(centre[2])),
        camera_distance=max(float(distance), 1e-4),
        extra={"estimated": True, "anchor": anchor, **extra},
    )


def _node_point(asset: GltfAsset, world: dict[int, np.ndarray], index: int) -> np.ndarray:
    """An eye's centre: its mesh's world-space centre when it has one (an eyeball), else
    the node's origin (a bone)."""
    matrix = world[index]
    mesh = asset.nodes[index].mesh
    if mesh is not None:
        positions = [p.positions for p in asset.meshes[mesh].primitives if len(p.positions)]
        if positions:
            local = np.concatenate(positions)
            centre = (local.min(axis=0) + local.max(axis=0)) / 2
            point: np.ndarray = (matrix @ np.append(centre, 1.0))[:3]
            return point.astype(np.float64)
    return matrix[:3, 3].astype(np.float64)


def _world_points(asset: GltfAsset, world: dict[int, np.ndarray]) -> np.ndarray:
    points = [
        (np.c_[prim.positions, np.ones(len(prim.positions))] @ matrix.T)[:, :3]
        for index, matrix in world.items()
        if (mesh := asset.nodes[index].mesh) is not None
        for prim in asset.meshes[mesh].primitives
    ]
    return np.concatenate(points) if points else np.zeros((0, 3))
