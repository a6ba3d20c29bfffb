"""VRM 1.0 and VRM 0.x skinned heads: ``python assets/test/make_vrm_heads.py [OUT_DIR]``.

The head, body, eyes and armature of ``make_rpm_head`` (the same builder), written the way
VRoid Studio exports a character, to the published specs (vrm-c/vrm-specification):

- ``vrm1_head.vrm``: ``VRMC_vrm`` 1.0 (meta with its licence fields, ``humanoid.humanBones``
  from the hips to the feet, hands and eyes, ``expressions.preset`` bound to morph targets by
  ``morphTargetBinds``, ``lookAt`` of type ``bone`` with range maps) and every material
  ``VRMC_materials_mtoon``. The face looks along +Z.
- ``vrm0_head.vrm``: ``VRM`` 0.x (``humanoid.humanBones`` list, ``blendShapeMaster`` groups
  with ``presetName`` A/I/U/E/O/Blink/..., ``firstPerson`` with ``lookAt*`` curves,
  ``materialProperties`` with shader ``VRM/MToon``). The face looks along -Z, as every
  VRM 0.x model does.

Expression-only faces, as VRoid's are: the head's targets are VRoid's ``Fcl_*`` shapes (no
ARKit or viseme names), so the mouth and the blinks move only through the extension's
binds. Bones are VRoid's ``J_Bip_*`` / ``J_Adj_*_FaceEye``. A ponytail hangs from the back
of the head on a chain of spring bones (VRoid's ``J_Sec_Hair*``: ``VRMC_springBone`` in the
1.0 file, ``secondaryAnimation`` in the 0.x one) with the head as their collider, so it
swings as the head nods and turns. Deterministic bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from engine.gltf_write import GltfBuilder

if __package__ in (None, ""):  # run as a script: the builder beside it, the repo on the path
    sys.path[:0] = [str(Path(__file__).resolve().parents[2])]
from assets.test.make_rpm_head import HERE, build_head

# RPM's names (make_rpm_head) -> VRoid's.
NAMES = {
    "Armature": "Root", "Hips": "J_Bip_C_Hips", "Spine": "J_Bip_C_Spine",
    "Chest": "J_Bip_C_Chest", "Neck": "J_Bip_C_Neck", "Head": "J_Bip_C_Head",
    "LeftEye": "J_Adj_L_FaceEye", "RightEye": "J_Adj_R_FaceEye", "HeadTop_End": "J_Sec_HeadTop",
    **{f"{s}{rpm}": f"J_Bip_{s[0]}_{vroid}" for s in ("Left", "Right") for rpm, vroid in (
        ("Shoulder", "Shoulder"), ("Arm", "UpperArm"), ("ForeArm", "LowerArm"),
        ("Hand", "Hand"), ("UpLeg", "UpperLeg"), ("Leg", "LowerLeg"), ("Foot", "Foot"))},
    "Wolf3D_Head": "Face", "Wolf3D_Body": "Body", "EyeLeft": "EyeIris_L",
    "EyeRight": "EyeIris_R", "Wolf3D_Skin": "N00_000_00_Face_00_SKIN (Instance)",
    "Wolf3D_Eye": "N00_000_00_EyeIris_00_EYE (Instance)",
    "Wolf3D_Outfit": "N00_001_01_Tops_01_CLOTH (Instance)",
}  # fmt: skip
# VRM humanoid bone -> RPM's name for it.
HUMAN_BONES = {
    "hips": "Hips", "spine": "Spine", "chest": "Chest", "neck": "Neck", "head": "Head",
    "leftEye": "LeftEye", "rightEye": "RightEye",
    **{f"{s}{vrm}": f"{S}{rpm}" for s, S in (("left", "Left"), ("right", "Right"))
       for vrm, rpm in (("Shoulder", "Shoulder"), ("UpperArm", "Arm"), ("LowerArm", "ForeArm"),
                        ("Hand", "Hand"), ("UpperLeg", "UpLeg"), ("LowerLeg", "Leg"),
                        ("Foot", "Foot"))},
}  # fmt: skip
# The face's targets (VRoid's names), the RPM shape each has, and the expressions they make:
# (target, RPM shape, VRM 1.0 preset, VRM 0.x presetName).
FACE = (
    ("Fcl_MTH_A", "viseme_aa", "aa", "A"),
    ("Fcl_MTH_I", "viseme_I", "ih", "I"),
    ("Fcl_MTH_U", "viseme_U", "ou", "U"),
    ("Fcl_MTH_E", "viseme_E", "ee", "E"),
    ("Fcl_MTH_O", "viseme_O", "oh", "O"),
    ("Fcl_EYE_Close", "eyesClosed", "blink", "Blink"),
    ("Fcl_EYE_Close_L", "eyeBlinkLeft", "blinkLeft", "Blink_L"),
    ("Fcl_EYE_Close_R", "eyeBlinkRight", "blinkRight", "Blink_R"),
    ("Fcl_ALL_Joy", "mouthSmile", "happy", "Joy"),
    ("Fcl_ALL_Angry", "", "angry", "Angry"),
    ("Fcl_ALL_Sorrow", "", "sad", "Sorrow"),
    ("Fcl_ALL_Fun", "", "relaxed", "Fun"),
    ("Fcl_ALL_Surprised", "", "surprised", "Surprised"),
)
TARGETS = tuple(row[0] for row in FACE)
# (lit colour, shade colour) per material, linear RGB.
TOON = {
    "Wolf3D_Skin": ((0.85, 0.62, 0.5), (0.7, 0.42, 0.38)),
    "Wolf3D_Eye": ((1.0, 1.0, 1.0), (0.8, 0.8, 0.85)),
    "Wolf3D_Outfit": ((0.2, 0.3, 0.5), (0.1, 0.14, 0.3)),
    "Hair": ((0.16, 0.08, 0.04), (0.08, 0.04, 0.03)),
}
# The ponytail: from the back of the skull (head bone space, the face along +Z), then each
# link's offset from the one before; the last node is only the chain's tail.
PONYTAIL = ((0.0, 0.15, -0.095), *((0.0, -0.045, -0.022),) * 4)
HAIR_RADII = (0.026, 0.024, 0.02, 0.015, 0.008)  # the tube's, at each node
# Spring settings (VRoid's hair defaults are near these) and the head's collider sphere.
SPRING = {"stiffness": 1.0, "gravityPower": 0.3, "dragForce": 0.4, "hitRadius": 0.02}
SKULL = ((0.0, 0.11, 0.0), 0.09)  # offset from the head bone, radius
# MToon outlines, as VRoid draws its hair and clothes: world width (metres), linear colour.
OUTLINED = ("Hair", "Wolf3D_Outfit")
OUTLINE_WIDTH, OUTLINE_COLOR = 0.002, (0.05, 0.03, 0.03)
LOOK_RANGE = (60.0, 30.0)  # degrees of gaze (input) -> degrees the eye bones turn (output)
META_AUTHOR = "AvatarKit for Python (assets/test/make_vrm_heads.py)"


def _head(facing: float) -> tuple[GltfBuilder, dict[str, int]]:
    b = GltfBuilder()
    b.doc.asset.generator = "assets/test/make_vrm_heads.py"
    found = build_head(
        b,
        names=NAMES,
        targets=TARGETS,
        shapes={target: shape for target, shape, _, _ in FACE if shape},
        facing=facing,
        chest=True,
        leg_joints=3,
    )
    _ponytail(b, found, facing)
    return b, found


def _ponytail(b: GltfBuilder, found: dict[str, int], facing: float) -> None:
    """The chain of hair bones under the head (``found["Hair1"]`` ... the tail) and a
    tapered tube skinned to them (its own skin: ring k follows bone k)."""
    flip = np.array([facing, 1.0, facing])
    parent = found["Head"]
    chain = []
    for k, step in enumerate(PONYTAIL):
        parent = b.add_node(
            f"J_Sec_Hair1_{k + 1:02d}", translation=np.asarray(step) * flip, parent=parent
        )
        chain.append(parent)
        found[f"Hair{k + 1}"] = parent
    points = (np.array([0.0, 1.55, 0.0]) + np.cumsum(PONYTAIL, axis=0)) * flip  # model space
    rings, segments, sub = [], 10, 3  # sub rings per link: a smooth bend
    for k in range(len(points) - 1):
        for t in np.arange(sub) / sub:
            rings.append((k, t))
    rings.append((len(points) - 2, 1.0))
    positions, normals, joints, weights = [], [], [], []
    angle = 2 * np.pi * np.arange(segments) / segments
    for k, t in rings:
        along = points[k + 1] - points[k]
        along /= np.linalg.norm(along)
        u = np.cross(along, [1.0, 0.0, 0.0])
        u /= np.linalg.norm(u)
        v = np.cross(along, u)
        radius = (1 - t) * HAIR_RADII[k] + t * HAIR_RADII[k + 1]
        out = np.cos(angle)[:, None] * u + np.sin(angle)[:, None] * v
        positions.append((1 - t) * points[k] + t * points[k + 1] + radius * out)
        normals.append(out)
        joints.append(np.tile([k, k + 1, 0, 0], (segments, 1)))
        weights.append(np.tile([1 - t, t, 0.0, 0.0], (segments, 1)))
    indices = []
    for r in range(len(rings) - 1):
        for j in range(segments):
            a, b_ = r * segments + j, r * segments + (j + 1) % segments
            indices += [a, b_, a + segments, b_, b_ + segments, a + segments]
    hair = b.add_material((*TOON["Hair"][0], 1.0), name="N00_000_Hair_00_HAIR (Instance)")
    found["Hair"] = hair
    mesh = b.add_mesh(
        [
            {
                "positions": np.concatenate(positions).astype(np.float32),
                "normals": np.concatenate(normals).astype(np.float32),
                "indices": np.array(indices, np.uint32),
                "joints": np.concatenate(joints).astype(np.uint16),
                "weights": np.concatenate(weights).astype(np.float32),
                "material": hair,
            }
        ],
        "Hair001",
    )
    skin = b.add_skin(chain, "HairSkin", skeleton=chain[0])
    found["Hair001"] = b.add_node("Hair001", mesh=mesh, skin=skin, parent=found["Armature"])


def _springs(found: dict[str, int]) -> dict[str, Any]:
    """``VRMC_springBone`` 1.0: the ponytail's chain, the skull its collider."""
    offset, radius = SKULL
    hair = [found[f"Hair{k + 1}"] for k in range(len(PONYTAIL))]
    return {
        "specVersion": "1.0",
        "colliders": [
            {"node": found["Head"], "shape": {"sphere": {"offset": list(offset), "radius": radius}}}
        ],
        "colliderGroups": [{"name": "Head", "colliders": [0]}],
        "springs": [
            {
                "name": "Hair1",
                "joints": [{"node": n, **SPRING, "gravityDir": [0.0, -1.0, 0.0]} for n in hair],
                "colliderGroups": [0],
            }
        ],
    }


def _secondary(found: dict[str, int]) -> dict[str, Any]:
    """VRM 0.x ``secondaryAnimation``: the same spring, the ponytail's root its bone group's
    (offsets in Unity's space: z turned; the skull's has none)."""
    (x, y, z), radius = SKULL
    return {
        "boneGroups": [
            {
                "comment": "Hair1",
                "stiffiness": SPRING["stiffness"],  # sic: UniVRM's spelling
                "gravityPower": SPRING["gravityPower"],
                "gravityDir": {"x": 0.0, "y": -1.0, "z": 0.0},
                "dragForce": SPRING["dragForce"],
                "center": -1,
                "hitRadius": SPRING["hitRadius"],
                "bones": [found["Hair1"]],
                "colliderGroups": [0],
            }
        ],
        "colliderGroups": [
            {
                "node": found["Head"],
                "colliders": [{"offset": {"x": x, "y": y, "z": -z}, "radius": radius}],
            }
        ],
    }


def _use(b: GltfBuilder, name: str) -> None:
    b.doc.extensionsUsed = sorted({*(b.doc.extensionsUsed or []), name})


def _range(output: float) -> dict[str, float]:
    return {"inputMaxValue": LOOK_RANGE[0], "outputScale": output}


def build_vrm1(path: Path = HERE / "vrm1_head.vrm") -> Path:
    b, found = _head(1.0)
    face = found["Wolf3D_Head"]
    preset: dict[str, Any] = {
        vrm1: {
            "morphTargetBinds": [{"node": face, "index": t, "weight": 1.0}],
            "isBinary": False,
            "overrideBlink": "block" if vrm1 in ("happy", "angry", "sad", "surprised") else "none",
            "overrideLookAt": "none",
            "overrideMouth": "block" if vrm1 == "happy" else "none",
        }
        for t, (_, _, vrm1, _) in enumerate(FACE)
    }
    b.doc.extensions = {
        "VRMC_vrm": {
            "specVersion": "1.0",
            "meta": {
                "name": "AvatarKit VRM 1.0 test head",
                "version": "1.0.0",
                "authors": [META_AUTHOR],
                "copyrightInformation": "generated; public domain (CC0)",
                "licenseUrl": "https://vrm.dev/licenses/1.0/",
                "avatarPermission": "everyone",
                "allowExcessivelyViolentUsage": False,
                "allowExcessivelySexualUsage": False,
                "commercialUsage": "corporation",
                "allowPoliticalOrReligiousUsage": False,
                "allowAntisocialOrHateUsage": False,
                "creditNotation": "unnecessary",
                "allowRedistribution": True,
                "modification": "allowModificationRedistribution",
                "otherLicenseUrl": "https://creativecommons.org/publicdomain/zero/1.0/",
            },
            "humanoid": {
                "humanBones": {bone: {"node": found[rpm]} for bone, rpm in HUMAN_BONES.items()}
            },
            "firstPerson": {
                "meshAnnotations": [
                    {"node": found["Wolf3D_Head"], "type": "thirdPersonOnly"},
                    {"node": found["Wolf3D_Body"], "type": "auto"},
                ]
            },
            "lookAt": {
                "offsetFromHeadBone": [0.0, 0.13, 0.08],
                "type": "bone",
                "rangeMapHorizontalInner": _range(LOOK_RANGE[1]),
                "rangeMapHorizontalOuter": _range(LOOK_RANGE[1]),
                "rangeMapVerticalDown": _range(LOOK_RANGE[1]),
                "rangeMapVerticalUp": _range(LOOK_RANGE[1]),
            },
            "expressions": {"preset": preset},
        },
        "VRMC_springBone": _springs(found),
    }
    _use(b, "VRMC_vrm")
    _use(b, "VRMC_springBone")
    for rpm, (lit, shade) in TOON.items():
        material = b.doc.materials[found[rpm]]
        material.extensions = {
            "VRMC_materials_mtoon": {
                "specVersion": "1.0",
                "transparentWithZWrite": False,
                "renderQueueOffsetNumber": 0,
                "shadeColorFactor": list(shade),
                "shadingShiftFactor": -0.1,
                "shadingToonyFactor": 0.9,
                "giEqualizationFactor": 0.9,
                "matcapFactor": [0.0, 0.0, 0.0],
                "parametricRimColorFactor": [0.0, 0.0, 0.0],
                "parametricRimFresnelPowerFactor": 5.0,
                "parametricRimLiftFactor": 0.0,
                "rimLightingMixFactor": 1.0,
                "outlineWidthMode": "worldCoordinates" if rpm in OUTLINED else "none",
                "outlineWidthFactor": OUTLINE_WIDTH if rpm in OUTLINED else 0.0,
                "outlineColorFactor": list(OUTLINE_COLOR),
                "outlineLightingMixFactor": 1.0,
                "uvAnimationScrollXSpeedFactor": 0.0,
                "uvAnimationScrollYSpeedFactor": 0.0,
                "uvAnimationRotationSpeedFactor": 0.0,
            }
        }
        material.pbrMetallicRoughness.baseColorFactor = [*lit, 1.0]
    _use(b, "VRMC_materials_mtoon")
    return b.save(path)


def _curve(y_range: float) -> dict[str, Any]:
    # VRM 0.x: a curve of keyframes (time, value, in-tangent, out-tangent) x 2, linear.
    return {"curve": [0, 0, 0, 1, 1, 1, 1, 0], "xRange": LOOK_RANGE[0], "yRange": y_range}


def _srgb(c: tuple[float, ...]) -> list[float]:
    return [round(v ** (1 / 2.2), 4) for v in c] + [1.0]  # Unity colours are sRGB


def build_vrm0(path: Path = HERE / "vrm0_head.vrm") -> Path:
    b, found = _head(-1.0)
    face = b.doc.nodes[found["Wolf3D_Head"]].mesh
    groups = [
        {
            "name": vrm0,
            # 0.x has no "surprised" preset: a custom group, found by its name
            "presetName": "unknown" if vrm0 == "Surprised" else vrm0.lower(),
            "binds": [{"mesh": face, "index": t, "weight": 100}],
            "materialValues": [],
            "isBinary": False,
        }
        for t, (_, _, _, vrm0) in enumerate(FACE)
    ]
    materials = []
    for rpm, (lit, shade) in TOON.items():
        materials.append(
            {
                "name": b.doc.materials[found[rpm]].name,
                "shader": "VRM/MToon",
                "renderQueue": 2000,
                "floatProperties": {
                    "_Cutoff": 0.5,
                    "_BumpScale": 1.0,
                    "_ShadeShift": -0.1,
                    "_ShadeToony": 0.9,
                    "_ReceiveShadowRate": 1.0,
                    "_ShadingGradeRate": 1.0,
                    "_LightColorAttenuation": 0.0,
                    "_IndirectLightIntensity": 0.1,
                    "_RimLightingMix": 0.0,
                    "_RimFresnelPower": 1.0,
                    "_RimLift": 0.0,
                    "_OutlineWidth": OUTLINE_WIDTH * 100 if rpm in OUTLINED else 0.0,  # cm
                    "_OutlineScaledMaxDistance": 1.0,
                    "_OutlineLightingMix": 1.0,
                    "_UvAnimScrollX": 0.0,
                    "_UvAnimScrollY": 0.0,
                    "_UvAnimRotation": 0.0,
                    "_MToonVersion": 38.0,
                    "_DebugMode": 0.0,
                    "_BlendMode": 0.0,
                    "_OutlineWidthMode": 1.0 if rpm in OUTLINED else 0.0,
                    "_OutlineColorMode": 0.0,
                    "_CullMode": 2.0,
                    "_OutlineCullMode": 1.0,
                    "_SrcBlend": 1.0,
                    "_DstBlend": 0.0,
                    "_ZWrite": 1.0,
                },  # fmt: skip
                "vectorProperties": {
                    "_Color": _srgb(lit),
                    "_ShadeColor": _srgb(shade),
                    "_MainTex": [0.0, 0.0, 1.0, 1.0],
                    "_RimColor": [0.0, 0.0, 0.0, 1.0],
                    "_EmissionColor": [0.0, 0.0, 0.0, 1.0],
                    "_OutlineColor": _srgb(OUTLINE_COLOR),
                },
                "textureProperties": {},
                "keywordMap": {},
                "tagMap": {"RenderType": "Opaque"},
            }
        )
        b.doc.materials[found[rpm]].pbrMetallicRoughness.baseColorFactor = [*lit, 1.0]
    b.doc.extensions = {
        "VRM": {
            "exporterVersion": "AvatarKit-make_vrm_heads",
            "specVersion": "0.0",
            "meta": {
                "title": "AvatarKit VRM 0.x test head",
                "version": "1.0.0",
                "author": META_AUTHOR,
                "contactInformation": "",
                "reference": "",
                "allowedUserName": "Everyone",
                "violentUssageName": "Disallow",  # sic: the 0.x schema's spelling
                "sexualUssageName": "Disallow",
                "commercialUssageName": "Allow",
                "otherPermissionUrl": "",
                "licenseName": "CC0",
                "otherLicenseUrl": "",
            },
            "humanoid": {
                "humanBones": [
                    {"bone": bone, "node": found[rpm], "useDefaultValues": True}
                    for bone, rpm in HUMAN_BONES.items()
                ],
                "armStretch": 0.05,
                "legStretch": 0.05,
                "upperArmTwist": 0.5,
                "lowerArmTwist": 0.5,
                "upperLegTwist": 0.5,
                "lowerLegTwist": 0.5,
                "feetSpacing": 0.0,
                "hasTranslationDoF": False,
            },
            "firstPerson": {
                "firstPersonBone": found["Head"],
                "firstPersonBoneOffset": {"x": 0.0, "y": 0.13, "z": -0.08},
                "meshAnnotations": [
                    {"mesh": b.doc.nodes[found[n]].mesh, "firstPersonFlag": flag}
                    for n, flag in (("Wolf3D_Head", "ThirdPersonOnly"), ("Wolf3D_Body", "Auto"))
                ],
                "lookAtTypeName": "Bone",
                "lookAtHorizontalInner": _curve(LOOK_RANGE[1]),
                "lookAtHorizontalOuter": _curve(LOOK_RANGE[1]),
                "lookAtVerticalDown": _curve(LOOK_RANGE[1]),
                "lookAtVerticalUp": _curve(LOOK_RANGE[1]),
            },
            "blendShapeMaster": {"blendShapeGroups": groups},
            "secondaryAnimation": _secondary(found),
            "materialProperties": materials,
        }
    }
    _use(b, "VRM")
    return b.save(path)


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    print(build_vrm1(out / "vrm1_head.vrm"), build_vrm0(out / "vrm0_head.vrm"))
