"""Third-party-shaped avatar files, written here to the published layouts.

A Mixamo/Ready Player Me-style figure (an armature of bones named ``mixamorig:Hips`` ...
``mixamorig:LeftEye`` or RPM's ``Head``/``LeftEye``, a skin listing them, a body, a head,
optionally a hat and an arm raised above the head), a VRM 1.0 figure whose eyes are found
only through ``VRMC_vrm.humanoid``, and a head-only scan like an ARKit face capture
(``facecap.glb``: a head and neck, ARKit morph targets, no bones). Each can be written in
metres, centimetres or millimetres (``unit``: metres per file unit, inverted).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.gltf_write import GltfBuilder
from engine.meshes import cube, uv_sphere

EYE_Y, EYE_X, EYE_Z = 1.63, 0.032, 0.09  # metres: a 1.75 m figure's eyes (IPD 6.4 cm)
HEAD_Y, HEAD_R = 1.62, 0.1


def box(center: tuple[float, float, float], size: tuple[float, float, float]) -> dict:
    c = cube(1.0)
    return dict(c, positions=(c["positions"] * np.float32(size) + np.float32(center)))


def scaled(prim: dict, k: float) -> dict:
    return dict(prim, positions=prim["positions"] * np.float32(k))


def head_sphere(k: float, center_y: float = HEAD_Y) -> dict:
    s = uv_sphere(HEAD_R, 16, 32)
    return dict(s, positions=(s["positions"] + np.float32([0, center_y, 0])) * np.float32(k))


def face_targets(head: dict, k: float, names: list[str]) -> list[dict[str, Any]]:
    """Morph targets that move the front of the head: a jaw/mouth target moves the lower
    face, an eye target the upper face (k: file units per metre). The moved region's
    normals tilt down too, so a render shows the change."""
    p = head["positions"] / np.float32(k)
    x, y, z = p[:, 0], p[:, 1] - p[:, 1].mean(), p[:, 2]
    front = z > 0.4 * HEAD_R
    targets = []
    for name in names:
        lower = any(w in name.lower() for w in ("jaw", "mouth", "viseme", "aa"))
        region = front & ((y < -0.1 * HEAD_R) if lower else (y > 0.15 * HEAD_R))
        if "left" in name.lower():
            region &= x >= 0
        delta = np.zeros_like(head["positions"])
        delta[region] = np.float32([0, -0.02 * HEAD_R * k, -0.2 * HEAD_R * k])
        tilt = np.zeros_like(head["positions"])
        tilt[region] = np.float32([0, -0.9, -0.4])
        targets.append({"POSITION": delta, "NORMAL": tilt})
    return targets


def write_figure(
    path: Path,
    *,
    k: float = 1.0,
    rig: str = "mixamo",
    eyes: bool = True,
    hat: bool = True,
    raised_arm: bool = True,
    morphs: list[str] | None = None,
    head_top: bool = False,
    extensions: dict[str, Any] | None = None,
    used: list[str] | None = None,
) -> Path:
    """A standing figure; ``rig``: ``mixamo`` (``mixamorig:*`` bones), ``rpm`` (``Head``,
    ``LeftEye``; a mesh named ``Wolf3D_Head``) or ``vrm`` (bones ``n0``.., eyes found only
    through ``extensions``)."""
    b = GltfBuilder()
    skin = b.add_material((0.85, 0.6, 0.5, 1.0), name="skin")
    cloth = b.add_material((0.2, 0.3, 0.6, 1.0), name="cloth")
    prims = [dict(scaled(box((0, 1.0, 0), (0.4, 0.9, 0.25)), k), material=cloth)]
    if hat:  # a tall hat: the bounding box's top is 35 cm above the eyes
        prims.append(dict(scaled(box((0, 1.85, 0), (0.2, 0.25, 0.2)), k), material=cloth))
    if raised_arm:  # an arm held up, to the side: 2.2 m high
        prims.append(dict(scaled(box((0.35, 1.75, 0), (0.08, 0.9, 0.08)), k), material=skin))
    body = b.add_mesh(prims, "Body")
    head = head_sphere(k)
    names = morphs or []
    head_mesh = b.add_mesh(
        [dict(head, material=skin, targets=face_targets(head, k, names) if names else [])],
        "Wolf3D_Head" if rig == "rpm" else "Head_Mesh",
        names or None,
    )
    prefix = {"mixamo": "mixamorig:", "rpm": "", "vrm": ""}[rig]

    def bone(name: str, at: tuple[float, float, float], parent: int | None) -> int:
        label = name if rig != "vrm" else f"n{len(b.doc.nodes)}"
        return b.add_node(prefix + label if rig != "vrm" else label, None, at, parent=parent)

    root = b.add_node("Armature")
    hips = bone("Hips", (0, 1.0 * k, 0), root)
    head_bone = bone("Head", (0, 0.55 * k, 0), hips)  # the joint at the skull's base: 1.55 m
    joints = [hips, head_bone]
    if head_top:
        joints.append(bone("HeadTop_End", (0, 0.22 * k, 0), head_bone))
    if eyes:
        for side, x in (("Left", EYE_X), ("Right", -EYE_X)):
            joints.append(bone(f"{side}Eye", (x * k, (EYE_Y - 1.55) * k, EYE_Z * k), head_bone))
    b.add_node("Body", mesh=body)
    b.add_node("Wolf3D_Head" if rig == "rpm" else "Face", mesh=head_mesh)
    b.doc.skins = [b._g.Skin(name="Armature", joints=joints)]
    if extensions:
        b.doc.extensions = extensions
    if extensions or used:
        b.doc.extensionsUsed = sorted({*(extensions or {}), *(used or [])})
    return b.save(path)


def vrm1_humanoid(bones: dict[str, int], expressions: dict[str, Any] | None = None) -> dict:
    return {
        "VRMC_vrm": {
            "specVersion": "1.0",
            "meta": {"name": "test figure", "authors": ["avatarkit tests"]},
            "humanoid": {"humanBones": {name: {"node": i} for name, i in bones.items()}},
            "expressions": {"preset": expressions or {}},
        }
    }


def write_face_scan(path: Path, *, k: float = 1.0, targets: list[str]) -> Path:
    """A head-only scan like an ARKit capture: head and neck, ARKit targets, no bones."""
    b = GltfBuilder()
    skin = b.add_material((0.85, 0.6, 0.5, 1.0), name="skin")
    head = head_sphere(k, center_y=0.0)
    neck = scaled(box((0, -0.17, -0.02), (0.11, 0.16, 0.11)), k)
    mesh = b.add_mesh(
        [dict(head, material=skin, targets=face_targets(head, k, targets)),
         dict(neck, material=skin, targets=[{"POSITION": np.zeros_like(neck["positions"]),
                                             "NORMAL": None}] * len(targets))],
        "head", targets,
    )  # fmt: skip
    b.add_node("grp_transform", mesh=mesh)
    return b.save(path)
