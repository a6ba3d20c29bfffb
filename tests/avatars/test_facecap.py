"""three.js's ``facecap.glb`` (an ARKit face capture: 52 blendshapes, gltfpack output with
EXT_meshopt_compression, KHR_mesh_quantization, KHR_texture_transform and a KTX2/Basis
texture), as PyPI ``openfacefx`` ships it: loaded, drawn textured through real EGL, framed
on the face, and lip-synced by ``avatarkit render``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from avatarkit.arkit import ARKIT_NAMES
from avatarkit.avatar import Avatar
from avatarkit.cli import main
from avatarkit.contact_sheet import POSES, render_poses
from avatarkit.inspection import inspect_avatar
from engine.gltf import load_gltf

REPO = Path(__file__).resolve().parents[2]


def facecap_path() -> Path:
    spec = importlib.util.find_spec("openfacefx")
    if spec is None or spec.origin is None:
        pytest.skip("openfacefx (the test extra) is not installed")
    path = Path(spec.origin).parent / "studio_web" / "assets" / "facecap.glb"
    assert path.is_file(), f"openfacefx no longer ships {path}"
    return path


@pytest.fixture(scope="module")
def facecap() -> Path:
    return facecap_path()


def test_facecap_decodes(facecap):
    asset = load_gltf(facecap)
    assert len(asset.target_names) == 52  # from the meshopt-compressed views
    report = inspect_avatar(facecap)  # ARKit's names in three.js's _L/_R spelling
    assert report.loadable and set(report.blend.available_channels) == set(ARKIT_NAMES)
    (material,) = asset.materials
    texture = material.base_color_texture
    assert texture is not None and texture.shape == (1024, 1024, 4)  # the KTX2, transcoded
    assert texture[..., :3].std() > 10  # a picture, not a fill colour
    # gltfpack's dequantizing KHR_texture_transform is read (integer UVs in 0..4095)
    assert material.base_color_slot.transform[0] == pytest.approx(0.000238723238)
    face = max((p for m in asset.meshes for p in m.primitives), key=lambda p: len(p.targets))
    assert face.uvs is not None and face.uvs.max() > 1000
    lo, hi = asset.bounds()
    assert 2.0 < hi[1] - lo[1] < 3.0  # quantized positions dequantized by the node scales


def test_facecap_is_drawn_textured_framed_and_moves(facecap, make_headless_app):
    make_headless_app(size=(16, 16)).close()  # skips where there is no EGL
    avatar = Avatar.from_file(facecap)
    pictures = dict(
        zip((label for label, _ in POSES), render_poses(avatar, (128, 128)), strict=True)
    )
    neutral = pictures["neutral"].astype(np.float64)
    background = neutral[0, 0]
    face = np.abs(neutral - background).max(axis=-1) > 30
    rows, cols = np.nonzero(face)
    # Framed on the face: it fills much of the picture, centred, not a scalp at the edge.
    assert 0.2 < face.mean() < 0.9
    assert 40 < rows.mean() < 88 and 48 < cols.mean() < 80

    bare = Avatar.from_file(facecap)
    bare.asset.materials[0].base_color_texture = None
    untextured = render_poses(bare, (128, 128))[0].astype(np.float64)
    # The texture's detail (eyes, brows, lips) shows: its effect varies across the face.
    ratio = (neutral.mean(axis=-1) + 1) / (untextured.mean(axis=-1) + 1)
    assert ratio[face].std() > 0.08

    moved = np.abs(pictures["jaw open / aa"].astype(np.float64) - neutral).max(axis=-1) > 24
    assert moved.mean() > 0.01
    assert np.nonzero(moved)[0].mean() > rows.mean()  # the jaw, below the face's middle


def test_render_cli_lip_syncs_facecap(facecap, tmp_path, make_headless_app):
    import av

    make_headless_app(size=(16, 16)).close()
    out = tmp_path / "facecap.mp4"
    speech = REPO / "assets" / "speech" / "conv_ava_1.wav"
    size = ["--size", "160x120", "--fps", "25", "--idle", "off"]
    assert (
        main(["render", "--avatar", str(facecap), "--audio", str(speech), "-o", str(out), *size])
        == 0
    )
    with av.open(str(out)) as container:
        frames = np.array(
            [f.to_ndarray(format="gray").astype(np.float64) for f in container.decode(video=0)]
        )
    assert len(frames) > 50
    face = np.abs(frames[0] - frames[0][0, 0]) > 20
    rows = np.nonzero(face)[0]
    assert face.mean() > 0.15  # textured face in frame
    # The mouth (lower face) changes with the speech far more than the forehead does.
    mid = int(rows.mean())
    lower = frames[:, mid : rows.max(), :].std(axis=0).mean()
    upper = frames[:, rows.min() : rows.min() + (mid - rows.min()) // 2, :].std(axis=0).mean()
    assert lower > 2 * upper and lower > 0.5
