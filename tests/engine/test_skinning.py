"""GPU skinning on real files: the Khronos SimpleSkin sample (Debian ``assimp-testmodels``,
installed by scripts/setup.sh) drawn through real EGL, a skinned + morphed mesh (morph
first, then skin), quantized joints and weights, and hostile skins refused with a code."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import numpy as np
import pytest

from engine import App, EngineError, ModelRenderer, load_gltf
from engine.errors import GLTF_LIMIT_EXCEEDED, INVALID_GLTF
from engine.gltf_skin import MAX_JOINTS
from engine.gltf_write import GltfBuilder
from engine.skeleton import Skeleton
from engine.transform import Transform, quat_from_euler

SIMPLE_SKIN = Path("/usr/share/assimp/models/glTF2/simple_skin/simple_skin.gltf")
needs_sample = pytest.mark.skipif(
    not SIMPLE_SKIN.is_file(), reason="Debian assimp-testmodels is not installed"
)
SIZE = (96, 96)


def _render(app: App, asset, pose=None) -> np.ndarray:
    """Draw ``asset`` once (``pose(model)`` edits its nodes first); the RGB pixels."""
    entity = app.scene.create_entity("model")
    model = entity.add_component(ModelRenderer(asset))
    if pose is not None:
        pose(model)
    app.step()
    pixels = app.read_pixels().astype(int)
    entity.destroy()
    return pixels


def _coverage(pixels: np.ndarray, background: np.ndarray) -> np.ndarray:
    return np.abs(pixels - background).max(axis=-1) > 30


def _centroid(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    return np.array([cols.mean(), rows.mean()])


@pytest.fixture
def framed(egl):
    """A headless app looking at SimpleSkin's strip (x 0..1, y 0..2) head on."""
    app = App.headless(SIZE, fps=30, samples=0)
    app.scene.camera.look_at((0.5, 1.0, 6.0), (0.5, 1.0, 0.0))
    yield app
    app.close()


def _background(app: App) -> np.ndarray:
    app.step()
    return app.read_pixels().astype(int)


@needs_sample
def test_simple_skin_bind_pose_is_the_rest_shape(framed):
    """At rest each vertex goes through world(joint) @ inverseBind(joint): for SimpleSkin
    both joints give a shift of -0.5 along x (joint at y=1, bind matrices translate by
    (-0.5, -1, 0)), so the skinned strip covers the pixels of the unskinned strip moved
    by that shift: the palette is composed in the spec's order."""
    asset = load_gltf(SIMPLE_SKIN)
    assert len(asset.skins) == 1 and asset.skins[0].joints == [1, 2]
    assert asset.nodes[0].skin == 0
    background = _background(framed)
    skinned = _coverage(_render(framed, asset), background)
    bare = copy.copy(asset)
    bare.nodes = [copy.copy(n) for n in asset.nodes]
    bare.nodes[0].skin = None
    bare.nodes[0].transform = Transform(translation=(-0.5, 0.0, 0.0))
    rigid = _coverage(_render(framed, bare), background)
    assert rigid.sum() > 300  # the strip is in view
    assert (skinned != rigid).sum() <= 4  # a few edge pixels at most


@needs_sample
def test_turning_a_joint_bends_the_strip(framed):
    """Rotating the upper joint about +z bends the top of the strip towards -x (screen
    left); the rows bound only to the lower joint do not move."""
    asset = load_gltf(SIMPLE_SKIN)
    background = _background(framed)
    rest = _coverage(_render(framed, asset), background)

    def bend(model: ModelRenderer) -> None:
        model.nodes[2].rotation = quat_from_euler(roll=0.8)

    bent = _coverage(_render(framed, asset, bend), background)
    rows = np.nonzero(rest.any(axis=1))[0]
    top, bottom = rows[: len(rows) // 4], rows[-len(rows) // 10 :]
    assert (bent[bottom] == rest[bottom]).mean() > 0.98  # weighted to the root joint
    moved = _centroid(bent[: top[-1] + 1]) - _centroid(rest[: top[-1] + 1])
    assert moved[0] < -3  # the top went left by several pixels


def _morph_skin_box(path: Path) -> Path:
    """A unit box bound to one joint, with a morph target that shifts it +x by 1."""
    from engine.meshes import cube

    b = GltfBuilder()
    mesh = cube(0.5)
    n = len(mesh["positions"])
    shift = np.tile(np.array([1.0, 0.0, 0.0], np.float32), (n, 1))
    prim = dict(
        mesh,
        targets=[{"POSITION": shift, "NORMAL": None}],
        joints=np.zeros((n, 4), np.uint16),
        weights=np.tile(np.array([1.0, 0, 0, 0], np.float32), (n, 1)),
    )
    m = b.add_mesh([prim], "box", ["shift"])
    joint = b.add_node("joint")
    skin = b.add_skin([joint])
    b.add_node("box", mesh=m, skin=skin)
    return b.save(path)


def test_morphs_apply_before_skinning(tmp_path, egl):
    """glTF order: morph, then skin. With the joint turned 90° about z, the +x morph
    shift is turned too and shows as a move up (skin-then-morph would move it right)."""
    asset = load_gltf(_morph_skin_box(tmp_path / "box.glb"))
    app = App.headless(SIZE, fps=30, samples=0)
    try:
        app.scene.camera.look_at((0.0, 0.0, 8.0), (0.0, 0.0, 0.0))
        background = _background(app)

        def turned(weight: float):
            def pose(model: ModelRenderer) -> None:
                model.nodes[0].rotation = quat_from_euler(roll=np.pi / 2)
                model.set_weight("shift", weight)

            return pose

        still = _centroid(_coverage(_render(app, asset, turned(0.0)), background))
        shifted = _centroid(_coverage(_render(app, asset, turned(1.0)), background))
    finally:
        app.close()
    dx, dy = shifted - still
    assert dy < -5 and abs(dx) < 2, (dx, dy)  # up on screen (rows grow downwards)


_NAN_MATRICES = (
    "data:application/octet-stream;base64,"
    + base64.b64encode(np.full(32, np.nan, np.float32).tobytes()).decode()
)


def _simple_skin_doc() -> dict:
    return json.loads(SIMPLE_SKIN.read_text())


def _write(doc: dict, path: Path) -> Path:
    path.write_text(json.dumps(doc))
    return path


@needs_sample
def test_quantized_joints_and_weights_draw_like_floats(tmp_path, framed):
    """KHR_mesh_quantization: unsigned-byte joints and normalized unsigned-byte weights
    give the same bend as the file's unsigned-short joints and float weights."""
    asset = load_gltf(SIMPLE_SKIN)
    prim = asset.meshes[0].primitives[0]
    doc = _simple_skin_doc()
    joints = prim.joints.astype(np.uint8).tobytes()
    weights = np.round(prim.skin_weights * 255).astype(np.uint8).tobytes()
    data = joints + weights
    doc["buffers"].append(
        {
            "uri": "data:application/octet-stream;base64," + base64.b64encode(data).decode(),
            "byteLength": len(data),
        }
    )
    buf = len(doc["buffers"]) - 1
    doc["bufferViews"] += [
        {"buffer": buf, "byteOffset": 0, "byteLength": len(joints)},
        {"buffer": buf, "byteOffset": len(joints), "byteLength": len(weights)},
    ]
    views = len(doc["bufferViews"])
    doc["accessors"] += [
        {"bufferView": views - 2, "componentType": 5121, "count": 10, "type": "VEC4"},
        {
            "bufferView": views - 1,
            "componentType": 5121,
            "normalized": True,
            "count": 10,
            "type": "VEC4",
        },
    ]
    attrs = doc["meshes"][0]["primitives"][0]["attributes"]
    attrs["JOINTS_0"], attrs["WEIGHTS_0"] = len(doc["accessors"]) - 2, len(doc["accessors"]) - 1
    doc["extensionsUsed"] = doc["extensionsRequired"] = ["KHR_mesh_quantization"]
    quantized = load_gltf(_write(doc, tmp_path / "quantized.gltf"))
    assert quantized.meshes[0].primitives[0].joints.dtype == np.uint16

    def bend(model: ModelRenderer) -> None:
        model.nodes[2].rotation = quat_from_euler(roll=0.8)

    background = _background(framed)
    reference = _coverage(_render(framed, asset, bend), background)
    drawn = _coverage(_render(framed, quantized, bend), background)
    assert (reference != drawn).sum() <= 4


@needs_sample
@pytest.mark.parametrize(
    "mutate, code, field",
    [
        (lambda d: d["skins"][0].update(joints=[1, 99]), INVALID_GLTF, "skins[0].joints[1]"),
        (lambda d: d["skins"][0].update(joints=[1, 1]), INVALID_GLTF, "skins[0].joints"),
        (lambda d: d["skins"][0].update(joints=[]), INVALID_GLTF, "skins[0].joints"),
        (lambda d: d["nodes"][0].update(skin=3), INVALID_GLTF, "nodes[0].skin"),
        (lambda d: d["skins"][0].update(inverseBindMatrices=0), INVALID_GLTF,
         "skins[0].inverseBindMatrices"),
        (lambda d: d["skins"][0].update(skeleton=-1), INVALID_GLTF, "skins[0].skeleton"),
        (lambda d: d["meshes"][0]["primitives"][0]["attributes"].pop("WEIGHTS_0"), INVALID_GLTF,
         "meshes[0].primitives[0].attributes"),
        (lambda d: d["meshes"][0]["primitives"][0]["attributes"].update(JOINTS_0=1),
         INVALID_GLTF, "meshes[0].primitives[0].attributes.JOINTS_0"),
        # The vertices name joint 1; a skin of one joint has no palette entry 1.
        (lambda d: d["skins"][0].update(joints=[1]), INVALID_GLTF, "nodes[0].skin"),
        (lambda d: d["buffers"][2].update(uri=_NAN_MATRICES), INVALID_GLTF,
         "skins[0].inverseBindMatrices"),
        (lambda d: d.update(nodes=d["nodes"] + [{} for _ in range(MAX_JOINTS)])
         or d["skins"][0].update(joints=list(range(1, MAX_JOINTS + 2))),
         GLTF_LIMIT_EXCEEDED, "skins[0].joints"),
    ],
)  # fmt: skip
def test_hostile_skins_are_coded_errors(tmp_path, mutate, code, field):
    doc = _simple_skin_doc()
    mutate(doc)
    with pytest.raises(EngineError) as info:
        load_gltf(_write(doc, tmp_path / "hostile.gltf"))
    assert info.value.code == code
    assert info.value.field == field


def test_skeleton_poses_like_the_node_walk():
    """The batched world matrices equal each node's own ``local_matrix()`` composed down
    the tree (TRS, an explicit matrix, a non-unit quaternion)."""
    from engine.gltf_asset import GltfAsset, GltfNode

    rng = np.random.default_rng(3)
    nodes = []
    for i in range(6):
        if i == 4:
            matrix = np.eye(4)
            matrix[:3, :3] = rng.normal(size=(3, 3))
            matrix[:3, 3] = rng.normal(size=3)
            transform = Transform(matrix=matrix)
        else:
            q = rng.normal(size=4) * (2.0 if i == 2 else 1.0)
            transform = Transform(rng.normal(size=3), q, rng.uniform(0.5, 2, 3))
        nodes.append(GltfNode(f"n{i}", transform))
    for parent, child in ((0, 1), (1, 2), (0, 3), (3, 4), (4, 5)):
        nodes[parent].children.append(child)
    asset = GltfAsset(Path("tree.glb"), nodes, [], [], [0])
    world = Skeleton(asset).world([n.transform for n in nodes])
    for index, expected in asset.world_matrices().items():
        np.testing.assert_allclose(world[index], expected, rtol=1e-5, atol=1e-5)


@needs_sample
def test_the_post_pass_region_holds_the_skinned_pixels(framed):
    """``Renderer.drawn_region`` (where the post pass runs) is the rest box moved by the
    joints, not the rest box: the bent strip's pixels all lie inside it."""
    asset = load_gltf(SIMPLE_SKIN)
    framed.set_quality("medium")  # a post pass: the region is tracked only for one
    background = _background(framed)
    model = framed.scene.create_entity("m").add_component(ModelRenderer(asset))
    model.nodes[2].rotation = quat_from_euler(roll=1.4)  # far out of the rest box
    framed.step()
    drawn = _coverage(framed.read_pixels().astype(int), background)
    x, y, w, h = framed.target._pixels(framed.renderer.drawn_region)
    rows, cols = np.nonzero(drawn[::-1])  # GL rows run bottom-up
    assert drawn.sum() > 200
    assert x <= cols.min() and cols.max() < x + w
    assert y <= rows.min() and rows.max() < y + h
    assert w * h < SIZE[0] * SIZE[1]  # a part of the frame, not all of it


def _spread_to_eight(prim) -> None:
    """The same skin over eight influences: each of a vertex's first two weights split
    into four equal parts on its joint (JOINTS_1/WEIGHTS_1 in use, nothing zero to drop
    where a vertex has two joints)."""
    assert prim.joints is not None and prim.skin_weights is not None
    prim.joints = np.tile(prim.joints[:, :2], 4)
    prim.skin_weights = np.tile(prim.skin_weights[:, :2] / 4, 4)


def test_influences_are_compacted_to_what_vertices_use():
    """The GPU gets as many influences as the busiest vertex weights (llvmpipe gathers
    palette rows for every one), heaviest first; zero weights are all that is dropped."""
    from engine.gltf_asset import GltfPrimitive
    from engine.render.upload_data import compact_influences, skin_influences

    def prim(joints, weights) -> GltfPrimitive:
        return GltfPrimitive(
            positions=np.zeros((len(joints), 3), np.float32),
            normals=np.zeros((len(joints), 3), np.float32),
            uvs=None,
            indices=np.zeros(0, np.uint32),
            joints=np.array(joints, np.uint16),
            skin_weights=np.array(weights, np.float32),
        )

    two = prim([[3, 5, 0, 0], [7, 2, 0, 0]], [[0.25, 0.75, 0, 0], [1, 0, 0, 0]])
    assert skin_influences(two) == 2
    joints, weights = compact_influences(two)
    np.testing.assert_array_equal(joints, [[5, 3], [7, 2]])  # joint 2 at weight 0: no pull
    np.testing.assert_allclose(weights, [[0.75, 0.25], [1, 0]])
    assert skin_influences(prim([[0, 0, 0, 0]], [[0, 0, 0, 0]])) == 1  # bound to none
    five = prim([[1, 2, 3, 4, 5, 0, 0, 0]], [[0.2] * 5 + [0] * 3])
    assert skin_influences(five) == 8
    assert compact_influences(five)[0].shape == (1, 8)


@needs_sample
def test_eight_influences_bend_like_two(framed):
    """JOINTS_1/WEIGHTS_1 (their own shader variant): the SimpleSkin strip with its
    weights spread over eight influences bends exactly like the file's, which the GPU
    gets compacted to the two its vertices use."""
    from engine.render.upload_data import skin_influences

    asset = load_gltf(SIMPLE_SKIN)
    eight = copy.deepcopy(asset)
    for prim in (p for mesh in eight.meshes for p in mesh.primitives):
        _spread_to_eight(prim)
        assert skin_influences(prim) == 8
    assert {skin_influences(p) for mesh in asset.meshes for p in mesh.primitives} == {2}

    def bend(model: ModelRenderer) -> None:
        model.nodes[2].rotation = quat_from_euler(roll=0.8)

    background = _background(framed)
    four_bent = _coverage(_render(framed, asset, bend), background)
    eight_bent = _coverage(_render(framed, eight, bend), background)
    assert four_bent.sum() > 300
    assert (four_bent != eight_bent).sum() <= 2
    assert (four_bent != _coverage(_render(framed, asset), background)).sum() > 50  # it bends


@needs_sample
def test_variants_sharing_a_material_each_get_it(framed):
    """Two primitives of one mesh with one material but different shader variants (four
    and eight influences), drawn one after the other: the second variant's program gets
    the material too (its uniforms are its own), so it draws in the same colour."""
    from engine.gltf_asset import GltfMaterial

    asset = load_gltf(SIMPLE_SKIN)
    asset.materials.append(GltfMaterial(base_color_factor=(0.9, 0.1, 0.1, 1.0)))
    prim = asset.meshes[0].primitives[0]
    prim.material = len(asset.materials) - 1
    background = _background(framed)
    alone = _render(framed, asset)
    covered = _coverage(alone, background)
    assert covered.sum() > 300

    front = copy.deepcopy(prim)  # the same strip a little nearer, through the 8-joint variant
    front.positions = front.positions + np.float32([0.0, 0.0, 0.05])
    _spread_to_eight(front)
    asset.meshes[0].primitives.append(front)
    both = _render(framed, asset)
    assert (_coverage(both, background) == covered).mean() > 0.98
    colour = alone[covered].mean(axis=0)
    assert colour[0] > 2 * colour[1]  # red
    assert np.abs(both[covered].mean(axis=0) - colour).max() < 8
