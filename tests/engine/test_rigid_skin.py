"""Rigid skin draws (``engine.render.skinning.rigid_runs``, ``gpu.RigidDraw``): on a software
rasteriser the triangles of a skinned primitive that follow one joint are drawn with that
joint's matrix folded into the model matrix, by the variant without skin code. Same pixels
as skinning every vertex, for a posed, morphed, mirrored avatar and for double-sided and
blended materials. Real EGL pixels of the project's RPM-shaped head."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from avatarkit.bones import BoneRig
from engine import App, ModelRenderer, load_gltf
from engine.render.skinning import MIN_RIGID_TRIANGLES, rigid_runs
from engine.render.upload_data import compact_influences

RPM_HEAD = Path(__file__).resolve().parents[2] / "assets/test/rpm_head.glb"


def test_runs_hold_exactly_the_triangles_one_joint_carries():
    asset = load_gltf(RPM_HEAD)
    prim = next(p for m in asset.meshes for p in m.primitives if p.targets)
    joints, weights = compact_influences(prim)
    # A vertex bound to no joint (zero weights) follows the model matrix alone.
    weights = weights.copy()
    weights[prim.indices[:3]] = 0.0
    order, runs, skinned_first = rigid_runs(joints, weights, prim.indices)
    triangles = prim.indices.reshape(-1, 3)
    assert sorted(map(tuple, order.reshape(-1, 3))) == sorted(map(tuple, triangles))
    assert runs and runs[0][1] == 0 and sum(r[2] for r in runs) == skinned_first
    for joint, first, count in runs:
        assert count >= MIN_RIGID_TRIANGLES * 3
        vertices = order[first : first + count]
        if joint < 0:
            assert not weights[vertices].any()
        else:
            assert (joints[vertices, 0] == joint).all()
            assert np.allclose(weights[vertices, 0], 1.0)
    rest = order[skinned_first:].reshape(-1, 3)
    rigid = np.abs(weights[:, 0] - 1.0) <= 1e-6
    one_joint = rigid[rest].all(axis=1) & (joints[rest, 0] == joints[rest[:, :1], 0]).all(axis=1)
    kept = {j for j, _, _ in runs}
    assert not any(int(joints[t[0], 0]) in kept for t in rest[one_joint])


def _draw(asset, rigid: bool, mirror: str = "") -> tuple[np.ndarray, int]:
    """The head turned, the eyes looking aside, the jaw open (``mirror``: the whole
    avatar or its head joint scaled by -1 across); the pixels and how many of its
    primitives were drawn rigidly."""
    with App.headless((160, 160), fps=30, samples=0) as app:
        app.renderer.rigid_skin = rigid
        entity = app.scene.create_entity("avatar")
        if mirror == "entity":
            entity.transform.scale[0] = -1.0
        model = entity.add_component(ModelRenderer(asset))
        rig = BoneRig.find(model.nodes, asset)
        assert rig is not None
        rig.apply(model.nodes, np.array([0.25, 0.4, -0.1]), np.array([0.3, -0.1]))
        if mirror == "joint":
            model.nodes[rig.names["head"]].scale[0] = -1.0
        model.set_weight("jawOpen", 0.8)
        head = model.entity.world_matrix()[:3, 3]
        app.scene.camera.look_at(head + [0.0, 1.62, 0.75], head + [0.0, 1.6, 0.0])
        app.step()
        uploads = app.renderer._assets.values()
        drawn = sum(p.rigid is not None for gpu in uploads for m in gpu.meshes for p in m)
        return app.read_pixels().astype(int), drawn


@pytest.mark.parametrize("mirror", ["", "entity", "joint"])
def test_rigid_draws_draw_the_skinned_pixels(egl, mirror):
    asset = load_gltf(RPM_HEAD)
    rigid, drawn = _draw(asset, True, mirror)
    skinned, none = _draw(asset, False, mirror)
    assert drawn >= 3 and none == 0  # the head, both eyes (the body's runs are short)
    assert (np.abs(rigid - skinned).max(axis=-1) > 8).sum() <= 4  # rounding, an edge pixel
    assert np.abs(rigid - skinned).mean() < 0.05
    assert (np.abs(rigid - rigid[0, 0]).max(axis=-1) > 30).sum() > 3000  # a face was drawn


def test_double_sided_and_blended_materials_draw_alike(egl):
    asset = copy.deepcopy(load_gltf(RPM_HEAD))
    for material in asset.materials:
        if material.name == "Wolf3D_Skin":
            material.double_sided = True
        if material.name == "Wolf3D_Eye":
            material.alpha_mode = "BLEND"
            material.base_color_factor = (*material.base_color_factor[:3], 0.5)
    rigid, drawn = _draw(asset, True)
    skinned, _ = _draw(asset, False)
    assert drawn >= 3
    assert (np.abs(rigid - skinned).max(axis=-1) > 8).sum() <= 4


def test_a_palette_edited_in_place_is_written_again(egl):
    """``JointPalette.set`` skips only a read-only pose it already holds (what
    ``Skeleton.palette`` hands out while the pose stands); rows edited in place are new."""
    from engine.render.skinning import JointPalette

    with App.headless((16, 16), fps=30, samples=0) as app:
        palette = JointPalette(app.ctx)
        rows = np.zeros((2, 3, 4), np.float32)
        palette.set(rows)
        version = palette.version
        rows[1, 0, 3] = 2.5  # the same array, edited
        palette.set(rows)
        assert palette.version != version
        written = np.frombuffer(palette.buffer.read(96), np.float32).reshape(2, 3, 4)
        assert written[1, 0, 3] == 2.5
        rows.flags.writeable = False
        version = palette.version
        palette.set(rows)
        assert palette.version == version


def _draw_pair(asset, rigid: bool) -> np.ndarray:
    """Two instances of one avatar side by side, each posed its own way, then posed again
    for a second frame (what the renderer kept from the first must not be reused)."""
    poses = (((0.2, 0.5, 0.0), (0.3, 0.0)), ((-0.1, -0.4, 0.2), (-0.3, 0.1)))
    with App.headless((200, 120), fps=30, samples=0) as app:
        app.renderer.rigid_skin = rigid
        models, rigs = [], []
        for k in range(2):
            entity = app.scene.create_entity(f"avatar{k}")
            entity.transform.translation[0] = 0.35 * (k - 0.5)
            models.append(entity.add_component(ModelRenderer(asset)))
            rigs.append(BoneRig.find(models[-1].nodes, asset))
        app.scene.camera.look_at((0.0, 1.62, 1.0), (0.0, 1.6, 0.0))
        for turn in (1.0, -0.6):
            for model, rig, (head, gaze) in zip(models, rigs, poses, strict=True):
                assert rig is not None
                rig.apply(model.nodes, turn * np.array(head), turn * np.array(gaze))
            app.step()
        return app.read_pixels().astype(int)


def test_two_instances_keep_their_own_poses(egl):
    asset = load_gltf(RPM_HEAD)
    rigid, skinned = _draw_pair(asset, True), _draw_pair(asset, False)
    assert (np.abs(rigid - skinned).max(axis=-1) > 8).sum() <= 4
    left, right = np.split(rigid, 2, axis=1)
    assert np.abs(left - right[:, ::-1]).max() > 50  # not one pose mirrored: two poses
