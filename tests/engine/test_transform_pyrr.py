"""engine.transform and engine.camera do their matrix and quaternion work with pyrr:
pinned against the hand-written formulas they replaced, over random and edge inputs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from engine.camera import Camera
from engine.transform import (
    Transform,
    quat_from_euler,
    quat_from_matrix,
    quat_multiply,
    quat_to_matrix,
)


def _old_quat_to_matrix(q):
    x, y, z, w = (float(v) for v in q)
    n = x * x + y * y + z * z + w * w
    s = 2.0 / n if n > 0 else 0.0
    return np.array(
        [
            [1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
            [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
            [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)],
        ]
    )


def _old_multiply(a, b):
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def _old_euler(pitch, yaw, roll):
    qx = np.array([math.sin(pitch / 2), 0, 0, math.cos(pitch / 2)])
    qy = np.array([0, math.sin(yaw / 2), 0, math.cos(yaw / 2)])
    qz = np.array([0, 0, math.sin(roll / 2), math.cos(roll / 2)])
    return _old_multiply(_old_multiply(qy, qx), qz)


def _old_view(position, target, up):
    def unit(v):
        n = float(np.linalg.norm(v))
        return v / n if n > 0 else v

    f = unit(target - position)
    s = unit(np.cross(f, up))
    u = np.cross(s, f)
    m = np.eye(4)
    m[0, :3], m[1, :3], m[2, :3] = s, u, -f
    m[:3, 3] = -m[:3, :3] @ position
    return m


def _old_projection(fov_y, aspect, n, f):
    t = 1.0 / math.tan(math.radians(fov_y) / 2)
    m = np.zeros((4, 4))
    m[0, 0], m[1, 1] = t / aspect, t
    m[2, 2], m[2, 3], m[3, 2] = (f + n) / (n - f), 2 * f * n / (n - f), -1.0
    return m


def test_quaternions_match_the_hand_formulas():
    rng = np.random.default_rng(5)
    quats = [rng.normal(size=4) * rng.uniform(0.1, 3) for _ in range(300)]
    quats += [np.array(q, float) for q in ([1, 0, 0, 0], [0, 0.7071, 0.7071, 0], [0, 0, 0, 1])]
    for q in quats:
        np.testing.assert_allclose(quat_to_matrix(q), _old_quat_to_matrix(q), atol=2e-6)
        r = _old_quat_to_matrix(q)
        back = quat_from_matrix(r)
        assert back.dtype == np.float32
        np.testing.assert_allclose(_old_quat_to_matrix(back), r, atol=2e-6)  # same rotation
        other = rng.normal(size=4)
        np.testing.assert_allclose(quat_multiply(q, other), _old_multiply(q, other), atol=1e-5)
    np.testing.assert_array_equal(quat_to_matrix((0, 0, 0, 0)), np.eye(3))
    for pitch, yaw, roll in rng.uniform(-3, 3, size=(100, 3)):
        np.testing.assert_allclose(
            quat_from_euler(pitch, yaw, roll), _old_euler(pitch, yaw, roll), atol=1e-6
        )


def test_camera_matrices_match_the_hand_formulas():
    rng = np.random.default_rng(6)
    for _ in range(100):
        position, target = rng.normal(size=3) * 3, rng.normal(size=3)
        camera = Camera(rng.uniform(10, 90), rng.uniform(0.01, 1), rng.uniform(10, 1000))
        camera.look_at(position, target)
        np.testing.assert_allclose(
            camera.view_matrix(),
            _old_view(camera.position, camera.target, camera.up),
            atol=5e-5,
        )
        aspect = rng.uniform(0.5, 3)
        np.testing.assert_allclose(
            camera.projection_matrix(aspect),
            _old_projection(camera.fov_y, aspect, camera.near, camera.far),
            rtol=1e-5,
            atol=1e-6,
        )
    for position, target in (((0, 5, 0), (0, 0, 0)), ((1, 2, 3), (1, 2, 3))):  # degenerate
        camera = Camera().look_at(position, target)
        np.testing.assert_allclose(
            camera.view_matrix(),
            _old_view(camera.position, camera.target, camera.up),
            atol=1e-6,
        )


def test_cached_local_matrix_follows_every_edit():
    """``local_matrix()`` is cached (most entities stand still); an edit in place, an
    assignment or an explicit matrix must still show at once, and the cache is read-only."""
    t = Transform(translation=(1.0, 2.0, 3.0))
    first = t.local_matrix()
    assert t.local_matrix() is first  # unchanged: not composed again
    with pytest.raises(ValueError):
        first[0, 3] = 9.0
    t.rotation[:] = quat_from_euler(yaw=0.5)  # in place
    np.testing.assert_allclose(t.local_matrix()[:3, :3], quat_to_matrix(quat_from_euler(yaw=0.5)))
    t.translation = np.array([4.0, 5.0, 6.0], np.float32)  # assigned
    np.testing.assert_allclose(t.local_matrix()[:3, 3], [4.0, 5.0, 6.0])
    t.scale[1] = 2.0
    assert t.local_matrix()[1, 1] == pytest.approx(2.0)  # a yaw leaves y alone
    t.matrix = np.diag([2.0, 2.0, 2.0, 1.0]).astype(np.float32)
    np.testing.assert_allclose(t.local_matrix(), np.diag([2.0, 2.0, 2.0, 1.0]))


def test_cached_skeleton_pose_follows_every_node_edit(tmp_path):
    """``Skeleton.world`` is cached until a node's transform changes."""
    from engine import load_gltf
    from engine.gltf_write import GltfBuilder
    from engine.meshes import cube
    from engine.skeleton import Skeleton

    b = GltfBuilder()
    root = b.add_node("root", translation=(0.0, 1.0, 0.0))
    b.add_node("child", mesh=b.add_mesh([cube(0.1)]), translation=(0.5, 0.0, 0.0), parent=root)
    asset = load_gltf(b.save(tmp_path / "two.glb"))
    skeleton = Skeleton(asset)
    nodes = [n.transform.copy() for n in asset.nodes]
    first = skeleton.world(nodes)
    assert skeleton.world(nodes) is first
    np.testing.assert_allclose(first[1][:3, 3], [0.5, 1.0, 0.0])
    nodes[0].translation[1] = 2.0  # the parent moves in place: the child follows
    np.testing.assert_allclose(skeleton.world(nodes)[1][:3, 3], [0.5, 2.0, 0.0])
    nodes[1].matrix = np.eye(4, dtype=np.float32)
    np.testing.assert_allclose(skeleton.world(nodes)[1][:3, 3], [0.0, 2.0, 0.0])


def test_a_pose_composed_again_from_the_changed_nodes_equals_a_fresh_one():
    """``Skeleton.world`` composes only the nodes whose transforms changed and those under
    them: on the RPM-shaped rig (62 joints), after edits anywhere in the tree (a bone
    turned, a parent moved in place, an explicit matrix set, several at once), the pose
    equals the one a fresh skeleton composes from scratch."""
    from engine import load_gltf
    from engine.skeleton import Skeleton

    asset = load_gltf(Path(__file__).resolve().parents[2] / "assets/test/rpm_head.glb")
    skeleton = Skeleton(asset)
    nodes = [n.transform.copy() for n in asset.nodes]
    skeleton.world(nodes)
    rng = np.random.default_rng(7)
    for step in range(40):
        for i in rng.choice(len(nodes), size=1 + step % 3, replace=False):
            node = nodes[int(i)]
            if step % 7 == 3:
                node.matrix = np.eye(4, dtype=np.float32)
                node.matrix[:3, 3] = rng.normal(size=3)
            elif node.matrix is None:
                node.rotation = rng.normal(size=4).astype(np.float32)
                node.translation[int(rng.integers(3))] += 0.1  # in place
        fresh = Skeleton(asset).world(nodes)
        np.testing.assert_allclose(skeleton.world(nodes), fresh, atol=1e-6)
