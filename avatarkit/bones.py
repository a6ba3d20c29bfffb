"""Head, neck and eye bones of a skinned avatar, turned by the face pose.

``AvatarView`` finds them once (``BoneRig.find``) and calls ``apply`` each drawn frame on
the render thread, before the model is drawn: the head pose (pitch, yaw, roll, from speech,
idle and the app's ``look_at``) is shared between the neck and the head, the gaze turns
both eyes (as far as a VRM file's ``lookAt`` range maps say: ``avatarkit.look_range``), and
on a face with a jaw bone and no morph target that opens the jaw, ``jawOpen`` turns the
jaw (``JAW_RANGE``). The engine's GPU skinning then moves the vertices those bones carry.

Bones are found by, in order: the VRM humanoid map (``VRMC_vrm`` 1.0 or ``VRM`` 0.x
``humanBones``: ``head``, ``neck``, ``leftEye``, ``rightEye``, ``jaw``), then the names
Mixamo (``mixamorig:Head``), Ready Player Me (``Head``, ``Neck``, ``LeftEye``,
``RightEye``), VRoid (``J_Bip_C_Head``) and other rigs (a jaw: ``Jaw``, ``CC_Base_JawRoot``,
``FACIAL_C_Jaw``, ``DEF-jaw``) use, among the joints of the file's skins. Eye bones whose
eyeballs already turn by ``eyeLook*`` morph targets are left alone (both would double
every look).

A pose angle is about the model's own axes (x right, y up, the face along +Z; a model
facing -Z, as VRM 0.x does, has pitch and roll mirrored). Each turn is carried into the
bone's parent frame at rest and composed with the bone's rest rotation, so a rig whose
bones are rolled or scaled any way turns the same.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np
import pyrr

from avatarkit.arkit import ARKIT_NAMES
from avatarkit.conventions import arkit_channel
from avatarkit.framing import eye_side, humanoid_bones, is_head, is_jaw, tokens
from avatarkit.look_range import LookRange, look_range
from avatarkit.vrm0 import faces_back
from engine.gltf_asset import GltfAsset
from engine.skeleton import Skeleton
from engine.transform import Transform, quat_from_euler, quat_multiply, rotation_of

NECK_SHARE = 0.4  # of a head turn, the neck's part (the head does the rest)
JAW_RANGE = 0.45  # radians the jaw bone turns at jawOpen 1 (speech reaches about 0.6 of it)
# The ARKit channels of a gaze: on a rig with eye bones the bones show them, not morphs.
EYE_LOOK = tuple(name for name in ARKIT_NAMES if name.startswith("eyeLook"))


def _unit(q: np.ndarray) -> np.ndarray:
    return np.asarray(pyrr.quaternion.normalize(np.asarray(q, np.float64)), np.float32)


@dataclass
class _Bone:
    node: int
    rest: np.ndarray  # local rotation at rest (x, y, z, w)
    to_parent: np.ndarray  # model -> parent frame at rest: the parent's world rotation
    from_parent: np.ndarray  # its inverse

    def __post_init__(self) -> None:
        self._to_rest = quat_multiply(self.to_parent, self.rest)  # the turn's fixed right part

    def turn(self, nodes: Sequence[Transform], model_turn: np.ndarray) -> None:
        """Rotate the bone by ``model_turn`` (a quaternion about model axes) at its joint:
        from_parent * model_turn * to_parent * rest."""
        local = quat_multiply(self.from_parent, model_turn)
        nodes[self.node].rotation = quat_multiply(local, self._to_rest)


class BoneRig:
    """The bones a face pose turns on one model (indices into its nodes)."""

    def __init__(
        self,
        asset_nodes: Sequence[Transform],
        skeleton: Skeleton,
        head: int,
        neck: int | None,
        eyes: list[int],
        facing: float,
        eye_sides: Sequence[str] = ("left", "right"),
        look: LookRange | None = None,
        jaw: int | None = None,
    ) -> None:
        for index in (head, neck, *eyes, jaw):
            if index is not None:
                asset_nodes[index].to_trs()  # an explicit matrix would hide the rotation
        world = skeleton.world(asset_nodes)

        def bone(index: int) -> _Bone:
            parent = int(skeleton.parent[index])
            # A mirrored or scaled parent: its proper rotation alone.
            parent_q = _unit(rotation_of(world[parent] if parent >= 0 else np.eye(4)))
            return _Bone(
                index,
                _unit(asset_nodes[index].rotation),
                parent_q,
                np.asarray(pyrr.quaternion.inverse(parent_q), np.float32),
            )

        self.head = bone(head)
        self.neck = bone(neck) if neck is not None else None
        self.eyes = [bone(e) for e in eyes]
        self.jaw = bone(jaw) if jaw is not None else None
        self.facing = facing  # +1: the face looks along +Z; -1: along -Z
        self.eye_sides = list(eye_sides)[: len(eyes)]  # "left" / "right", per eye
        self.look = look  # a VRM file's range maps: how far its eyes turn for a gaze
        self.names = {"head": head, "neck": neck, "eyes": eyes, "jaw": jaw}

    @classmethod
    def find(cls, asset_nodes: Sequence[Transform], asset: GltfAsset) -> BoneRig | None:
        """The rig of a skinned model, or None (no skin, or no head among its joints).
        ``asset_nodes``: the model's editable node transforms (``ModelRenderer.nodes``)."""
        joints = {j for skin in asset.skins for j in skin.joints}
        if not joints:
            return None
        skeleton = Skeleton(asset)
        human = {k: v for k, v in humanoid_bones(asset).items() if v in joints}
        head = human.get("head")
        names = {i: asset.nodes[i].name for i in joints}
        if head is None:
            heads = sorted((i for i, name in names.items() if is_head(name)), key=_depth(skeleton))
            head = heads[0] if heads else None
        if head is None:
            return None
        neck = human.get("neck")
        if neck is None:  # the nearest ancestor named as a neck
            up = int(skeleton.parent[head])
            while up >= 0 and neck is None:
                if up in names and "neck" in tokens(names[up]):
                    neck = up
                up = int(skeleton.parent[up])
        eyes = [human[k] for k in ("leftEye", "rightEye") if k in human]
        sides = [s for s in ("left", "right") if s + "Eye" in human]
        if not eyes:
            below = _descendants(asset, head)
            eyes = [i for i in sorted(below & joints) if eye_side(names[i]) is not None][:2]
            sides = [str(eye_side(names[i])) for i in eyes]
        jaw = human.get("jaw")
        if jaw is None:  # the shallowest joint below the head named as a jaw
            below = _descendants(asset, head) & joints
            jaws = sorted((i for i in below if is_jaw(names[i])), key=_depth(skeleton))
            jaw = jaws[0] if jaws else None
        world = skeleton.world(asset_nodes)
        if eyes and _eyes_look_by_morphs(asset, set(eyes)):
            eyes = []  # turning the bones as well would double every look
        if eyes:  # the eyes sit in front of the head joint
            ahead = float(np.mean([world[e][2, 3] for e in eyes]) - world[head][2, 3])
            facing = -1.0 if ahead < 0 else 1.0
        else:  # VRM 0.x models face -Z (until avatarkit.vrm0 turns them); the rest +Z
            facing = -1.0 if faces_back(asset) else 1.0
        return cls(asset_nodes, skeleton, head, neck, eyes, facing, sides, look_range(asset), jaw)

    @property
    def channels(self) -> tuple[str, ...]:
        """The ARKit channels these bones can show: the eyeLook* ones with eye bones,
        ``jawOpen`` with a jaw bone."""
        return (*(EYE_LOOK if self.eyes else ()), *(("jawOpen",) if self.jaw else ()))

    def apply(
        self,
        nodes: Sequence[Transform],
        head: np.ndarray,
        gaze: np.ndarray,
        jaw_open: float | None = None,
    ) -> None:
        """Pose the bones: ``head`` pitch (+ nods down), yaw, roll and ``gaze`` yaw (+ to
        the avatar's right), pitch (+ up), radians; ``jaw_open`` (ARKit ``jawOpen``, 0..1)
        turns the jaw bone down, None leaves it (a face whose morph targets open it)."""
        pitch, yaw, roll = (float(a) for a in head)
        pitch, roll = pitch * self.facing, roll * self.facing
        share = NECK_SHARE if self.neck is not None else 0.0
        if self.neck is not None:
            self.neck.turn(nodes, quat_from_euler(pitch * share, yaw * share, roll * share))
        rest = 1.0 - share
        self.head.turn(nodes, quat_from_euler(pitch * rest, yaw * rest, roll * rest))
        for bone, side in zip(self.eyes, self.eye_sides, strict=True):
            yaw, pitch = float(gaze[0]), float(gaze[1])
            if self.look is not None:
                yaw, pitch = self.look.eye(side, yaw, pitch)
            bone.turn(nodes, quat_from_euler(-pitch * self.facing, -yaw, 0.0))
        if self.jaw is not None and jaw_open is not None:
            opened = min(max(float(jaw_open), 0.0), 1.0) * JAW_RANGE * self.facing
            self.jaw.turn(nodes, quat_from_euler(opened, 0.0, 0.0))


def jaw_opens_by_bone(rig: BoneRig | None, morphed: Collection[str]) -> bool:
    """Whether ``rig``'s jaw bone shows ``jawOpen`` on a face whose morph targets show the
    ``morphed`` channels: only where none opens the jaw (never both)."""
    return rig is not None and rig.jaw is not None and "jawOpen" not in morphed


def channels_by_bones(asset: GltfAsset) -> tuple[str, ...]:
    """The ARKit channels a view can show on this model by turning bones: the eyeLook*
    channels when its eye bones follow the gaze, ``jawOpen`` when it has a jaw bone."""
    rig = BoneRig.find([n.transform.copy() for n in asset.nodes], asset)
    return () if rig is None else rig.channels


def _eyes_look_by_morphs(asset: GltfAsset, eye_nodes: set[int]) -> bool:
    """True when a mesh carried by the eye bones alone has eyeLook* targets (an eyeball
    that turns by morphs, as some exports have): then the bones are left alone."""
    for node in asset.nodes:
        if node.skin is None or node.mesh is None:
            continue
        mesh = asset.meshes[node.mesh]
        if not any((arkit_channel(n) or "").startswith("eyeLook") for n in mesh.target_names):
            continue
        joints = asset.skins[node.skin].joints
        palette = {k for k, j in enumerate(joints) if j in eye_nodes}
        for prim in mesh.primitives:
            if prim.joints is None or prim.skin_weights is None:
                continue
            used = set(np.unique(prim.joints[prim.skin_weights > 0]).tolist())
            if used and used <= palette:
                return True
    return False


def _depth(skeleton: Skeleton) -> Callable[[int], int]:
    def depth(index: int) -> int:
        d = 0
        while skeleton.parent[index] >= 0:
            index, d = int(skeleton.parent[index]), d + 1
        return d

    return depth


def _descendants(asset: GltfAsset, root: int) -> set[int]:
    found: set[int] = set()
    stack = [root]
    while stack:
        index = stack.pop()
        for child in asset.nodes[index].children:
            if child not in found:
                found.add(child)
                stack.append(child)
    return found
