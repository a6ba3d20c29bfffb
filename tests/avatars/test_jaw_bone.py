"""A face that opens its mouth with a jaw bone, not morph targets (Character Creator,
Rigify, Unreal and many game rigs): the bone is found by the VRM humanoid map or by name,
``jawOpen`` turns it down (``JAW_RANGE``), the lower face opens on real EGL pixels, and a
face whose morph targets open the jaw leaves the bone alone (never both)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from avatarkit.avatar import Avatar
from avatarkit.bones import JAW_RANGE, BoneRig, channels_by_bones
from avatarkit.inspection import inspect_avatar
from engine.gltf_write import GltfBuilder
from engine.meshes import uv_sphere

CENTRE, RADIUS = np.array([0.0, 1.6, 0.0]), 0.1
HINGE = np.array([0.0, 1.59, -0.07])  # the jaw turns about a point near the ears


def jaw_head(path: Path, jaw: str = "Jaw", humanoid: bool = False, morph: bool = False) -> Path:
    """A skinned sphere head: the front of its lower half carried by a jaw bone named
    ``jaw`` (``humanoid``: mapped by a ``VRMC_vrm`` humanoid; ``morph``: it also has a
    ``jawOpen`` morph target)."""
    b = GltfBuilder()
    root = b.add_node("Armature")
    neck = b.add_node("Neck", translation=(0, 1.45, 0), parent=root)
    head = b.add_node("Head", translation=(0, 0.05, 0), parent=neck)
    jaw_node = b.add_node(jaw, translation=HINGE - [0, 1.5, 0], parent=head)
    b.add_node(f"{jaw}_end", translation=(0, -0.05, 0.08), parent=jaw_node)
    ball = uv_sphere(RADIUS, 24, 48)
    p = ball["positions"] + CENTRE
    lower = (p[:, 1] < 1.575) & (p[:, 2] > -0.05)
    n = len(p)
    joints = np.zeros((n, 4), np.uint16)
    joints[:, 0] = lower  # palette: 0 the head, 1 the jaw
    weights = np.zeros((n, 4), np.float32)
    weights[:, 0] = 1.0
    prim = dict(ball, positions=p.astype(np.float32), joints=joints, weights=weights)
    prim["material"] = b.add_material((0.85, 0.6, 0.5, 1.0), name="skin")
    if morph:
        delta = np.zeros_like(prim["positions"])
        delta[lower, 1] = -0.03
        prim["targets"] = [{"POSITION": delta, "NORMAL": None}]
    mesh = b.add_mesh([prim], "Face", ["jawOpen"] if morph else None)
    skin = b.add_skin([head, jaw_node], "Armature")
    b.add_node("Face", mesh=mesh, skin=skin, parent=root)
    if humanoid:
        b.doc.extensions = {
            "VRMC_vrm": {
                "specVersion": "1.0",
                "meta": {"name": "jaw", "authors": ["avatarkit tests"], "licenseUrl": "x"},
                "humanoid": {"humanBones": {"head": {"node": head}, "jaw": {"node": jaw_node}}},
            }
        }
        b.doc.extensionsUsed = ["VRMC_vrm"]
    return b.save(path)


def _rig(path: Path) -> tuple[BoneRig, Avatar]:
    avatar = Avatar.from_file(path)
    rig = BoneRig.find([n.transform.copy() for n in avatar.asset.nodes], avatar.asset)
    assert rig is not None
    return rig, avatar


@pytest.mark.parametrize(
    "name,humanoid",
    [("Jaw", False), ("CC_Base_JawRoot", False), ("FACIAL_C_Jaw", False), ("bone7", True)],
)
def test_the_jaw_bone_is_found(tmp_path, name, humanoid):
    rig, avatar = _rig(jaw_head(tmp_path / "j.glb", name, humanoid))
    assert rig.jaw is not None and avatar.asset.nodes[rig.jaw.node].name == name  # not _end
    assert "jawOpen" in channels_by_bones(avatar.asset)
    report = inspect_avatar(avatar.model_path)
    assert report.bones["jaw"] == name
    lines = report.lines()
    assert "  by the jaw bone: jawOpen" in lines
    assert not any(line.startswith("  missing") and "jawOpen" in line for line in lines)


def test_no_jaw_bone_without_one(tmp_path):
    rig, _ = _rig(jaw_head(tmp_path / "j.glb", "Chin"))
    assert rig.jaw is None


def test_jaw_open_turns_the_jaw_down(tmp_path):
    rig, avatar = _rig(jaw_head(tmp_path / "j.glb"))
    nodes = [n.transform.copy() for n in avatar.asset.nodes]
    rig.apply(nodes, np.zeros(3), np.zeros(2), 0.6)
    q = nodes[rig.jaw.node].rotation
    assert 2 * np.arccos(min(1.0, abs(float(q[3])))) == pytest.approx(0.6 * JAW_RANGE, abs=1e-5)
    # The chin in front of the hinge goes down (a nod's sign, as the head's pitch).
    from engine.skeleton import Skeleton

    world = Skeleton(avatar.asset).world(nodes)
    end = next(i for i, n in enumerate(avatar.asset.nodes) if n.name == "Jaw_end")
    rest = Skeleton(avatar.asset).world([n.transform.copy() for n in avatar.asset.nodes])
    assert world[end][1, 3] < rest[end][1, 3] - 0.01
    rig.apply(nodes, np.zeros(3), np.zeros(2), None)  # None: the jaw is left as it is
    assert nodes[rig.jaw.node].rotation == pytest.approx(q)


def test_the_load_warning_counts_the_jaw_as_shown(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="avatarkit"):
        Avatar.from_file(jaw_head(tmp_path / "j.glb"))
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "only the jaw bone opens the mouth" in warning and "will not move" not in warning


def _chin(image: np.ndarray) -> int:
    """The lowest row of the face in the middle columns (the background is blue-grey)."""
    w = image.shape[1]
    middle = image[:, w // 3 : 2 * w // 3, :3].astype(int)
    rows = np.nonzero((middle[..., 0] > middle[..., 2] + 5).any(axis=1))[0]
    return int(rows.max())


@pytest.mark.parametrize("morph", [False, True])
def test_a_view_opens_the_mouth_with_the_jaw_bone(tmp_path, make_headless_app, morph):
    """Through ``AvatarView`` on real EGL: the app's jawOpen drops the chin; with a jawOpen
    morph target the morph does it and the bone stays."""
    from tests.avatars.test_skinned_head import _settle, framed_view

    views = framed_view(make_headless_app, jaw_head(tmp_path / "v.glb", morph=morph))
    app, view = next(views)
    try:
        closed = _settle(app, 3)
        jaw = view._bones.jaw.node
        view.set_expression({"jawOpen": 0.8}, fade_s=0.0)
        opened = _settle(app, 3)
        turned = view.model.nodes[jaw].rotation
        rest = view.model.asset.nodes[jaw].transform.rotation
        assert _chin(opened) >= _chin(closed) + 3, (_chin(closed), _chin(opened))
        if morph:
            assert turned == pytest.approx(rest)  # never both
        else:
            assert not np.allclose(turned, rest)
    finally:
        views.close()
