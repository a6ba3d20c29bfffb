"""Skinned heads nod and look: the project's RPM-shaped avatar (assets/test/rpm_head.glb,
built by assets/test/make_rpm_head.py) through ``Avatar.from_file`` and ``AvatarView`` on
real EGL, and the bone lookup over the VRM 1.0 / 0.x humanoid maps and Mixamo names."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from assets.test.make_rpm_head import HERE, TARGETS
from avatarkit.avatar import Avatar
from avatarkit.bones import BoneRig
from engine import ModelRenderer, load_gltf
from tests.avatars.avatar_files import vrm1_humanoid, write_figure

RPM_HEAD = HERE / "rpm_head.glb"
SIZE = (128, 128)


def test_the_rpm_head_is_shaped_like_ready_player_me():
    asset = load_gltf(RPM_HEAD)
    names = [n.name for n in asset.nodes]
    for bone in ("Armature", "Hips", "Spine", "Neck", "Head", "LeftEye", "RightEye"):
        assert bone in names
    meshes = {m.name: m for m in asset.meshes}
    assert {"Wolf3D_Head", "Wolf3D_Body", "EyeLeft", "EyeRight"} <= set(meshes)
    assert meshes["Wolf3D_Head"].target_names == list(TARGETS)
    assert {"viseme_aa", "viseme_PP", "jawOpen", "eyeBlinkLeft", "mouthOpen"} <= set(TARGETS)
    assert all(n.skin == 0 for n in asset.nodes if n.mesh is not None)
    rig = BoneRig.find([n.transform.copy() for n in asset.nodes], asset)
    assert rig is not None
    assert rig.names == {
        "head": names.index("Head"),
        "neck": names.index("Neck"),
        "eyes": [names.index("LeftEye"), names.index("RightEye")],
        "jaw": None,  # RPM has none: its morph targets open the mouth
    }


@pytest.mark.parametrize("rig", ["mixamo", "rpm"])
def test_bones_are_found_by_their_names(tmp_path, rig):
    asset = load_gltf(write_figure(tmp_path / "f.glb", rig=rig))
    names = [n.name for n in asset.nodes]
    found = BoneRig.find([n.transform.copy() for n in asset.nodes], asset)
    assert found is not None
    prefix = "mixamorig:" if rig == "mixamo" else ""
    assert found.names["head"] == names.index(prefix + "Head")
    assert found.names["eyes"] == [
        names.index(prefix + "LeftEye"),
        names.index(prefix + "RightEye"),
    ]


def test_bones_come_from_the_vrm_humanoid_map(tmp_path):
    """VRM bone nodes have meaningless names (n1, n2, ...): only the humanoid map finds
    them. Both the 1.0 (VRMC_vrm) and the 0.x (VRM) layouts."""
    path = write_figure(tmp_path / "plain.glb", rig="vrm")
    asset = load_gltf(path)
    names = [n.name for n in asset.nodes]
    assert BoneRig.find([n.transform.copy() for n in asset.nodes], asset) is None  # no map
    head, left, right = (names.index(f"n{i}") for i in (2, 3, 4))
    bones = {"head": head, "leftEye": left, "rightEye": right}
    vrm1 = copy.copy(asset)
    vrm1.extensions = vrm1_humanoid(bones)
    rig = BoneRig.find([n.transform.copy() for n in asset.nodes], vrm1)
    assert rig is not None and rig.names["head"] == head and rig.names["eyes"] == [left, right]
    vrm0 = copy.copy(asset)
    vrm0.extensions = {
        "VRM": {"humanoid": {"humanBones": [{"bone": b, "node": n} for b, n in bones.items()]}}
    }
    rig = BoneRig.find([n.transform.copy() for n in asset.nodes], vrm0)
    assert rig is not None and rig.names["head"] == head and rig.names["eyes"] == [left, right]


def _pupils(image: np.ndarray) -> np.ndarray:
    """(x, y) centroid of the dark pupil pixels in the upper half of the picture."""
    upper = image[: image.shape[0] // 2]
    dark = upper.max(axis=-1) < 50
    rows, cols = np.nonzero(dark)
    assert len(cols) > 4, "no pupils in view"
    return np.array([cols.mean(), rows.mean()])


@pytest.fixture
def head_view(make_headless_app):
    """An AvatarView of the RPM head (idle off), framed on the face; yields (app, view)."""
    yield from framed_view(make_headless_app, RPM_HEAD)


def framed_view(make_headless_app, path: Path):
    """An AvatarView of the file at ``path`` (idle off) framed on the face, in an SDK
    with a virtual audio device; yields (app, view) and tears all of it down."""
    from avatarkit.sdk import AvatarSDK, Configuration
    from avatarkit.view import AvatarView

    AvatarSDK.initialize("skinned-head-test", Configuration(audio_device="virtual"))
    app = make_headless_app(size=SIZE, samples=0)
    try:
        view = app.scene.create_entity("head").add_component(
            AvatarView(Avatar.from_file(path), idle=False)
        )
        view.frame(app.scene.camera)
        yield app, view
        view.dispose()
    finally:
        app.close()
        AvatarSDK.cleanup()


def _settle(app, frames: int = 45) -> np.ndarray:
    for _ in range(frames):  # the look layer follows smoothly: ~1.5 s reaches the target
        app.step()
    return app.read_pixels().astype(int)


def test_head_pose_turns_the_head_bone(head_view):
    """A look done by the head alone turns the skinned head (its pupils go with it, to
    screen right for a yaw towards the avatar's +X), while the body below stays."""
    app, view = head_view
    rest = _settle(app, 3)
    view.look_at(0.5, head=1.0)
    turned = _settle(app)
    assert view._bones is not None and view._head_nodes == []  # bones, not the root
    dx, _ = _pupils(turned) - _pupils(rest)
    assert dx > 4, dx
    # The neck does NECK_SHARE of the turn, the head the rest (angles from the rest pose).
    from avatarkit.bones import NECK_SHARE

    def turned_by(name: str) -> float:
        index = next(i for i, n in enumerate(view.model.asset.nodes) if n.name == name)
        rest_q = view.model.asset.nodes[index].transform.rotation
        q = view.model.nodes[index].rotation
        return 2 * np.arccos(min(1.0, abs(float(np.dot(q, rest_q)))))

    reached = view.pose.head[1]  # the yaw the head layer reached (it follows smoothly)
    assert reached > 0.45
    assert turned_by("Neck") == pytest.approx(NECK_SHARE * reached, abs=1e-3)
    assert turned_by("Head") == pytest.approx((1 - NECK_SHARE) * reached, abs=1e-3)


def test_gaze_turns_the_eye_bones(head_view):
    """A look done by the eyes alone moves the pupils (the model's eyeLook targets move
    nothing: only the eye bones can), and the head outline stays where it was."""
    app, view = head_view
    rest = _settle(app, 3)
    view.look_at(0.5, 0.0, head=0.0)
    looked = _settle(app)
    dx, _ = _pupils(looked) - _pupils(rest)
    assert dx > 1.5, dx
    view.look_at(0.0, 0.5, head=0.0)  # up
    up = _settle(app)
    _, dy = _pupils(up) - _pupils(rest)
    assert dy < -1, dy
    silhouette = lambda img: np.abs(img - img[0:1, 0:1]).max(axis=-1) > 40  # noqa: E731
    assert (silhouette(looked) != silhouette(rest)).mean() < 0.01


def test_bind_pose_is_the_modelled_shape(make_headless_app):
    """Skinned at rest, the RPM head covers the pixels it covers drawn without its skin
    (its bind matrices are the inverse of the rest pose)."""
    asset = load_gltf(RPM_HEAD)
    bare = copy.copy(asset)
    bare.nodes = [copy.copy(n) for n in asset.nodes]
    for node in bare.nodes:
        node.skin = None
    app = make_headless_app(size=SIZE, samples=0)
    try:
        app.scene.camera.look_at((0.0, 1.5, 1.6), (0.0, 1.5, 0.0))
        images = []
        for which in (asset, bare):
            entity = app.scene.create_entity("m")
            entity.add_component(ModelRenderer(which))
            app.step()
            images.append(app.read_pixels().astype(int))
            entity.destroy()
    finally:
        app.close()
    assert np.abs(images[0] - images[1]).max(axis=-1).mean() < 0.5


def test_kiosk_takes_the_rpm_head_by_path():
    """The file is where the kiosk's ``--avatar PATH`` can open it, as a user's file."""
    avatar = Avatar.from_file(Path(RPM_HEAD))
    assert avatar.asset.skins and "jawOpen" in avatar.available_channels


def test_a_turn_is_about_the_model_axes_whatever_the_bone_roll():
    """Rigs roll their bones any way (Blender's Y-along-the-bone, VRoid's, ...) under an
    armature turned any way: the head still turns about the file's up axis (the avatar's
    own frame: glTF's Y up, face along +Z), its rest rotation kept."""
    from engine.gltf_asset import GltfAsset, GltfNode, GltfSkin
    from engine.skeleton import Skeleton
    from engine.transform import Transform, quat_from_euler, quat_to_matrix

    rolled = quat_from_euler(0.7, -0.4, 1.2)
    nodes = [
        GltfNode("Armature", Transform(rotation=quat_from_euler(roll=np.pi / 2)), [1]),
        GltfNode("Neck", Transform((0, 1.4, 0), rolled), [2]),
        GltfNode("Head", Transform((0, 0.1, 0), quat_from_euler(0.3, 0.2, -0.5))),
    ]
    skin = GltfSkin("Armature", [1, 2], np.tile(np.eye(4, dtype=np.float32), (2, 1, 1)))
    asset = GltfAsset(Path("rolled.glb"), nodes, [], [], [0], skins=[skin])
    editable = [n.transform.copy() for n in nodes]
    rig = BoneRig.find(editable, asset)
    assert rig is not None and rig.names["neck"] == 1
    before = Skeleton(asset).world(editable)
    rig.apply(editable, np.array([0.0, 0.6, 0.0]), np.zeros(2))
    after = Skeleton(asset).world(editable)
    yaw = quat_to_matrix(quat_from_euler(yaw=0.6))
    np.testing.assert_allclose(after[2][:3, :3], yaw @ before[2][:3, :3], atol=1e-5)
    np.testing.assert_allclose(after[1][:3, 3], before[1][:3, 3], atol=1e-6)  # turns in place


@pytest.mark.parametrize("turned", [False, True])
def test_a_nod_lowers_the_eyes_whichever_way_the_model_faces(turned):
    """VRM 0.x models face -Z: the rig reads the facing from where the eyes sit, so a
    nod (pitch +) lowers the eyes and a gaze to the avatar's right (yaw +) turns the
    pupils to its right (-X facing +Z, +X facing -Z) either way."""
    from engine.skeleton import Skeleton
    from engine.transform import quat_from_euler

    asset = load_gltf(RPM_HEAD)
    nodes = [n.transform.copy() for n in asset.nodes]
    if turned:  # the whole armature turned to face -Z
        nodes[0].rotation = quat_from_euler(yaw=np.pi)
    rig = BoneRig.find(nodes, asset)
    assert rig is not None and rig.facing == (-1.0 if turned else 1.0)
    skeleton = Skeleton(asset)
    eye = rig.names["eyes"][0]
    rest = skeleton.world(nodes)
    rig.apply(nodes, np.array([0.3, 0.0, 0.0]), np.array([0.4, 0.0]))
    posed = skeleton.world(nodes)
    assert posed[eye][1, 3] < rest[eye][1, 3] - 0.01  # nodded: the eyes went down
    look = posed[eye][:3, :3] @ rest[eye][:3, :3].T @ [0.0, 0.0, -1.0 if turned else 1.0]
    head_turn = posed[rig.names["head"]][:3, :3] @ rest[rig.names["head"]][:3, :3].T
    own = head_turn.T @ look  # the eye's turn alone, in the model's frame
    assert own[0] * (1 if turned else -1) > 0.3  # towards the avatar's right


def test_eyes_that_look_by_morphs_keep_their_bones_still():
    """An eyeball mesh with its own eyeLook* targets already follows the gaze through
    the blendshape map: turning its bone as well would double every look."""
    asset = load_gltf(RPM_HEAD)
    rig = BoneRig.find([n.transform.copy() for n in asset.nodes], asset)
    assert rig is not None and len(rig.eyes) == 2  # the head's eyeLook targets move nothing
    morphing = copy.copy(asset)
    morphing.meshes = [copy.copy(m) for m in asset.meshes]
    eye = next(i for i, m in enumerate(asset.meshes) if m.name == "EyeLeft")
    morphing.meshes[eye].target_names = ["eyeLookInLeft", "eyeLookOutLeft"]
    rig = BoneRig.find([n.transform.copy() for n in asset.nodes], morphing)
    assert rig is not None and rig.eyes == [] and rig.names["head"] is not None
