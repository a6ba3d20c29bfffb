"""Manifests, name mapping (ARKit variants, visemes) and user avatars loaded with derive()."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pygltflib
import pytest

from avatarkit.arkit import ARKIT_INDEX, ARKIT_NAMES
from avatarkit.avatar import Avatar, derive
from avatarkit.blendshapes import build_map
from avatarkit.conventions import arkit_channel, viseme_name
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.package import Manifest, list_packages, read_manifest, verify_package
from avatarkit.paths import AVATARS_DIR


@pytest.mark.parametrize(
    ("name", "channel"),
    [
        ("eyeBlinkLeft", "eyeBlinkLeft"),
        ("eyeBlink_L", "eyeBlinkLeft"),
        ("eyeBlink_R", "eyeBlinkRight"),
        ("EyeBlinkLeft", "eyeBlinkLeft"),
        ("eye_blink_left", "eyeBlinkLeft"),
        ("eyeBlinkL", "eyeBlinkLeft"),
        ("blendShape1.mouthSmile_L", "mouthSmileLeft"),
        ("browOuterUp.R", "browOuterUpRight"),
        ("jawOpen", "jawOpen"),
        ("JAWOPEN", "jawOpen"),
        ("mouthRollLower", "mouthRollLower"),  # ends in "r" but is not a side
        ("mouthLeft", "mouthLeft"),
        ("tongueOut", "tongueOut"),
        ("viseme_aa", None),
        ("Smile", None),
        ("jawOpen_X", None),
    ],
)
def test_arkit_channel_names(name, channel):
    assert arkit_channel(name) == channel


def test_viseme_names():
    assert viseme_name("viseme_aa") == "aa" and viseme_name("viseme_PP") == "pp"
    assert viseme_name("Wolf3D_Head.viseme_O") == "o"
    assert viseme_name("viseme_zz") is None and viseme_name("jawOpen") is None


def test_map_prefers_direct_targets_over_visemes():
    mapping = build_map(
        [
            ("Head", ["jawOpen", "viseme_aa", "viseme_O", "eyeBlink_L", "unrelated"]),
            ("Teeth", ["jawOpen"]),
        ]
    )
    assert mapping.available_channels[:1] == ("eyeBlinkLeft",)
    assert set(mapping.available_channels) == {"eyeBlinkLeft", "jawOpen", "mouthFunnel"}
    w = np.zeros(52, np.float32)
    w[ARKIT_INDEX["jawOpen"]] = 0.7
    w[ARKIT_INDEX["mouthFunnel"]] = 0.4
    per_mesh = mapping.mesh_weights(w)
    np.testing.assert_allclose(
        per_mesh[0], [0.7, 0.0, 0.4, 0.0, 0.0]
    )  # viseme_aa stays off: jawOpen is direct
    np.testing.assert_allclose(per_mesh[1], [0.7])
    assert mapping(w) == pytest.approx({"jawOpen": 0.7, "viseme_O": 0.4, "eyeBlink_L": 0.0})
    order = ["eyeBlink_L", "missing", "jawOpen"]
    np.testing.assert_allclose(mapping.weights_for(w, order), [0.0, 0.0, 0.7])
    assert "missing:" in mapping.report()


def test_bundled_packages_are_valid_and_complete():
    manifests = list_packages(AVATARS_DIR)
    assert len(manifests) >= 3
    for m in manifests:
        verify_package(AVATARS_DIR / m.id, m)
        assert m.channels == ARKIT_NAMES
        assert m.framing.camera_distance > 0 and m.framing.units == "meters"
        assert m.extra["triangles"] <= 15500
        avatar = Avatar.from_package(AVATARS_DIR / m.id)
        assert avatar.available_channels == ARKIT_NAMES and avatar.head_node
    assert len({m.name for m in manifests}) == len(manifests)


def test_manifest_round_trip_and_validation(tmp_path):
    m = read_manifest(AVATARS_DIR / "ava")
    assert Manifest.from_json(json.loads(m.to_bytes())) == m
    good = json.loads(m.to_bytes())
    bad_cases = [
        {**good, "id": "../x"},
        {**good, "files": [{"name": "../ava.glb", "size": 1, "sha256": "0" * 64}]},
        {**good, "files": [{"name": "ava.glb", "size": -1, "sha256": "0" * 64}]},
        {**good, "files": [{"name": "ava.glb", "size": 1, "sha256": "xyz"}]},
        {**good, "model": "other.glb"},
        {**good, "format": "something-else/9"},
        {**good, "framing": {"camera_distance": -1}},
        [],
    ]
    for case in bad_cases:
        with pytest.raises(AvatarKitError) as err:
            Manifest.from_json(case)
        assert err.value.code == ErrorCode.INVALID_AVATAR_METADATA


def test_verify_package_detects_tampering(tmp_path):
    pkg = tmp_path / "ava"
    shutil.copytree(AVATARS_DIR / "ava", pkg)
    verify_package(pkg)
    with open(pkg / "ava.glb", "r+b") as fh:
        fh.seek(100)
        fh.write(b"!")
    with pytest.raises(AvatarKitError) as err:
        verify_package(pkg)
    assert err.value.code == ErrorCode.CHECKSUM_MISMATCH
    (pkg / "ava.glb").unlink()
    with pytest.raises(AvatarKitError) as err:
        Avatar.from_package(pkg)
    assert err.value.code == ErrorCode.AVATAR_ASSETS_MISSING
    (pkg / "manifest.json").write_text("{not json")
    with pytest.raises(AvatarKitError) as err:
        read_manifest(pkg)
    assert err.value.code == ErrorCode.INVALID_AVATAR_METADATA


USER_TARGETS = [
    "eyeBlink_L",
    "eyeBlink_R",
    "jawOpen",
    "mouthSmile_L",
    "mouthSmile_R",
    "viseme_O",
    "viseme_PP",
    "viseme_aa",
]


def write_user_avatar(path: Path) -> Path:
    """A small glTF 2.0 'head' (a 10x10 grid) whose targets use _L/_R and viseme_* names."""
    n = 10
    xs, ys = np.meshgrid(np.linspace(-0.1, 0.1, n), np.linspace(0.0, 0.2, n))
    pos = np.stack([xs, ys, np.zeros_like(xs)], -1).reshape(-1, 3).astype(np.float32)
    idx = []
    for r in range(n - 1):
        for c in range(n - 1):
            a = r * n + c
            idx += [a, a + 1, a + n, a + 1, a + n + 1, a + n]
    indices = np.array(idx, np.uint16)
    blob = bytearray(pos.tobytes() + indices.tobytes())
    views = [
        pygltflib.BufferView(buffer=0, byteOffset=0, byteLength=pos.nbytes),
        pygltflib.BufferView(buffer=0, byteOffset=pos.nbytes, byteLength=indices.nbytes),
    ]
    accessors = [
        pygltflib.Accessor(
            bufferView=0,
            componentType=pygltflib.FLOAT,
            count=len(pos),
            type="VEC3",
            min=pos.min(0).tolist(),
            max=pos.max(0).tolist(),
        ),
        pygltflib.Accessor(
            bufferView=1, componentType=pygltflib.UNSIGNED_SHORT, count=len(indices), type="SCALAR"
        ),
    ]
    targets = []
    for i, _ in enumerate(USER_TARGETS):
        delta = np.zeros_like(pos)
        delta[:, 2] = 0.01 * (i + 1)
        views.append(pygltflib.BufferView(buffer=0, byteOffset=len(blob), byteLength=delta.nbytes))
        accessors.append(
            pygltflib.Accessor(
                bufferView=len(views) - 1,
                componentType=pygltflib.FLOAT,
                count=len(pos),
                type="VEC3",
                min=delta.min(0).tolist(),
                max=delta.max(0).tolist(),
            )
        )
        blob += delta.tobytes()
        targets.append({"POSITION": len(accessors) - 1})
    gltf = pygltflib.GLTF2(
        scene=0,
        scenes=[pygltflib.Scene(nodes=[0])],
        nodes=[pygltflib.Node(name="Head", mesh=0)],
        meshes=[
            pygltflib.Mesh(
                name="Wolf3D_Head",
                primitives=[
                    pygltflib.Primitive(
                        attributes=pygltflib.Attributes(POSITION=0), indices=1, targets=targets
                    )
                ],
                extras={"targetNames": USER_TARGETS},
            )
        ],
        accessors=accessors,
        bufferViews=views,
        buffers=[pygltflib.Buffer(byteLength=len(blob))],
    )
    gltf.set_binary_blob(bytes(blob))
    gltf.save_binary(str(path))
    return path


def test_user_avatar_with_side_suffixes_and_visemes(tmp_path):
    glb = write_user_avatar(tmp_path / "My Avatar.glb")
    avatar = derive(glb)
    assert avatar.id == "my-avatar" and avatar.name == "My Avatar"
    assert set(avatar.available_channels) == {
        "eyeBlinkLeft", "eyeBlinkRight", "jawOpen", "mouthSmileLeft", "mouthSmileRight",
        "mouthFunnel", "mouthClose", "mouthPressLeft", "mouthPressRight",
    }  # fmt: skip
    w = np.zeros(52, np.float32)
    w[ARKIT_INDEX["eyeBlinkLeft"]] = 1.0
    w[ARKIT_INDEX["mouthFunnel"]] = 0.5
    weights = avatar.target_weights(w, avatar.asset.target_names)
    assert avatar.asset.target_names == USER_TARGETS
    np.testing.assert_allclose(weights, [1.0, 0, 0, 0, 0, 0.5, 0, 0])
    assert avatar.framing.camera_distance > 0 and avatar.framing.extra["estimated"]
    # A folder holding the file works the same, and so does the manager's derive().
    from avatarkit.manager import AvatarManager

    assert (
        AvatarManager(cache_dir=tmp_path / "cache").derive(tmp_path).available_channels
        == avatar.available_channels
    )


def test_derive_rejects_bad_input(tmp_path):
    with pytest.raises(AvatarKitError) as err:
        derive(tmp_path / "missing.glb")
    assert err.value.code == ErrorCode.AVATAR_NOT_FOUND
    junk = tmp_path / "junk.glb"
    junk.write_bytes(b"definitely not a glb")
    with pytest.raises(AvatarKitError) as err:
        derive(junk)
    assert err.value.code == ErrorCode.INCOMPATIBLE_AVATAR_ASSET
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(AvatarKitError) as err:
        derive(tmp_path / "notes.txt")
    assert err.value.code == ErrorCode.INCOMPATIBLE_AVATAR_ASSET
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AvatarKitError) as err:
        derive(empty)
    assert err.value.code == ErrorCode.AVATAR_ASSETS_MISSING
