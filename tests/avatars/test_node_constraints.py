"""VRM 1.0 node constraints (``VRMC_node_constraint``), as three-vrm applies them: a node
that follows another's turn (``rotation``), only its twist about one axis (``roll``), or
aims one axis at it (``aim``), each by its weight; sources first; cycles and hostile
entries skipped; and through ``AvatarView``, a node that follows the jaw bone the speech
turns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_jaw_bone import jaw_head

from avatarkit.node_constraints import MAX_CONSTRAINTS, NodeConstraints, find_constraints
from engine import load_gltf
from engine.gltf_write import GltfBuilder, pack_glb, unpack_glb
from engine.meshes import cube
from engine.skeleton import Skeleton
from engine.transform import quat_from_euler, quat_to_matrix


def rig(path: Path, constraints: dict[str, dict[str, Any]]) -> Path:
    """Nodes S (a source), D, E (destinations) and T under a root; ``constraints``: node
    name -> its ``constraint`` object, sources by name."""
    b = GltfBuilder()
    root = b.add_node("root", mesh=b.add_mesh([dict(cube(0.1))]))
    index = {"root": root}
    for name, at in (("S", (0, 1, 0)), ("D", (0.5, 1, 0)), ("E", (1.0, 1, 0)), ("T", (0.5, 2, 1))):
        index[name] = b.add_node(name, translation=at, parent=root)
    doc_path = b.save(path)
    doc, blob = unpack_glb(doc_path.read_bytes())
    for name, constraint in constraints.items():
        body = {
            kind: {**spec, "source": index.get(spec["source"], spec["source"])}
            for kind, spec in constraint.items()
        }
        doc["nodes"][index[name]]["extensions"] = {
            "VRMC_node_constraint": {"specVersion": "1.0", "constraint": body}
        }
    doc["extensionsUsed"] = ["VRMC_node_constraint"]
    path.write_bytes(pack_glb(doc, blob))
    return path


def applied(path: Path, turn: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, dict]:
    asset = load_gltf(path)
    nodes = [n.transform.copy() for n in asset.nodes]
    names = {n.name: i for i, n in enumerate(asset.nodes)}
    constraints = NodeConstraints.of(asset, nodes)
    assert constraints is not None
    nodes[names["S"]].rotation = turn
    skeleton = Skeleton(asset)
    constraints.apply(nodes, lambda: skeleton.world(nodes))
    return {k: nodes[i].rotation for k, i in names.items()}, skeleton.world(nodes), names


def angle(q: np.ndarray) -> float:
    return float(2 * np.arccos(min(1.0, abs(float(q[3])))))


def test_rotation_follows_the_source_by_its_weight(tmp_path):
    half = {"rotation": {"source": "S", "weight": 0.5}}
    path = rig(tmp_path / "r.glb", {"D": {"rotation": {"source": "S"}}, "E": half})
    turn = quat_from_euler(0.3, 0.6, 0.0)
    q, _, _ = applied(path, turn)
    assert q["D"] == pytest.approx(turn, abs=1e-6)
    assert angle(q["E"]) == pytest.approx(angle(turn) / 2, abs=1e-5)


def test_roll_keeps_only_the_twist_about_its_axis(tmp_path):
    path = rig(tmp_path / "roll.glb", {"D": {"roll": {"source": "S", "rollAxis": "Y"}}})
    q, _, _ = applied(path, quat_from_euler(0.4, 0.6, 0.2))
    x, y, z, w = q["D"]
    assert abs(x) < 1e-6 and abs(z) < 1e-6 and abs(y) > 0.1  # a turn about Y alone
    q, _, _ = applied(path, quat_from_euler(0.5, 0.0, 0.0))  # a pitch has no Y twist
    assert angle(q["D"]) < 1e-5


def test_aim_points_its_axis_at_the_source(tmp_path):
    path = rig(tmp_path / "aim.glb", {"D": {"aim": {"source": "T", "aimAxis": "PositiveY"}},
                                      "E": {"aim": {"source": "T", "aimAxis": "NegativeX",
                                                    "weight": 0.0}}})  # fmt: skip
    q, world, names = applied(path, np.array([0.0, 0.0, 0.0, 1.0]))
    toward = world[names["T"]][:3, 3] - world[names["D"]][:3, 3]
    up = world[names["D"]][:3, :3] @ np.array([0.0, 1.0, 0.0])
    assert up == pytest.approx(toward / np.linalg.norm(toward), abs=1e-5)
    assert q["E"] == pytest.approx([0, 0, 0, 1])  # weight 0: at rest


def test_inspect_names_them(tmp_path):
    from avatarkit.inspection import inspect_avatar

    path = rig(tmp_path / "i.glb", {"D": {"rotation": {"source": "S"}},
                                    "E": {"roll": {"source": "S", "rollAxis": "X"}}})  # fmt: skip
    notes = inspect_avatar(path).notes
    assert "node constraints (applied): 1 roll, 1 rotation" in notes


def test_sources_first_and_cycles_left_out(tmp_path):
    # E follows D, D follows S: in the file E comes after D, but order must not matter.
    path = rig(tmp_path / "chain.glb", {"E": {"rotation": {"source": "D"}},
                                        "D": {"rotation": {"source": "S"}}})  # fmt: skip
    turn = quat_from_euler(0.0, 0.8, 0.0)
    q, _, _ = applied(path, turn)
    assert q["E"] == pytest.approx(turn, abs=1e-6)  # in the same frame
    loop = rig(tmp_path / "loop.glb", {"D": {"rotation": {"source": "E"}},
                                       "E": {"rotation": {"source": "D"}}})  # fmt: skip
    assert find_constraints(load_gltf(loop)) == []


@pytest.mark.parametrize(
    "constraint",
    [
        {"rotation": {"source": 999}},
        {"rotation": {"source": "D"}},  # itself
        {"rotation": {"source": "S", "weight": None}},
        {"rotation": {"source": "S", "weight": "full"}},
        {"roll": {"source": "S", "rollAxis": "W"}},
        {"aim": {"source": "S", "aimAxis": 3}},
        {"twist": {"source": "S"}},
        "not an object",
    ],
)
def test_hostile_constraints_are_skipped(tmp_path, constraint):
    path = rig(tmp_path / "h.glb", {})
    doc, blob = unpack_glb(path.read_bytes())
    d = next(i for i, n in enumerate(doc["nodes"]) if n.get("name") == "D")
    named = {"D": d, "S": 1}
    if isinstance(constraint, dict):
        constraint = {
            k: {**v, "source": named.get(v["source"], v["source"])} for k, v in constraint.items()
        }
    doc["nodes"][d]["extensions"] = {"VRMC_node_constraint": {"constraint": constraint}}
    path.write_bytes(pack_glb(doc, blob))
    assert find_constraints(load_gltf(path)) == []


def test_at_most_max_constraints(tmp_path):
    b = GltfBuilder()
    root = b.add_node("root", mesh=b.add_mesh([dict(cube(0.1))]))
    for k in range(MAX_CONSTRAINTS + 20):
        b.add_node(f"n{k}", parent=root)
    path = b.save(tmp_path / "many.glb")
    doc, blob = unpack_glb(path.read_bytes())
    for node in doc["nodes"][1:]:
        node["extensions"] = {"VRMC_node_constraint": {"constraint": {"rotation": {"source": 0}}}}
    path.write_bytes(pack_glb(doc, blob))
    assert len(find_constraints(load_gltf(path))) == MAX_CONSTRAINTS


def test_a_view_turns_a_node_that_follows_the_jaw(tmp_path, make_headless_app):
    """Through ``AvatarView``: a beard node rotation-constrained to the jaw bone turns as
    the jaw opens (the constraints run after the bones)."""
    from tests.avatars.test_skinned_head import _settle, framed_view

    path = jaw_head(tmp_path / "beard.glb")
    doc, blob = unpack_glb(path.read_bytes())
    names = {n.get("name"): i for i, n in enumerate(doc["nodes"])}
    beard = len(doc["nodes"])
    follow = {"constraint": {"rotation": {"source": names["Jaw"]}}}
    doc["nodes"].append(
        {"name": "Beard", "translation": [0, 1.52, 0.08],
         "extensions": {"VRMC_node_constraint": follow}}
    )  # fmt: skip
    doc["nodes"][names["Armature"]]["children"].append(beard)
    doc["extensionsUsed"] = sorted({*doc.get("extensionsUsed", []), "VRMC_node_constraint"})
    path.write_bytes(pack_glb(doc, blob))
    views = framed_view(make_headless_app, path)
    app, view = next(views)
    try:
        _settle(app, 2)
        assert angle(view.model.nodes[beard].rotation) < 1e-6
        view.set_expression({"jawOpen": 0.8}, fade_s=0.0)
        _settle(app, 2)
        jaw = view.model.nodes[names["Jaw"]].rotation
        turned = view.model.nodes[beard].rotation
        assert angle(turned) > 0.2 and turned == pytest.approx(jaw, abs=1e-5)
        assert np.isfinite(quat_to_matrix(turned)).all()
    finally:
        views.close()
