"""Framing from anatomy and ``avatarkit inspect``, on third-party-shaped files (avatar_files).

Framing must find the face from the eyes, the morph-moved region or the head bone, in any
unit, and never from the top of the bounding box (a hat, an arm held up). ``inspect`` must
describe a file, including one the engine refuses, and say what becomes of each part.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from avatar_files import (
    EYE_X,
    EYE_Y,
    EYE_Z,
    HEAD_R,
    HEAD_Y,
    vrm1_humanoid,
    write_face_scan,
    write_figure,
)

from avatarkit.avatar import Avatar
from avatarkit.cli import main
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.inspection import inspect_avatar

IPD = 2 * EYE_X
ARKIT_FACE = ["jawOpen", "mouthFunnel", "eyeBlinkLeft", "eyeBlinkRight", "browInnerUp"]


def framing(path):
    return Avatar.from_file(path).framing


@pytest.mark.parametrize("k", [1.0, 100.0])  # metres, centimetres
def test_eyes_anchor_the_face_not_the_hat_or_a_raised_arm(tmp_path, k):
    f = framing(write_figure(tmp_path / "mixamo.glb", k=k))
    assert f.extra["anchor"] == "eyes"
    assert f.extra["eye_nodes"] == ["mixamorig:LeftEye", "mixamorig:RightEye"]
    np.testing.assert_allclose(
        f.head_center, np.array([0.0, EYE_Y - 0.2 * IPD, EYE_Z]) * k, atol=1e-3 * k
    )
    assert f.camera_distance == pytest.approx(10 * IPD * k, rel=1e-3)
    # The old guess took the bounding box's top (the raised arm, 2.2 m) for the head.
    top = Avatar.from_file(tmp_path / "mixamo.glb").asset.bounds()[1][1]
    assert top > 2.1 * k and f.head_center[1] < HEAD_Y * k + HEAD_R * k


def test_vrm_eyes_come_from_the_humanoid_bones(tmp_path):
    path = tmp_path / "plain.vrm"
    write_figure(path, rig="vrm")  # bones n1.. : no name says "eye"
    assert framing(path).extra["anchor"] != "eyes"
    # Armature 0, hips 1, head 2, left eye 3, right eye 4 (write_figure's order).
    ext = vrm1_humanoid({"hips": 1, "head": 2, "leftEye": 3, "rightEye": 4})
    f = framing(write_figure(tmp_path / "vrm1.vrm", rig="vrm", extensions=ext))
    assert f.extra["anchor"] == "eyes" and f.extra["from"] == "humanoid"
    assert f.head_center[1] == pytest.approx(EYE_Y - 0.2 * IPD, abs=1e-3)


@pytest.mark.parametrize("k", [1.0, 100.0, 1000.0])  # m, cm, mm
def test_a_head_only_scan_is_framed_on_its_moving_face(tmp_path, k):
    f = framing(write_face_scan(tmp_path / "facecap.glb", k=k, targets=ARKIT_FACE))
    assert f.extra["anchor"] == "morphRegion"
    x, y, z = (v / k for v in f.head_center)
    # On the face (the front of the head), between the mouth and the brows: not the neck.
    assert abs(x) < 0.01 and -0.05 < y < 0.06 and z > 0.03
    assert 0.4 < f.camera_distance / k < 0.9  # a head shot, whatever the unit
    metres = framing(write_face_scan(tmp_path / "m.glb", k=1.0, targets=ARKIT_FACE))
    assert f.camera_distance == pytest.approx(metres.camera_distance * k, rel=1e-3)


def test_the_head_bone_when_there_are_no_eyes_or_morphs(tmp_path):
    f = framing(write_figure(tmp_path / "bones.glb", eyes=False, hat=False, raised_arm=False))
    assert f.extra["anchor"] == "headBone" and f.extra["head_bone"] == "mixamorig:Head"
    # The skull above the joint (1.55 m) reaches the sphere's top, 1.72 m.
    assert 1.6 < f.head_center[1] < 1.66 and 0.4 < f.camera_distance < 0.6
    g = framing(write_figure(tmp_path / "top.glb", eyes=False, hat=True, head_top=True))
    assert g.extra["anchor"] == "headBone"  # HeadTop_End, not the hat, measures the skull
    assert g.head_center[1] == pytest.approx(1.55 + 0.45 * 0.22, abs=1e-3)


def test_nothing_anatomical_frames_the_whole_model(tmp_path):
    f = framing(write_figure(tmp_path / "statue.glb", eyes=False, rig="vrm"))
    assert f.extra["anchor"] == "bounds"


def test_bundled_avatars_derived_as_bare_files_frame_like_their_manifests(tmp_path):
    from avatarkit.paths import AVATARS_DIR

    for package in sorted(AVATARS_DIR.iterdir()):
        if not (package / "manifest.json").is_file():
            continue
        authored = Avatar.from_package(package).framing
        derived = framing(next(package.glob("*.glb")))
        assert derived.extra["anchor"] == "morphRegion"
        assert np.linalg.norm(np.subtract(derived.head_center, authored.head_center)) < 0.05
        assert derived.camera_distance == pytest.approx(authored.camera_distance, rel=0.1)


# -- inspect ------------------------------------------------------------------------------
def test_inspect_describes_a_file_the_engine_refuses(tmp_path, capsys):
    from engine.gltf_write import GltfBuilder, pack_glb, unpack_glb

    path = write_face_scan(tmp_path / "facecap.glb", k=100.0, targets=[*ARKIT_FACE, "odd"])
    doc, blob = unpack_glb(path.read_bytes())  # as three.js ships it: compressed
    doc["extensionsRequired"] = ["EXT_mesh_gpu_instancing", "EXT_meshopt_compression"]
    doc["extensionsUsed"] = [*doc["extensionsRequired"], "KHR_texture_transform"]
    path.write_bytes(pack_glb(doc, blob))
    assert GltfBuilder  # the builder wrote the rest of the file

    report = inspect_avatar(path)
    assert not report.loadable and report.error is not None
    assert report.error.code is ErrorCode.INCOMPATIBLE_AVATAR_ASSET
    status = {e.name: e.status for e in report.extensions}
    assert status["EXT_mesh_gpu_instancing"].startswith("unsupported: instances drawn once")
    assert status["EXT_meshopt_compression"].startswith("supported: decoded with meshopt")
    assert status["KHR_texture_transform"].startswith("supported")
    (mesh,) = report.meshes  # read from the document alone
    kinds = dict(mesh.targets)
    assert kinds["jawOpen"] == "ARKit jawOpen" and kinds["odd"] == "unmapped"

    assert main(["inspect", str(path)]) == 1
    out = capsys.readouterr().out
    assert "cannot load: [incompatibleAvatarAsset]" in out
    assert "EXT_mesh_gpu_instancing (required): unsupported" in out
    assert "unmapped: odd" in out


def test_inspect_a_vrm_figure_with_a_skin(tmp_path, capsys):
    binds = {
        "aa": {"morphTargetBinds": [{"node": 6, "index": 0, "weight": 1.0}]},
        "blink": {"morphTargetBinds": [{"node": 6, "index": 1, "weight": 1.0}]},
    }
    ext = vrm1_humanoid({"head": 2, "leftEye": 3, "rightEye": 4}, binds)
    path = write_figure(
        tmp_path / "figure.vrm",
        rig="vrm",
        k=100.0,
        morphs=["Fcl_MTH_A", "Fcl_EYE_Close", "viseme_PP", "mystery"],
        extensions=ext,
        used=["KHR_materials_clearcoat", "VRMC_springBone", "KHR_materials_unlit"],
    )
    report = inspect_avatar(path)
    assert report.loadable, report.error
    kinds = dict(report.meshes[1].targets)
    assert kinds["Fcl_MTH_A"] == "VRM-bind aa" and kinds["Fcl_EYE_Close"] == "VRM-bind blink"
    assert kinds["viseme_PP"] == "viseme pp" and kinds["mystery"] == "unmapped"
    assert report.skins == [("Armature", 4)]
    assert report.unit == "centimetres"
    assert report.framing is not None and report.framing.extra["anchor"] == "eyes"
    assert {"jawOpen", "eyeBlinkLeft", "mouthClose"} <= set(report.blend.available_channels)
    status = {e.name: e.status for e in report.extensions}
    assert status["KHR_materials_clearcoat"] == "ignored: no clear coat layer"
    assert status["VRMC_springBone"].startswith("simulated")
    assert status["KHR_materials_unlit"] == "supported"
    assert status["VRMC_vrm"].startswith("read")

    every = report.lines(verbose=True)  # --all: each target, and what drives each channel
    assert "    mystery: unmapped" in every and any(
        line.startswith("  jawOpen: ") for line in every
    )
    assert main(["inspect", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["loadable"] and data["unit"] == "centimetres"
    assert data["framing"]["anchor"] == "eyes" and "jawOpen" in data["channels"]
    assert {"name": "mystery", "maps_to": "unmapped"} in data["meshes"][1]["targets"]


def test_inspect_names_what_is_missing(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope.glb")]) == 2
    assert "[avatarNotFound]" in capsys.readouterr().err
    (tmp_path / "text.glb").write_text("not a model")
    assert main(["inspect", str(tmp_path / "text.glb")]) == 2
    assert "[incompatibleAvatarAsset]" in capsys.readouterr().err


@pytest.mark.parametrize("k", [100.0, 1000.0])  # a scan in centimetres, in millimetres
def test_a_view_frames_a_scan_in_any_unit(tmp_path, make_headless_app, k):
    """Real EGL pixels: the framed face fills the middle of the picture (a model in
    millimetres sits ~600 units away, beyond the camera's default far plane)."""
    from avatarkit.sdk import AvatarSDK, Configuration
    from avatarkit.view import AvatarView

    avatar = Avatar.from_file(write_face_scan(tmp_path / "scan.glb", k=k, targets=ARKIT_FACE))
    AvatarSDK.initialize("framing-test", Configuration(audio_device="virtual"))
    app = make_headless_app(size=(96, 96), samples=0)
    try:
        view = app.scene.create_entity("scan").add_component(AvatarView(avatar, idle=False))
        view.frame(app.scene.camera)
        view.enabled = False
        app.step()
        background = app.read_pixels().astype(int)
        view.enabled = True
        app.step()
        image = app.read_pixels().astype(int)
        face = np.abs(image - background).max(axis=-1) > 40
        assert face[48, 48], "the middle of the picture is background"
        assert 0.2 < face.mean() < 0.95  # a head shot: the face, with room around it
        view.dispose()
    finally:
        app.close()
        AvatarSDK.cleanup()


def test_contact_sheet_shows_what_moves(tmp_path, capsys):
    """Real renders: each pose changes the picture where its targets are, and a pose the
    model has no target for (smile, here) leaves it as it was."""
    from PIL import Image

    from avatarkit.contact_sheet import POSES, render_poses

    path = write_face_scan(tmp_path / "scan.glb", k=100.0, targets=ARKIT_FACE)
    labels = [label for label, _ in POSES]
    pictures = dict(zip(labels, render_poses(Avatar.from_file(path), (96, 96)), strict=True))
    neutral = pictures["neutral"].astype(int)

    def moved(label: str) -> np.ndarray:
        return np.abs(pictures[label].astype(int) - neutral).max(axis=-1) > 24

    def row(label: str) -> float:  # where in the picture it moved, top 0
        return float(np.nonzero(moved(label))[0].mean())

    for label in ("jaw open / aa", "blink", "funnel", "head turned"):
        assert moved(label).mean() > 0.01, label
    assert not moved("smile").any()  # no smile target: nothing may move
    assert row("blink") < 48 < row("jaw open / aa")  # eyes above the middle, the jaw below
    assert row("funnel") > row("blink")

    sheet = tmp_path / "sheet.png"
    assert main(["inspect", str(path), "--sheet", str(sheet)]) == 0
    assert f"contact sheet: {sheet}" in capsys.readouterr().out
    assert Image.open(sheet).size == (3 * 256, 2 * 256)


def test_opening_a_file_says_what_is_not_drawn(tmp_path, caplog):
    import logging

    from avatarkit.paths import AVATARS_DIR

    path = write_figure(
        tmp_path / "rpm.glb", rig="rpm", morphs=["viseme_aa"], used=["KHR_materials_clearcoat"]
    )
    with caplog.at_level(logging.WARNING, logger="avatarkit"):
        Avatar.from_file(path)
    lines = [r.getMessage() for r in caplog.records if "not drawn" in r.getMessage() or
             "ignored" in r.getMessage()]  # fmt: skip
    assert len(lines) == 1, lines  # one line naming all of it
    assert "KHR_materials_clearcoat ignored (no clear coat layer)" in lines[0]
    assert "skin" not in lines[0]  # skins are drawn (GPU skinning): nothing to warn about
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="avatarkit"):
        Avatar.from_package(AVATARS_DIR / "kai")
    assert not caplog.records  # a bundled avatar draws everything it has


def test_inspect_a_file_whose_targets_follow_no_convention(tmp_path, capsys):
    """Morph targets none of which the motion can drive (a mesh without a map): described
    as unmapped, with the note that the face will not move, not a KeyError."""
    path = write_face_scan(tmp_path / "shapes.glb", k=1.0, targets=["thin", "angle"])
    report = inspect_avatar(path)
    assert report.loadable
    (mesh,) = report.meshes
    assert dict(mesh.targets) == {"thin": "unmapped", "angle": "unmapped"}
    assert any("face will not move" in note for note in report.notes)
    assert main(["inspect", str(path)]) == 0
    assert "unmapped: thin, angle" in capsys.readouterr().out


MORPH_CUBE = Path(
    "/usr/share/assimp/models/glTF2/glTF-Sample-Models/AnimatedMorphCube-glTF/AnimatedMorphCube.gltf"
)


@pytest.mark.skipif(not MORPH_CUBE.is_file(), reason="Debian assimp-testmodels is not installed")
def test_inspect_the_khronos_morph_cube(capsys):
    """A real third-party file with morph targets of its own names ("thin", "angle")."""
    report = inspect_avatar(MORPH_CUBE)
    assert report.loadable
    assert all(kind == "unmapped" for mesh in report.meshes for _, kind in mesh.targets)
    assert main(["inspect", str(MORPH_CUBE)]) == 0


def _face_without(tmp_path, what: str) -> Path:
    """A valid face scan edited so that it draws nothing: ``meshes`` gone, the scene
    ``unreached`` (its nodes listed nowhere), or every primitive ``points``."""
    from engine.gltf_write import pack_glb, unpack_glb

    path = write_face_scan(tmp_path / f"{what}.glb", k=1.0, targets=ARKIT_FACE)
    doc, blob = unpack_glb(path.read_bytes())
    if what == "meshes":
        doc.pop("meshes")
        for node in doc["nodes"]:
            node.pop("mesh", None)
    elif what == "unreached":
        doc["scenes"][0]["nodes"] = []
    else:
        for mesh in doc["meshes"]:
            for prim in mesh["primitives"]:
                prim["mode"] = 0
    path.write_bytes(pack_glb(doc, blob))
    return path


@pytest.mark.parametrize(
    "what, reason",
    [
        ("meshes", "the file has no meshes"),
        ("unreached", "no node of its scene draws a mesh with triangles"),
        ("points", "no node of its scene draws a mesh with triangles"),
    ],
)
def test_a_file_that_would_draw_nothing_is_refused_and_inspect_says_why(
    tmp_path, capsys, what, reason
):
    """Rendering such a file said `incompatibleAvatarAsset` while inspect called it fine
    (exit 0, "0/52 channels"); now both refuse it with the same reason."""
    path = _face_without(tmp_path, what)
    with pytest.raises(AvatarKitError) as refused:
        Avatar.from_file(path)
    assert refused.value.code is ErrorCode.INCOMPATIBLE_AVATAR_ASSET
    assert reason in str(refused.value)
    report = inspect_avatar(path)
    assert not report.loadable and reason in str(report.error)
    assert main(["inspect", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"cannot load: [incompatibleAvatarAsset] {path.name}: {reason}" in out
