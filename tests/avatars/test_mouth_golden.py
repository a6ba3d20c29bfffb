"""Clean mouths at 640x360 (issue 15.4): the bundled avatar speaking, at the software
rasteriser's two defaults (``medium`` live, ``geometric`` offline), against a committed
golden of the mouth each; and the tint the rim light once put on the teeth and tongue,
checked directly.

Regenerate (look at the PNG before keeping it):
    REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/avatars/test_mouth_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from scenes import golden

GOLDENS = {
    "medium": Path(__file__).parent / "golden" / "ava_mouth_640x360.png",
    "geometric": Path(__file__).parent / "golden" / "ava_mouth_640x360_geometric.png",
}
SIZE = (640, 360)
POSE = {"jawOpen": 0.45, "mouthSmileLeft": 0.3, "mouthSmileRight": 0.3}


def _mouth_box(app, avatar, model) -> tuple[slice, slice]:
    """Pixel rows/columns around the mouth cavity (its rest bounds, opened by the jaw,
    projected through the camera), with a margin for the lips."""
    asset = avatar.asset
    mouth = next(i for i, m in enumerate(asset.materials) if m.name == "mouth")
    prim = next(p for mesh in asset.meshes for p in mesh.primitives if p.material == mouth)
    lo, hi = prim.positions.min(axis=0), prim.positions.max(axis=0)
    world = next(m for i, m in asset.world_matrices().items() if asset.nodes[i].mesh == 0)
    corners = np.array([[x, y, hi[2], 1.0] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])])
    camera = app.scene.camera
    clip = (camera.projection_matrix(app.aspect) @ camera.view_matrix() @ world) @ corners.T
    ndc = clip[:2] / clip[3]
    xs = (ndc[0] + 1) / 2 * SIZE[0]
    ys = (1 - ndc[1]) / 2 * SIZE[1]
    x0, x1 = int(xs.min()) - 12, int(np.ceil(xs.max())) + 12
    y0, y1 = int(ys.min()) - 6, int(np.ceil(ys.max())) + 20  # the jaw opens downwards
    return slice(max(y0, 0), min(y1, SIZE[1])), slice(max(x0, 0), min(x1, SIZE[0]))


@pytest.fixture(scope="module", params=list(GOLDENS))
def quality(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def mouth(make_headless_app, quality) -> np.ndarray:
    """The mouth crop of ava speaking at ``quality`` (llvmpipe's defaults: medium live,
    geometric offline)."""
    from avatarkit import AvatarManager
    from avatarkit.paths import AVATARS_DIR
    from engine import ModelRenderer

    make_headless_app(size=(16, 16)).close()  # skips only where EGL cannot start
    avatar = AvatarManager(str(AVATARS_DIR)).load_blocking("ava")
    from engine import App

    with App.headless(SIZE, quality=quality) as app:
        model = app.scene.create_entity("ava").add_component(ModelRenderer(avatar.asset))
        model.set_weights(avatar.target_weights(golden.pose_weights(POSE), model.target_names))
        head = np.array(avatar.framing.head_center, np.float32)
        app.scene.camera.look_at(head + [0.0, 0.0, avatar.framing.camera_distance], head)
        rows, cols = _mouth_box(app, avatar, model)
        app.step()
        return app.read_pixels()[rows, cols]


def test_mouth_matches_its_golden(mouth, quality, tmp_path):
    from engine import save_png

    if os.environ.get("REGENERATE_GOLDEN"):
        save_png(mouth, GOLDENS[quality])
    result = golden.compare(mouth, golden.load_png(GOLDENS[quality]), f"ava_mouth_{quality}")
    if not result.ok:
        save_png(mouth, tmp_path / "ava_mouth_actual.png")
    assert result.ok, f"{result} (actual frame in {tmp_path})"


def test_mouth_interior_has_no_grey_green_tint(mouth):
    """Lit mid-tone pixels in the mouth are warm (red leads green and blue by a clear
    margin): skin, lips, tongue, gums and the shadowed back teeth. The rim light on the
    teeth and tongue made grey pixels (red level with green and blue) at the corners.
    Bright enamel (near white by design) is left out."""
    rgb = mouth.astype(int)
    lit = (rgb.max(axis=2) > 60) & (rgb.max(axis=2) < 200)
    assert lit.sum() > 1000
    grey = lit & (rgb[..., 0] - np.maximum(rgb[..., 1], rgb[..., 2]) < 4)
    assert grey.sum() <= 0.01 * lit.sum(), f"{grey.sum()} of {lit.sum()} lit pixels are grey"


def test_the_golden_comparison_sees_a_visible_change(mouth, quality):
    """The tolerance is not so loose that a real regression passes: the same mouth two
    pixels lower fails it. (So did the avatar before the fix, and quality low.)"""
    shifted = np.roll(mouth, 2, axis=0)
    assert not golden.compare(shifted, golden.load_png(GOLDENS[quality])).ok


def test_the_offline_mouth_is_closer_to_supersampling_than_fxaa(make_headless_app):
    """The golden's tolerance cannot tell the edge lines from FXAA alone on this crop, so
    this checks them directly: on the crop's aliased pixels, against a 4x4-supersampled
    render, ``geometric`` is clearly closer than ``medium`` (12.5 against 16.5 when
    written; 4x MSAA 10.0: the teeth cut into the lips, where no mesh edge runs)."""
    from avatarkit import AvatarManager
    from avatarkit.paths import AVATARS_DIR
    from engine import App, ModelRenderer

    make_headless_app(size=(16, 16)).close()
    avatar = AvatarManager(str(AVATARS_DIR)).load_blocking("ava")
    frames = {}
    for name, quality, scale in (
        ("low", "low", 1),
        ("medium", "medium", 1),
        ("geometric", "geometric", 1),
        ("truth", "low", 4),
    ):
        with App.headless((SIZE[0] * scale, SIZE[1] * scale), quality=quality) as app:
            model = app.scene.create_entity("ava").add_component(ModelRenderer(avatar.asset))
            weights = golden.pose_weights(POSE)
            model.set_weights(avatar.target_weights(weights, model.target_names))
            head = np.array(avatar.framing.head_center, np.float32)
            app.scene.camera.look_at(head + [0.0, 0.0, avatar.framing.camera_distance], head)
            if scale == 1:
                rows, cols = _mouth_box(app, avatar, model)
            app.step()
            pixels = app.read_pixels().astype(float)
        if scale > 1:
            pixels = pixels.reshape(SIZE[1], scale, SIZE[0], scale, 3).mean((1, 3))
        frames[name] = pixels[rows, cols]
    truth = frames["truth"]
    edge = np.abs(frames["low"] - truth).max(axis=2) > 24
    assert edge.sum() > 100
    errors = {q: np.abs(frames[q] - truth)[edge].mean() for q in ("medium", "geometric")}
    assert errors["geometric"] < 0.85 * errors["medium"], errors
