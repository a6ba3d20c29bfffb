"""An RPM-shaped skinned avatar: ``python assets/test/make_rpm_head.py [OUT.glb]``.

Written to Ready Player Me's published layout (``assets/test/rpm_head.glb`` by default,
used by the skinning tests and by any scene: ``python -m scenes.kiosk --avatar
assets/test/rpm_head.glb``): the armature ``Armature > Hips > Spine > Neck > Head >
LeftEye / RightEye / HeadTop_End`` with arm chains off the spine, the meshes
``Wolf3D_Head`` (skinned to Neck and Head; the 52 ARKit targets, the 15 Oculus visemes and
RPM's ``mouthOpen``, ``mouthSmile``, ``eyesClosed``, ``eyesLookUp``, ``eyesLookDown``),
``Wolf3D_Body`` (Hips, Spine, Neck), ``EyeLeft`` / ``EyeRight`` (one eye bone each, a
dark pupil in vertex colour so a gaze shows). Metres, Y up, the face along +Z.

Targets the face is not modelled for move nothing (written without data). ``build`` takes
sizes, so the render benchmark makes an RPM-sized one (30k triangles, 60+ joints) from it.
Deterministic: the same bytes every run.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avatarkit.arkit import ARKIT_NAMES
from engine.gltf_write import GltfBuilder
from engine.meshes import uv_sphere

HERE = Path(__file__).resolve().parent
VISEMES = tuple(
    f"viseme_{v}"
    for v in ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "I", "O", "U")
)
RPM_EXTRA = ("mouthOpen", "mouthSmile", "eyesClosed", "eyesLookUp", "eyesLookDown")
TARGETS = (*ARKIT_NAMES, *VISEMES, *RPM_EXTRA)
HEAD_CENTRE = np.array([0.0, 1.66, 0.0], np.float32)
HEAD_RADII = np.array([0.085, 0.11, 0.1], np.float32)
EYE_X, EYE_Y, EYE_Z, EYE_RADIUS = 0.032, 1.68, 0.084, 0.014
MOUTH_Y = 1.6
# How far each mouth shape opens the jaw (metres) and narrows the lips (0..1).
_OPEN = {"jawOpen": 0.025, "mouthOpen": 0.025, "viseme_aa": 0.025, "viseme_O": 0.016,
         "viseme_U": 0.008, "viseme_E": 0.012, "viseme_I": 0.008, "viseme_CH": 0.01,
         "viseme_DD": 0.008, "viseme_kk": 0.01, "viseme_nn": 0.006, "viseme_RR": 0.008,
         "viseme_SS": 0.004, "viseme_TH": 0.006, "viseme_FF": 0.003}  # fmt: skip
_FUNNEL = {"mouthFunnel": 0.5, "mouthPucker": 0.6, "viseme_O": 0.4, "viseme_U": 0.6}


def _ellipsoid(centre: np.ndarray, radii: np.ndarray, rings: int, segments: int) -> dict:
    mesh = uv_sphere(1.0, rings, segments)
    mesh["positions"] = (mesh["positions"] * radii + centre).astype(np.float32)
    normals = mesh["normals"] / radii
    mesh["normals"] = (normals / np.linalg.norm(normals, axis=1, keepdims=True)).astype(np.float32)
    return mesh


def _smooth(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _face_targets(
    p: np.ndarray,
    targets: Sequence[str] = TARGETS,
    shapes: Mapping[str, str] | None = None,
    dense: bool = False,
) -> list[dict]:
    """Position deltas per name in ``targets`` (zeros where the face is not modelled;
    ``dense``: a small bump somewhere on the face instead, as a scanned face has).
    ``shapes``: a target's name -> the RPM/ARKit name whose shape it has (VRoid's
    ``Fcl_MTH_A`` is ``viseme_aa``)."""
    rng = np.random.default_rng(11)
    front = _smooth((p[:, 2] - 0.02) / 0.05)  # the front of the face
    below = _smooth((MOUTH_Y - p[:, 1]) / 0.02) * front  # the jaw: under the mouth line
    mouth = np.exp(-((p[:, 0] / 0.03) ** 2 + ((p[:, 1] - MOUTH_Y) / 0.02) ** 2)) * front
    out = []
    for target in targets:
        name = (shapes or {}).get(target, target)
        d = np.zeros_like(p)
        if name in _OPEN:
            d[:, 1] -= below * _OPEN[name]
        if name in _FUNNEL:
            d[:, 0] -= mouth * p[:, 0] * _FUNNEL[name]
            d[:, 2] += mouth * 0.01 * _FUNNEL[name]
        if name in ("mouthSmileLeft", "mouthSmileRight", "mouthSmile", "viseme_E", "viseme_I"):
            side = {"mouthSmileLeft": 1.0, "mouthSmileRight": -1.0}.get(name)
            corner = mouth * _smooth(np.abs(p[:, 0]) / 0.03)
            if side is not None:
                corner = corner * (np.sign(p[:, 0]) == side)
            d[:, 1] += corner * 0.01
            d[:, 0] += corner * np.sign(p[:, 0]) * 0.006
        for side, x in (("Left", EYE_X), ("Right", -EYE_X)):
            if name in (f"eyeBlink{side}", "eyesClosed"):  # the brow skin slides over the eye
                lid = np.exp(
                    -(((p[:, 0] - x) / 0.02) ** 2 + ((p[:, 1] - EYE_Y - 0.02) / 0.015) ** 2)
                )
                d[:, 1] -= lid * front * 0.03
                d[:, 2] += lid * front * 0.022
        if dense and not d.any():
            centre = HEAD_CENTRE + rng.uniform([-0.05, -0.08, 0.06], [0.05, 0.04, 0.1])
            d[:, 2] += np.exp(-np.sum((p - centre) ** 2, axis=1) / 0.0002) * 0.005
        d[np.abs(d).max(axis=1) < 1e-5] = 0.0  # as exporters write it: untouched is exactly 0
        out.append({"POSITION": d.astype(np.float32), "NORMAL": None})
    return out


def _weights(n: int, pairs: list[tuple[int, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """JOINTS_0 / WEIGHTS_0 from (palette index, per-vertex weight) pairs (up to 4)."""
    joints = np.zeros((n, 4), np.uint16)
    weights = np.zeros((n, 4), np.float32)
    for k, (joint, w) in enumerate(pairs):
        joints[:, k], weights[:, k] = joint, w
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)
    return joints, weights


def _turned(prim: dict, facing: float) -> dict:
    """``prim`` turned half round about Y when ``facing`` is -1 (the face along -Z, as VRM
    0.x models are): positions, normals and target deltas."""
    if facing > 0:
        return prim
    flip = np.array([-1.0, 1.0, -1.0], np.float32)
    out = dict(prim, positions=prim["positions"] * flip, normals=prim["normals"] * flip)
    out["targets"] = [
        {k: None if v is None else v * flip for k, v in t.items()} for t in prim.get("targets", [])
    ]
    return out


def build_head(
    b: GltfBuilder,
    *,
    names: Mapping[str, str] | None = None,
    targets: Sequence[str] = TARGETS,
    shapes: Mapping[str, str] | None = None,
    facing: float = 1.0,
    chest: bool = False,
    head_rings: int = 32,
    head_segments: int = 48,
    body_rings: int = 16,
    body_segments: int = 24,
    arm_joints: int = 4,
    finger_joints: int = 0,
    leg_joints: int = 0,
    dense_targets: bool = False,
) -> dict[str, int]:
    """Add the armature, meshes and skin to ``b``; returns RPM's name of every bone, mesh
    node and material (``Head``, ``LeftEye``, ``Wolf3D_Head``, ``Wolf3D_Skin``, ...) ->
    its index. ``names`` renames them in the file (RPM name -> file name); ``targets`` are
    the head's morph targets, ``shapes`` what each looks like (see ``_face_targets``);
    ``facing`` -1 turns everything to face -Z; ``chest`` adds a ``Chest`` bone between
    the spine and the neck. ``arm_joints`` per arm (shoulder, arm, forearm, hand, ...),
    ``finger_joints`` per hand (in chains of 4) and ``leg_joints`` per leg (up leg, leg,
    foot, ...) add joints the way a full RPM rig has them (67: 4, 16 and 5 give 64 with
    the six of the head). ``dense_targets``: every target moves part of the face."""
    rename = names or {}
    found: dict[str, int] = {}
    flip = np.array([facing, 1.0, facing])

    def bone(name: str, at: Sequence[float], parent: int | None) -> int:
        found[name] = b.add_node(
            rename.get(name, name), translation=np.asarray(at) * flip, parent=parent
        )
        return found[name]

    armature = bone("Armature", (0, 0, 0), None)
    b.doc.nodes[armature].translation = None  # as before: the armature sits at the origin
    hips = bone("Hips", (0, 1.0, 0), armature)
    spine = bone("Spine", (0, 0.3 if not chest else 0.15, 0), hips)
    upper = bone("Chest", (0, 0.15, 0), spine) if chest else spine
    neck = bone("Neck", (0, 0.15, 0), upper)  # 1.45 m
    head = bone("Head", (0, 0.1, 0), neck)  # 1.55 m: the skull's base
    eyes = [
        bone(f"{s}Eye", (x, EYE_Y - 1.55, EYE_Z), head)
        for s, x in (("Left", EYE_X), ("Right", -EYE_X))
    ]
    bone("HeadTop_End", (0, 0.22, 0), head)
    joints = [hips, spine, *([upper] if chest else []), neck, head, *eyes]
    arm = ("Shoulder", "Arm", "ForeArm", "Hand", *(f"ArmTwist{k}" for k in range(8)))
    leg = ("UpLeg", "Leg", "Foot", "ToeBase", "Toe_End")
    for side, sx in (("Left", 1.0), ("Right", -1.0)):
        parent = upper
        for k, part in enumerate(arm[:arm_joints]):
            at = (sx * 0.06, 0.1, 0.0) if k == 0 else (sx * 0.12, -0.02, 0.0)
            parent = bone(f"{side}{part}", at, parent)
            joints.append(parent)
        hand = parent
        for f in range(finger_joints):  # chains of 4, like Thumb1..4, Index1..4, ...
            chain, link = divmod(f, 4)
            at = (sx * 0.03, 0.0, 0.01 * chain)
            parent = bone(
                f"{side}HandFinger{chain + 1}_{link + 1}", at, hand if link == 0 else parent
            )
            joints.append(parent)
        parent = hips
        for k, part in enumerate(leg[:leg_joints]):
            parent = bone(
                f"{side}{part}", (sx * 0.09, -0.05, 0) if k == 0 else (0, -0.4, 0), parent
            )
            joints.append(parent)
    index = {node: k for k, node in enumerate(joints)}

    def material(name: str, colour: tuple[float, ...]) -> int:
        found[name] = b.add_material(colour, name=rename.get(name, name))
        return found[name]

    skin_mat = material("Wolf3D_Skin", (0.85, 0.62, 0.5, 1.0))
    eye_mat = material("Wolf3D_Eye", (1.0, 1.0, 1.0, 1.0))
    cloth = material("Wolf3D_Outfit", (0.2, 0.3, 0.5, 1.0))

    face = _ellipsoid(HEAD_CENTRE, HEAD_RADII, head_rings, head_segments)
    p = face["positions"]
    to_head = _smooth((p[:, 1] - 1.52) / 0.06)  # the jaw's underside blends into the neck
    lips = np.exp(-((p[:, 0] / 0.028) ** 2 + ((p[:, 1] - MOUTH_Y) / 0.007) ** 2)) * (p[:, 2] > 0)
    face["colors"] = np.ones((len(p), 4), np.float32)
    face["colors"][:, :3] -= lips[:, None] * np.array([0.15, 0.55, 0.5], np.float32)
    face["joints"], face["weights"] = _weights(
        len(p), [(index[head], to_head), (index[neck], 1 - to_head)]
    )
    face["targets"] = _face_targets(p, targets, shapes, dense_targets)
    head_mesh = b.add_mesh(
        [dict(_turned(face, facing), material=skin_mat)],
        rename.get("Wolf3D_Head", "Wolf3D_Head"),
        targets,
    )

    torso = _ellipsoid(
        np.array([0, 1.25, 0], np.float32),
        np.array([0.2, 0.22, 0.12], np.float32),
        body_rings,
        body_segments,
    )
    neck_part = _ellipsoid(
        np.array([0, 1.5, -0.01], np.float32),
        np.array([0.05, 0.09, 0.05], np.float32),
        body_rings,
        body_segments,
    )
    spine_share = _smooth((torso["positions"][:, 1] - 1.05) / 0.2)  # the belly to the hips
    torso["joints"], torso["weights"] = _weights(
        len(spine_share), [(index[spine], spine_share), (index[hips], 1 - spine_share)]
    )
    n = len(neck_part["positions"])
    neck_part["joints"], neck_part["weights"] = _weights(n, [(index[neck], np.ones(n))])
    body_prims = [
        dict(_turned(torso, facing), material=cloth),
        dict(_turned(neck_part, facing), material=cloth),
    ]
    body_mesh = b.add_mesh(body_prims, rename.get("Wolf3D_Body", "Wolf3D_Body"))

    eye_meshes = []
    for name, eye_node, x in (("EyeLeft", eyes[0], EYE_X), ("EyeRight", eyes[1], -EYE_X)):
        ball = _ellipsoid(
            np.array([x, EYE_Y, EYE_Z], np.float32), np.full(3, EYE_RADIUS, np.float32), 12, 16
        )
        pupil = ball["normals"][:, 2] > 0.8  # the cap looking along +Z
        ball["colors"] = np.where(
            pupil[:, None], [0.02, 0.02, 0.03, 1.0], [0.9, 0.9, 0.9, 1.0]
        ).astype(np.float32)
        ball["joints"], ball["weights"] = _weights(
            len(ball["positions"]), [(index[eye_node], np.ones(len(ball["positions"])))]
        )
        mesh = b.add_mesh([dict(_turned(ball, facing), material=eye_mat)], rename.get(name, name))
        eye_meshes.append((name, mesh))

    skin = b.add_skin(joints, rename.get("Armature", "Armature"), skeleton=hips)
    for name, mesh in (("Wolf3D_Head", head_mesh), ("Wolf3D_Body", body_mesh), *eye_meshes):
        found[name] = b.add_node(rename.get(name, name), mesh=mesh, skin=skin, parent=armature)
    return found


def build(path: Path = HERE / "rpm_head.glb", **sizes: Any) -> Path:
    """Write the RPM-shaped avatar; ``sizes``: ``build_head``'s size keywords."""
    b = GltfBuilder()
    build_head(b, **sizes)
    return b.save(path)


if __name__ == "__main__":
    print(build(Path(sys.argv[1])) if len(sys.argv) > 1 else build())
