"""Spring bones (``VRMC_springBone`` 1.0, VRM 0.x ``secondaryAnimation``): a strand of
hair on a sphere head falls under its gravity and keeps its bones' lengths, springs back
to rest by its stiffness, lags behind a turn of the head, stays out of the head's
collider, and does all of it on screen through ``AvatarView`` (real EGL pixels). The
extension is untrusted JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avatarkit.spring_bones import (
    LEAF_TAIL,
    SpringBones,
    SpringCollider,
    collider_distances,
    collider_ends,
    find_springs,
)
from engine import load_gltf
from engine.gltf_write import GltfBuilder
from engine.meshes import cube, uv_sphere
from engine.skeleton import Skeleton
from engine.transform import quat_from_euler

RADIUS = 0.1
STEP = 0.04  # between the strand's joints
JOINTS = 4  # simulated; a tip node ends the strand
FPS = 60


def hair_head(
    path: Path,
    *,
    gravity: float = 1.0,
    stiffness: float = 0.0,
    top: bool = False,
    collide: bool = True,
    vrm0: bool = False,
    center: bool = False,
) -> Path:
    """A sphere head with a strand of hair sticking out along +X: from the side of the
    head (``top``: from its crown), each joint a small blue box."""
    b = GltfBuilder()
    skin = b.add_material((0.85, 0.6, 0.5, 1.0), name="skin")
    hair = b.add_material((0.1, 0.2, 0.9, 1.0), name="hair")
    face = b.add_node("Face", mesh=b.add_mesh([dict(uv_sphere(RADIUS, 16, 32), material=skin)]))
    box = b.add_mesh([dict(cube(0.03), material=hair)], "Lock")
    start = (0.0, RADIUS + 0.005, 0.0) if top else (RADIUS, 0.0, 0.0)
    strand = [b.add_node("hair0", mesh=box, translation=start, parent=face)]
    for k in range(1, JOINTS + 1):
        name = "tip" if k == JOINTS else f"hair{k}"
        strand.append(b.add_node(name, mesh=box, translation=(STEP, 0, 0), parent=strand[-1]))
    settings = {"stiffness": stiffness, "gravityPower": gravity, "dragForce": 0.4}
    if vrm0:
        ext: dict[str, Any] = {
            "VRM": {
                "specVersion": "0.0",
                "secondaryAnimation": {
                    "boneGroups": [
                        {
                            "stiffiness": stiffness,  # sic: VRM 0.x's spelling
                            "gravityPower": gravity,
                            "gravityDir": {"x": 0, "y": -1, "z": 0},
                            "dragForce": 0.4,
                            "hitRadius": 0.01,
                            "bones": [strand[0]],
                            "colliderGroups": [0] if collide else [],
                            "center": face if center else -1,
                        }
                    ],
                    "colliderGroups": [
                        {
                            "node": face,
                            "colliders": [{"offset": {"x": 0, "y": 0, "z": 0}, "radius": RADIUS}],
                        }  # fmt: skip
                    ],
                },
            }
        }
    else:
        ext = {
            "VRMC_springBone": {
                "specVersion": "1.0",
                "colliders": [{"node": face, "shape": {"sphere": {"radius": RADIUS}}}],
                "colliderGroups": [{"name": "head", "colliders": [0]}],
                "springs": [
                    {
                        "name": "hair",
                        "joints": [{"node": n, "hitRadius": 0.01, **settings} for n in strand],
                        "colliderGroups": [0] if collide else [],
                        **({"center": face} if center else {}),
                    }
                ],
            }
        }
    b.doc.extensions = ext
    b.doc.extensionsUsed = sorted(ext)
    return b.save(path)


class Rig:
    """A model's transforms, posed and stepped as ``AvatarView`` does, without a GPU."""

    def __init__(self, path: Path) -> None:
        self.asset = load_gltf(path)
        self.nodes = [n.transform.copy() for n in self.asset.nodes]
        self.skeleton = Skeleton(self.asset)
        springs = SpringBones.of(self.asset, self.nodes)
        assert springs is not None
        self.springs = springs
        self.index = {n.name: i for i, n in enumerate(self.asset.nodes)}

    def run(self, seconds: float, place: np.ndarray | None = None) -> None:
        for _ in range(round(seconds * FPS)):
            self.springs.step(self.nodes, self.skeleton.world(self.nodes), 1 / FPS, place)

    def at(self, name: str) -> np.ndarray:
        return self.skeleton.world(self.nodes)[self.index[name]][:3, 3].copy()

    def strand(self) -> np.ndarray:
        return np.array([self.at(f"hair{k}") for k in range(JOINTS)] + [self.at("tip")])


def _translation(x: float, y: float, z: float) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = x, y, z
    return m


def _rotation_x(angle: float) -> np.ndarray:
    m = np.eye(4)
    m[1:3, 1:3] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    return m


# three-vrm's own collider cases (packages/three-vrm-springbone/src/tests/
# VRMSpringBoneColliderShape{Sphere,Capsule}.test.ts): collider matrix, offset, capsule
# tail (None: a sphere), the point (hit radius 1; every collider's radius 1) -> its
# distance from the surface and the direction out.
THREE_VRM_CASES = [
    (_translation(1, 0, 0), (0, 0, 0), None, (2, 1, 0), np.sqrt(2) - 2, (1, 1, 0)),
    (_translation(1, 0, 0), (0, 0, -1), None, (2, 1, 0), np.sqrt(3) - 2, (1, 1, 1)),
    (_rotation_x(-np.pi / 2), (0, 1, 1), None, (-1, 1, -1), -1.0, (-1, 0, 0)),
    (_translation(1, 0, 0), (0, 0, 0), (0, 0, 0), (2, 1, 0), np.sqrt(2) - 2, (1, 1, 0)),
    (np.eye(4), (-1, 0, 0), (1, 1, 1), (-2, 0, 1), np.sqrt(2) - 2, (-1, 0, 1)),
    (np.eye(4), (-1, 0, 0), (1, 1, 1), (3, 0, 0), np.sqrt(6) - 2, (2, -1, -1)),
    (np.eye(4), (-1, 0, 0), (1, 1, 1), (0, 0, 0), np.sqrt(3) / 3 - 2, (1, -1, -1)),
]


@pytest.mark.parametrize("matrix,offset,end,point,distance,direction", THREE_VRM_CASES)
def test_colliders_match_three_vrms_own_cases(matrix, offset, end, point, distance, direction):
    collider = SpringCollider(0, offset, 1.0, end)
    got, way = collider_distances(
        np.array([point], float), np.ones((1, 1)), *collider_ends([collider], matrix[None])
    )
    assert got[0, 0] == pytest.approx(distance, abs=1e-5)
    assert way[0, 0] == pytest.approx(np.array(direction) / np.linalg.norm(direction), abs=1e-5)


def test_a_strand_falls_under_its_gravity_and_keeps_its_length(tmp_path):
    rig = Rig(hair_head(tmp_path / "fall.glb", collide=False))
    rest = rig.strand()
    rig.run(3.0)
    hung = rig.strand()
    bones = np.linalg.norm(np.diff(hung, axis=0), axis=1)
    assert bones == pytest.approx([STEP] * JOINTS, abs=1e-6)  # rods, not rubber
    assert hung[0] == pytest.approx(rest[0])  # the root stays on the head
    # Hanging: the tip below the root by nearly the strand's length, not beside it.
    drop = hung[0][1] - hung[-1][1]
    assert drop > 0.95 * STEP * JOINTS and abs(hung[-1][0] - hung[0][0]) < 0.02, hung


def test_stiffness_holds_the_rest_and_a_turn_swings_the_strand(tmp_path):
    rig = Rig(hair_head(tmp_path / "stiff.glb", gravity=0.0, stiffness=4.0, collide=False))
    rest = rig.strand()
    rig.run(1.0)
    assert rig.strand() == pytest.approx(rest, abs=1e-6)  # no drift at rest
    # Turn the head a quarter round about Y at once: the strand trails, then catches up.
    face = rig.index["Face"]
    rig.nodes[face].rotation = quat_from_euler(yaw=np.pi / 2)
    turned = (rig.skeleton.world(rig.nodes)[face][:3, :3] @ rest.T).T  # the head at 0
    rig.run(1 / FPS)
    tip = rig.strand()[-1] - rig.at("hair0")
    want = turned[-1] - turned[0]
    lag = np.degrees(np.arccos(tip @ want / np.linalg.norm(tip) / np.linalg.norm(want)))
    assert lag > 30, lag  # a rigid strand would have turned with the head
    rig.run(4.0)
    assert rig.strand() == pytest.approx(turned, abs=2e-3)  # back at rest on the turned head


def test_moving_the_avatar_through_the_scene_swings_the_strand(tmp_path):
    rig = Rig(hair_head(tmp_path / "move.glb", gravity=0.0, stiffness=4.0, collide=False))
    rest = rig.strand()
    place = np.eye(4)
    rig.run(0.5, place)
    assert rig.strand() == pytest.approx(rest, abs=1e-6)  # standing: nothing moves
    place[1, 3] = 0.1  # the whole avatar lifted 10 cm in one frame: the strand trails
    rig.run(1 / FPS, place)
    assert rig.strand()[-1][1] < rest[-1][1] - 0.02
    rig.run(3.0, place)  # and settles where it was on the model
    assert rig.strand() == pytest.approx(rest, abs=1e-3)
    place[0, 3] = 25.0  # put somewhere else in one frame: placed, not flung
    rig.run(1 / FPS, place)
    assert rig.strand() == pytest.approx(rest, abs=1e-6)


@pytest.mark.parametrize("vrm0", [False, True])
def test_a_spring_with_a_center_moves_with_it(tmp_path, vrm0):
    """A spring's ``center`` (here the head) keeps its tails' inertia in that node's space,
    as three-vrm does: the avatar lifted through the scene, or the head turned, carries
    the strand along without a swing (the same moves swing a strand without one)."""
    path = hair_head(tmp_path / "c.glb", gravity=0.0, stiffness=4.0, collide=False, vrm0=vrm0)
    centred_path = hair_head(
        tmp_path / "cc.glb", gravity=0.0, stiffness=4.0, collide=False, vrm0=vrm0, center=True
    )
    assert {j.center for j in find_springs(load_gltf(centred_path))[0]} == {0}
    assert {j.center for j in find_springs(load_gltf(path))[0]} == {None}
    free, centred = Rig(path), Rig(centred_path)
    rest = free.strand()
    place = np.eye(4)
    for rig in (free, centred):
        rig.run(0.5, place)
    place[1, 3] = 0.1  # lifted 10 cm in one frame
    for rig in (free, centred):
        rig.run(1 / FPS, place)
    assert free.strand()[-1][1] < rest[-1][1] - 0.02  # (the model's own space)
    assert centred.strand() == pytest.approx(rest, abs=1e-6)
    # The head turned a quarter turn in one frame: the centred strand turns with it.
    for rig in (free, centred):
        rig.nodes[rig.index["Face"]].rotation = quat_from_euler(yaw=np.pi / 2)
        rig.run(1 / FPS, place)
    turn = centred.skeleton.world(centred.nodes)[centred.index["Face"]]
    turned = (turn @ np.c_[rest, np.ones(len(rest))].T).T[:, :3]
    assert np.abs(turned - rest).max() > 0.1
    assert centred.strand() == pytest.approx(turned, abs=1e-6)
    assert np.abs(free.strand() - turned).max() > 0.02


def test_the_head_collider_keeps_the_strand_out(tmp_path):
    with_collider = Rig(hair_head(tmp_path / "on.glb", top=True))
    without = Rig(hair_head(tmp_path / "off.glb", top=True, collide=False))
    for rig in (with_collider, without):
        rig.run(3.0)
    gap = np.linalg.norm(with_collider.strand()[1:], axis=1)  # from the head's centre
    # Outside the sphere plus the joint's hit radius (within a millimetre: as in three-vrm,
    # the rod's length is kept after the push).
    assert gap.min() >= RADIUS + 0.01 - 1e-3, gap
    assert np.linalg.norm(without.strand()[1:], axis=1).min() < RADIUS - 0.02  # through it


def test_vrm0_secondary_animation(tmp_path):
    path = hair_head(tmp_path / "v0.glb", top=True, vrm0=True)
    joints, colliders = find_springs(load_gltf(path))
    # Every node from the root down is a joint, the last one with a virtual tail.
    assert [j.child is None for j in joints] == [False] * JOINTS + [True]
    assert {j.stiffness for j in joints} == {0.0} and {j.drag for j in joints} == {0.4}
    rig = Rig(path)
    rig.run(3.0)
    assert np.linalg.norm(rig.strand()[1:], axis=1).min() >= RADIUS + 0.01 - 1e-3
    tip = rig.skeleton.world(rig.nodes)[rig.index["tip"]]
    leaf = np.linalg.norm(tip[:3, :3] @ (np.array([STEP, 0, 0]) / STEP * LEAF_TAIL))
    assert leaf == pytest.approx(LEAF_TAIL)


def test_vrm0_collider_offsets_turn_unitys_z(tmp_path):
    path = hair_head(tmp_path / "z.glb", vrm0=True)
    asset = load_gltf(path)
    group = asset.extensions["VRM"]["secondaryAnimation"]["colliderGroups"][0]
    group["colliders"][0]["offset"] = {"x": 0.01, "y": 0.02, "z": 0.03}
    assert find_springs(asset)[1][0].offset == (0.01, 0.02, -0.03)


@pytest.mark.parametrize(
    "hostile",
    [
        {"springs": "x", "colliders": 3},
        {"springs": [{"joints": [{"node": 999}, {"node": -1}, {"node": True}]}]},
        {
            "springs": [
                {
                    "joints": [
                        {"node": 1, "stiffness": "hard", "gravityDir": [1, "x"]},
                        {"node": 2},
                    ],
                    "colliderGroups": [7, "a", None],
                }
            ],
            "colliders": [{"node": 0, "shape": {"capsule": {"radius": float("nan")}}}, 5],
            "colliderGroups": [{"colliders": [0, 1, 99]}, "g"],
        },  # fmt: skip
        {"springs": [{"joints": [{"node": 1}] * 5000}]},
        {
            "springs": [{"joints": [{"node": 1, "gravityDir": [1e300, 0, 0]}, {"node": 2}]}],
            "colliders": [{"node": 0, "shape": {"sphere": {"offset": [0, -1e300, 0]}}}],
        },  # fmt: skip
    ],
)
def test_hostile_extensions_are_skipped_not_raised(tmp_path, hostile):
    asset = load_gltf(hair_head(tmp_path / "h.glb"))
    asset.extensions["VRMC_springBone"] = hostile
    joints, colliders = find_springs(asset)
    assert all(0 <= j.node < len(asset.nodes) for j in joints) and len(joints) <= 1
    for j in joints:
        assert j.stiffness == 1.0 and j.gravity_dir == (0.0, -1.0, 0.0) and j.colliders == ()
    assert colliders == []
    nodes = [n.transform.copy() for n in asset.nodes]
    springs = SpringBones(Skeleton(asset), nodes, joints, colliders)
    springs.step(nodes, Skeleton(asset).world(nodes), 1 / 30)  # and it steps
    assert all(np.isfinite(n.rotation).all() for n in nodes)


def test_a_chain_deeper_than_max_depth_costs_max_depth_levels(tmp_path):
    from avatarkit.spring_bones import MAX_DEPTH, SpringJoint

    b = GltfBuilder()
    chain = [b.add_node("root", mesh=b.add_mesh([dict(cube(0.01))]))]
    for k in range(200):
        chain.append(b.add_node(f"j{k}", translation=(0.01, 0, 0), parent=chain[-1]))
    asset = load_gltf(b.save(tmp_path / "deep.glb"))
    nodes = [n.transform.copy() for n in asset.nodes]
    joints = [
        SpringJoint(n, c, 0.0, 1.0, 1.0, (0.0, -1.0, 0.0), 0.4, ())
        for n, c in zip(chain, chain[1:], strict=False)
    ]
    springs = SpringBones(Skeleton(asset), nodes, joints)
    assert len(springs._levels) == MAX_DEPTH
    springs.step(nodes, Skeleton(asset).world(nodes), 1 / 30)
    moved = [not np.allclose(nodes[n].rotation, asset.nodes[n].transform.rotation) for n in chain]
    # The top of the chain swings (below, it already hangs along its gravity); past
    # MAX_DEPTH nothing is stepped.
    assert moved[0] and not any(moved[MAX_DEPTH:])


@pytest.mark.parametrize("flat", ["hair1", "Face"])
def test_a_bone_scaled_to_nothing_does_not_stop_the_frame(tmp_path, flat):
    rig = Rig(hair_head(tmp_path / "flat.glb"))
    rig.nodes[rig.index[flat]].scale = np.zeros(3, np.float32)
    for _ in range(5):  # springs found at rest, stepped on the degenerate pose
        rig.springs.step(rig.nodes, rig.skeleton.world(rig.nodes), 1 / FPS)
    # Found on it: the bones that still have a length (none when the head is flat).
    springs = SpringBones.of(rig.asset, [n.copy() for n in rig.nodes])
    assert (springs is None) == (flat == "Face")
    assert all(np.isfinite(n.rotation).all() for n in rig.nodes)


def test_a_view_swings_the_hair_on_screen(tmp_path, make_headless_app):
    """Through ``AvatarView`` on real EGL: the strand sticking out to the side at first
    hangs down beside the head a second later (the springs step in the view's frame)."""
    from tests.avatars.test_skinned_head import _settle, framed_view

    views = framed_view(make_headless_app, hair_head(tmp_path / "view.glb", collide=False))
    app, view = next(views)
    try:
        springs, view._springs = view._springs, None
        assert springs is not None
        rigid = _settle(app, 1)  # the strand as the file has it: straight out
        view._springs = springs
        hung = _settle(app, 60)
        spans = []
        for picture in (rigid, hung):
            ys, xs = np.nonzero((picture[..., 2] - picture[..., 0] > 70) & (picture[..., 2] > 150))
            assert len(xs) > 40
            spans.append((np.ptp(xs), np.ptp(ys)))
        (wide, flat), (narrow, tall) = spans
        assert wide > 3 * flat and tall > 3 * narrow, spans  # out to the side; then down
    finally:
        views.close()
