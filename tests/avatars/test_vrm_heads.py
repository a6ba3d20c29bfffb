"""The project's VRM 1.0 and VRM 0.x skinned heads (assets/test/make_vrm_heads.py): written
to the published specs, and through ``Avatar.from_file`` + ``AvatarView`` on real EGL they
nod, look with their eye bones, open the mouth and blink through their expressions alone
(VRoid-style ``Fcl_*`` targets, bound only by the extension), the VRM 0.x one (modelled
facing -Z) shown from the front."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assets.test.make_vrm_heads import FACE, HERE, build_vrm0, build_vrm1
from avatarkit.avatar import Avatar
from avatarkit.inspection import inspect_avatar
from engine.gltf_write import unpack_glb
from tests.avatars.test_skinned_head import _settle, framed_view

FILES = {"VRM 1.0": HERE / "vrm1_head.vrm", "VRM 0.x": HERE / "vrm0_head.vrm"}
SIZE = (128, 128)
VRM1_PRESETS = {
    "happy", "angry", "sad", "relaxed", "surprised", "aa", "ih", "ou", "ee", "oh", "blink",
    "blinkLeft", "blinkRight", "lookUp", "lookDown", "lookLeft", "lookRight", "neutral",
}  # fmt: skip
VRM0_PRESETS = {
    "unknown", "neutral", "a", "i", "u", "e", "o", "blink", "joy", "angry", "sorrow", "fun",
    "lookup", "lookdown", "lookleft", "lookright", "blink_l", "blink_r",
}  # fmt: skip
# Bones both specs require, plus those the motion turns.
REQUIRED = {
    "hips", "spine", "head", "leftUpperArm", "leftLowerArm", "leftHand", "rightUpperArm",
    "rightLowerArm", "rightHand", "leftUpperLeg", "leftLowerLeg", "leftFoot", "rightUpperLeg",
    "rightLowerLeg", "rightFoot", "chest", "neck", "leftEye", "rightEye",
}  # fmt: skip
ids = list(FILES)


def _doc(which: str) -> dict:
    doc, _ = unpack_glb(FILES[which].read_bytes())
    return doc


def test_the_files_are_current_small_and_deterministic(tmp_path):
    for build, name in ((build_vrm1, "vrm1_head.vrm"), (build_vrm0, "vrm0_head.vrm")):
        fresh = build(tmp_path / name).read_bytes()
        assert fresh == (HERE / name).read_bytes(), f"{name} is stale: run make_vrm_heads.py"
        assert len(fresh) < 1_000_000


def test_vrm1_follows_the_vrmc_vrm_schema():
    doc = _doc("VRM 1.0")
    vrm = doc["extensions"]["VRMC_vrm"]
    assert vrm["specVersion"] == "1.0" and "VRMC_vrm" in doc["extensionsUsed"]
    meta = vrm["meta"]
    assert meta["name"] and meta["authors"] and meta["licenseUrl"].startswith("https://vrm.dev")
    assert meta["avatarPermission"] in ("onlyAuthor", "onlySeparatelyLicensedPerson", "everyone")
    assert meta["commercialUsage"] in ("personalNonProfit", "personalProfit", "corporation")
    assert meta["modification"] in (
        "prohibited", "allowModification", "allowModificationRedistribution"
    )  # fmt: skip
    bones = vrm["humanoid"]["humanBones"]
    assert REQUIRED <= set(bones)
    assert len({b["node"] for b in bones.values()}) == len(bones)  # one node per bone
    joints = set(doc["skins"][0]["joints"])
    assert {b["node"] for b in bones.values()} <= joints
    presets = vrm["expressions"]["preset"]
    assert set(presets) <= VRM1_PRESETS
    assert {"aa", "ih", "ou", "ee", "oh", "blink", "blinkLeft", "blinkRight", "happy"} <= set(
        presets
    )
    for expression in presets.values():
        for bind in expression["morphTargetBinds"]:
            mesh = doc["meshes"][doc["nodes"][bind["node"]]["mesh"]]
            assert 0 <= bind["index"] < len(mesh["primitives"][0]["targets"])
            assert 0.0 <= bind["weight"] <= 1.0
        assert expression["overrideBlink"] in ("none", "block", "blend")
    look = vrm["lookAt"]
    assert look["type"] == "bone" and len(look["offsetFromHeadBone"]) == 3
    for key in ("HorizontalInner", "HorizontalOuter", "VerticalDown", "VerticalUp"):
        assert set(look["rangeMap" + key]) == {"inputMaxValue", "outputScale"}
    assert all(
        m["extensions"]["VRMC_materials_mtoon"]["specVersion"] == "1.0" for m in doc["materials"]
    )
    springs = doc["extensions"]["VRMC_springBone"]
    assert springs["specVersion"] == "1.0" and "VRMC_springBone" in doc["extensionsUsed"]
    parents = _parents(doc)
    for spring in springs["springs"]:
        chain = [j["node"] for j in spring["joints"]]
        assert all(parents[c] == p for p, c in zip(chain, chain[1:], strict=False))  # a chain
        assert all(0 <= g < len(springs["colliderGroups"]) for g in spring["colliderGroups"])
    # The face looks along +Z: the eyes sit in front of the head bone.
    assert _eye_ahead(doc, bones["head"]["node"], bones["leftEye"]["node"]) > 0


def test_vrm0_follows_the_vrm_0x_schema():
    doc = _doc("VRM 0.x")
    vrm = doc["extensions"]["VRM"]
    assert vrm["specVersion"] == "0.0" and "VRM" in doc["extensionsUsed"]
    assert vrm["meta"]["title"] and vrm["meta"]["licenseName"] == "CC0"
    assert vrm["meta"]["allowedUserName"] in ("OnlyAuthor", "ExplicitlyLicensedPerson", "Everyone")
    bones = {b["bone"]: b["node"] for b in vrm["humanoid"]["humanBones"]}
    assert REQUIRED <= set(bones) and len(set(bones.values())) == len(bones)
    groups = vrm["blendShapeMaster"]["blendShapeGroups"]
    assert {g["presetName"] for g in groups} <= VRM0_PRESETS
    assert {"a", "i", "u", "e", "o", "blink", "blink_l", "blink_r", "joy"} <= {
        g["presetName"] for g in groups
    }
    for group in groups:
        for bind in group["binds"]:
            assert 0 <= bind["index"] < len(doc["meshes"][bind["mesh"]]["primitives"][0]["targets"])
            assert 0 <= bind["weight"] <= 100  # 0.x weights run 0..100
    first = vrm["firstPerson"]
    assert first["firstPersonBone"] == bones["head"] and first["lookAtTypeName"] == "Bone"
    for key in ("HorizontalInner", "HorizontalOuter", "VerticalDown", "VerticalUp"):
        curve = first["lookAt" + key]
        assert len(curve["curve"]) == 8 and {"xRange", "yRange"} <= set(curve)
    names = [m["name"] for m in doc["materials"]]
    props = vrm["materialProperties"]
    assert [p["name"] for p in props] == names and {p["shader"] for p in props} == {"VRM/MToon"}
    secondary = vrm["secondaryAnimation"]
    for group in secondary["boneGroups"]:
        assert {"stiffiness", "gravityPower", "gravityDir", "dragForce", "bones"} <= set(group)
        assert all(0 <= g < len(secondary["colliderGroups"]) for g in group["colliderGroups"])
    # The face looks along -Z, as every VRM 0.x model does.
    assert _eye_ahead(doc, bones["head"], bones["leftEye"]) < 0
    # The avatar's left eye is on its left: -X when it faces -Z.
    assert _world_x(doc, bones["leftEye"]) < 0 < _world_x(doc, bones["rightEye"])


def _parents(doc: dict) -> dict[int, int]:
    return {c: i for i, n in enumerate(doc["nodes"]) for c in n.get("children", [])}


def _world(doc: dict, node: int) -> np.ndarray:
    parents, at = _parents(doc), np.zeros(3)
    while True:  # our files: translations only
        at = at + np.array(doc["nodes"][node].get("translation", [0, 0, 0]))
        if node not in parents:
            return at
        node = parents[node]


def _eye_ahead(doc: dict, head: int, eye: int) -> float:
    return float(_world(doc, eye)[2] - _world(doc, head)[2])


def _world_x(doc: dict, node: int) -> float:
    return float(_world(doc, node)[0])


@pytest.mark.parametrize("which", ids)
def test_inspect_reports_channels_and_bones(which):
    report = inspect_avatar(FILES[which])
    text = "\n".join(report.lines())
    assert "Face: 1 primitive(s), 13 morph targets (13 VRM-bind)" in text
    assert report.blend is not None
    assert {"jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthFunnel", "mouthSmileLeft"} <= set(
        report.blend.available_channels
    )
    assert report.bones == {
        "head": "J_Bip_C_Head",
        "neck": "J_Bip_C_Neck",
        "leftEye": "J_Adj_L_FaceEye",
        "rightEye": "J_Adj_R_FaceEye",
    }
    assert "bones: head J_Bip_C_Head, neck J_Bip_C_Neck" in text
    joints = {"VRM 1.0": 4, "VRM 0.x": 5}[which]
    assert f"note: spring bones (simulated): {joints} joints, 1 collider(s)" in text
    # The gaze turns the eye bones: its eyeLook* channels are not reported missing.
    missing = next(line for line in text.splitlines() if line.startswith("  missing:"))
    assert "eyeLook" not in missing and "eyeSquintLeft" in missing
    assert "  by eye bones: eyeLookDownLeft, eyeLookInLeft" in text
    assert json.loads(json.dumps(report.to_json()))["bones"]["leftEye"] == "J_Adj_L_FaceEye"
    assert report.framing is not None and report.framing.extra["anchor"] == "eyes"
    assert report.framing.head_center[2] > 0  # in front of the head: the face seen, not the back


@pytest.fixture(params=ids)
def vrm_view(request, make_headless_app):
    """An AvatarView of one VRM head (idle off), framed on the face; yields (app, view)."""
    yield from framed_view(make_headless_app, FILES[request.param])


def _pupils(image: np.ndarray) -> np.ndarray:
    """(x, y) centroid of the dark pupil pixels above the mouth (a nod lowers them)."""
    dark = image[: image.shape[0] * 6 // 10].max(axis=-1) < 50
    rows, cols = np.nonzero(dark)
    assert len(cols) > 4, "no pupils in view"
    return np.array([cols.mean(), rows.mean()])


def _turned_by(view, name: str) -> float:
    index = next(i for i, n in enumerate(view.model.asset.nodes) if n.name == name)
    rest_q = view.model.asset.nodes[index].transform.rotation
    q = view.model.nodes[index].rotation
    return float(2 * np.arccos(min(1.0, abs(float(np.dot(q, rest_q))))))


def test_the_head_bone_nods_and_turns(vrm_view):
    """The humanoid's head and neck bones carry the head pose: the pupils (seen from the
    front, the VRM 0.x model included) move right for a yaw towards the avatar's +X
    side and down for a nod."""
    app, view = vrm_view
    rest = _settle(app, 3)
    assert view._bones is not None and view._bones.facing == 1.0
    view.look_at(0.5, head=1.0)
    turned = _settle(app)
    dx, _ = _pupils(turned) - _pupils(rest)
    assert dx > 4, dx
    assert _turned_by(view, "J_Bip_C_Head") > 0.2 and _turned_by(view, "J_Bip_C_Neck") > 0.1
    view.look_at(0.0, -0.25, head=1.0)  # pitch down: a nod
    nodded = _settle(app)
    _, dy = _pupils(nodded) - _pupils(rest)
    assert dy > 3, dy


def test_the_ponytail_swings_on_its_spring_bones(vrm_view):
    """The hair chain (``VRMC_springBone`` / ``secondaryAnimation``) lags a turn of the
    head, then settles again behind it: its bones turn away from rest while the head
    moves, the chain's joints staying on the head."""
    app, view = vrm_view
    assert view._springs is not None
    # The 1.0 chain's last node is only its tail; 0.x makes it a joint with a virtual one.
    assert len(view._springs.joints) == {"VRM 1.0": 4, "VRM 0.x": 5}[_version(view)]
    _settle(app, 30)
    still = _turned_by(view, "J_Sec_Hair1_02")
    view.look_at(0.8, head=1.0)
    _settle(app, 4)
    swinging = _turned_by(view, "J_Sec_Hair1_02")
    assert swinging > still + 0.05, (still, swinging)
    _settle(app, 90)
    assert abs(_turned_by(view, "J_Sec_Hair1_02") - still) < 0.02


def _version(view) -> str:
    return "VRM 1.0" if "VRMC_vrm" in view.model.asset.extensions else "VRM 0.x"


def test_the_eye_bones_follow_the_gaze(vrm_view):
    """The humanoid's eye bones carry the gaze, as far as the file's lookAt range maps say
    (60 degrees of gaze turn the eyes 30: half), and the head stays still."""
    app, view = vrm_view
    rest = _settle(app, 3)
    assert view._bones.look is not None
    view.look_at(1.0, 0.0, head=0.0)
    looked = _settle(app)
    dx, _ = _pupils(looked) - _pupils(rest)
    assert dx > 1.5, dx
    reached = abs(float(view.pose.gaze[0]))  # the gaze's yaw is + to the avatar's right
    assert reached > 0.9
    assert _turned_by(view, "J_Adj_L_FaceEye") == pytest.approx(reached / 2, abs=0.01)
    assert _turned_by(view, "J_Bip_C_Head") < 1e-3
    view.look_at(0.0, 0.7, head=0.0)  # up
    _, dy = _pupils(_settle(app)) - _pupils(rest)
    assert dy < -1, dy


def _weight(view, target: str) -> float:
    return float(view.model.weights[view.model.target_names.index(target)])


def test_the_mouth_opens_through_the_aa_expression(vrm_view):
    """An open jaw (as speech makes it) reaches the Fcl_MTH_A target through the ``aa`` /
    ``A`` bind alone, and the chin below the mouth moves on screen."""
    app, view = vrm_view
    rest = _settle(app, 3)
    view.set_expression({"jawOpen": 0.6}, fade_s=0.0)
    opened = _settle(app, 3)
    assert _weight(view, "Fcl_MTH_A") > 0.9
    h = SIZE[1]
    lower = np.abs(opened - rest).max(axis=-1)[h // 2 :]  # the lower half: mouth and chin
    upper = np.abs(opened - rest).max(axis=-1)[: h // 3]
    assert (lower > 20).sum() > 15, (lower > 20).sum()
    assert (upper > 20).sum() == 0  # the eyes stay as they were
    view.set_expression({"mouthFunnel": 0.7, "jawOpen": 0.1}, fade_s=0.0)
    _settle(app, 3)
    assert _weight(view, "Fcl_MTH_U") > 0.5  # a rounded, nearly closed mouth is ``ou``


def test_a_blink_closes_both_eyes(vrm_view):
    """Blinks bind to Fcl_EYE_Close_L/_R (``blinkLeft``/``blinkRight``, 0.x ``Blink_L``/
    ``_R``): the lids cover the pupils; the both-eyes ``blink`` stays off (no double close)."""
    app, view = vrm_view
    rest = _settle(app, 3)
    dark = lambda img: (img[: SIZE[1] // 2].max(axis=-1) < 50).sum()  # noqa: E731
    assert dark(rest) > 8
    view.set_expression({"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0}, fade_s=0.0)
    closed = _settle(app, 3)
    assert _weight(view, "Fcl_EYE_Close_L") == pytest.approx(1.0)
    assert _weight(view, "Fcl_EYE_Close_R") == pytest.approx(1.0)
    assert _weight(view, "Fcl_EYE_Close") == 0.0
    assert dark(closed) < dark(rest) / 4, (dark(closed), dark(rest))


def test_every_mouth_and_blink_target_is_bound():
    """Each Fcl_* shape the face models is bound to its expression in both files."""
    modelled = {target for target, shape, _, _ in FACE if shape}
    for path in FILES.values():
        blend = Avatar.from_file(path).blendshape_map
        driven = {b.target_name for bindings in blend.bindings.values() for b in bindings}
        assert modelled - {"Fcl_EYE_Close"} <= driven  # blink: covered per side


def test_the_contact_sheet_turns_the_head_bone(make_headless_app):
    """On a skinned head the sheet's "head turned" cell turns the head and neck bones, as
    a view does: the head moves, the shoulders below stay."""
    from avatarkit.contact_sheet import POSES, render_poses

    make_headless_app(size=(16, 16)).close()  # skips where there is no EGL
    cells = render_poses(Avatar.from_file(FILES["VRM 0.x"]), (96, 96))
    labels = [label for label, _ in POSES]
    neutral = cells[labels.index("neutral")].astype(int)
    turned = cells[labels.index("head turned")].astype(int)
    changed = np.abs(turned - neutral).max(axis=-1) > 20
    assert changed[:48].mean() > 0.02  # the head
    assert changed[-8:].mean() < 0.1  # the shoulders at the bottom edge (0.28 turned whole)


def test_a_vrm0_model_is_turned_once_to_face_plus_z():
    """``face_forward`` turns a VRM 0.x asset's roots half round (TRS or matrix roots),
    once; a VRM 1.0 or plain glTF asset is left as it is. The turned file's eyes then sit
    in front of its head (+Z), with the avatar's left eye on +X, as a glTF avatar's."""
    from avatarkit.vrm0 import face_forward, faces_back
    from engine import load_gltf

    asset = load_gltf(FILES["VRM 0.x"])
    before = asset.world_matrices()
    assert faces_back(asset) and face_forward(asset) and not faces_back(asset)
    assert not face_forward(asset)  # once only
    after = asset.world_matrices()
    head, left = (asset.find_node(n) for n in ("J_Bip_C_Head", "J_Adj_L_FaceEye"))
    assert after[left][2, 3] > after[head][2, 3] and after[left][0, 3] > 0
    np.testing.assert_allclose(after[left][:3, 3], before[left][:3, 3] * [-1, 1, -1], atol=1e-6)
    root = asset.roots[0]
    asset.nodes[root].transform.matrix = np.eye(4, dtype=np.float32)  # a matrix root
    delattr(asset, "_avatarkit_vrm0_turned")
    assert face_forward(asset)
    np.testing.assert_allclose(asset.nodes[root].transform.matrix, np.diag([-1, 1, -1, 1]))
    vrm1 = load_gltf(FILES["VRM 1.0"])
    assert not face_forward(vrm1) and not faces_back(vrm1)


def test_range_maps_turn_each_eye_by_its_direction():
    """Inner (towards the nose) and outer maps differ per eye; up and down; a gaze past
    the input range stops at the output; VRM 0.x curves shape the map; malformed maps
    (wrong types, zero input, a curve going back in time) fall back safely."""
    import copy
    import math

    from avatarkit.look_range import look_range
    from engine import load_gltf

    asset = load_gltf(FILES["VRM 1.0"])
    look = copy.deepcopy(asset.extensions["VRMC_vrm"]["lookAt"])
    look["rangeMapHorizontalInner"] = {"inputMaxValue": 40.0, "outputScale": 10.0}
    look["rangeMapHorizontalOuter"] = {"inputMaxValue": 40.0, "outputScale": 20.0}
    look["rangeMapVerticalUp"] = {"inputMaxValue": 30.0, "outputScale": 6.0}
    asset.extensions = {"VRMC_vrm": {**asset.extensions["VRMC_vrm"], "lookAt": look}}
    ranges = look_range(asset)
    assert ranges is not None
    deg = math.radians
    # 20 degrees to the avatar's right: inward for the left eye, outward for the right one.
    assert ranges.eye("left", deg(20), 0.0)[0] == pytest.approx(deg(5))
    assert ranges.eye("right", deg(20), 0.0)[0] == pytest.approx(deg(10))
    assert ranges.eye("left", -deg(20), 0.0)[0] == pytest.approx(-deg(10))
    assert ranges.eye("left", deg(80), 0.0)[0] == pytest.approx(deg(10))  # clamped
    assert ranges.eye("left", 0.0, deg(15))[1] == pytest.approx(deg(3))
    look["type"] = "expression"
    assert look_range(asset) is None  # the eyes look by expressions, not bones
    look["type"] = "bone"
    for bad in ({"inputMaxValue": 0, "outputScale": 5}, {"inputMaxValue": "x"}, None):
        look["rangeMapVerticalDown"] = bad
        assert look_range(asset) is None
    vrm0 = load_gltf(FILES["VRM 0.x"])
    first = vrm0.extensions["VRM"]["firstPerson"]
    first["lookAtHorizontalOuter"]["curve"] = [0, 0, 0, 0, 0.5, 0.8, 0, 0, 1, 1, 0, 0]
    ranges = look_range(vrm0)
    assert ranges is not None  # 60 degrees in, 30 out; halfway along the curve is 0.8
    assert ranges.eye("right", deg(30), 0.0)[0] == pytest.approx(deg(24))
    first["lookAtHorizontalOuter"]["curve"] = [1, 1, 0, 0, 0, 0, 0, 0]  # back in time
    assert look_range(vrm0).eye("right", deg(30), 0.0)[0] == pytest.approx(deg(15))


def test_the_load_warning_leaves_out_what_the_eye_bones_show(caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="avatarkit.avatar"):
        Avatar.from_file(FILES["VRM 1.0"])
    (warning,) = [r.getMessage() for r in caplog.records if "move nothing" in r.getMessage()]
    assert warning.startswith("vrm1_head.vrm: 29/52 ARKit channels move nothing")
    assert "eyeLook" not in warning and "tongueOut" in warning
