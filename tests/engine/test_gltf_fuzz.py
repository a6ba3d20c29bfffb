"""Seeded structural fuzzing of real avatar files: a few hundred documents, each with one to
three fields deleted, duplicated, nudged or replaced by a value of another type or size,
opened as a user's avatar is (load, convention mapping, framing). Each must open or fail
with a coded error, never another exception. A longer run of the same mutations found the
bare TypeErrors and the NaN framing these tests now pin (test_gltf_hostile.py)."""

from __future__ import annotations

import copy
import random
from functools import partial
from pathlib import Path

import pytest

from avatarkit.avatar import Avatar
from avatarkit.errors import AvatarKitError
from avatarkit.node_constraints import NodeConstraints
from avatarkit.spring_bones import SpringBones
from engine import EngineError
from engine.gltf_write import pack_glb, unpack_glb
from engine.skeleton import Skeleton

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "test"
VALUES = [-1, 0, 1, 3, 65535, 2**31, 2**63, -(2**31), 1e308, 0.5, "x", "", None, [], {},
          True, [0], [1e9, 1e9, 1e9], {"a": 1}, "../../etc/passwd"]  # fmt: skip


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value[:40])
        for key, child in items:
            yield from _paths(child, (*prefix, key))


def _mutate(doc: dict, rng: random.Random) -> str:
    path = rng.choice([p for p in _paths(doc) if p])
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    key, roll = path[-1], rng.random()
    if roll < 0.15 and isinstance(parent, dict):
        del parent[key]
    elif roll < 0.25 and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[key]))
    elif roll < 0.35 and type(parent[key]) in (int, float):
        parent[key] += rng.choice([-1, 1, 7, -7, 1000])
    else:
        parent[key] = copy.deepcopy(rng.choice(VALUES))
    return "/".join(map(str, path))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["rpm_head.glb", "vrm0_head.vrm", "vrm1_head.vrm"])
def test_mutated_avatars_open_or_fail_with_a_code(tmp_path, name):
    source = ASSETS / name
    doc, blob = unpack_glb(source.read_bytes())
    rng = random.Random(name)
    path = tmp_path / name
    for _ in range(150):
        mutated = copy.deepcopy(doc)
        edits = [_mutate(mutated, rng) for _ in range(rng.randint(1, 3))]
        try:
            path.write_bytes(pack_glb(mutated, blob))
        except (TypeError, ValueError, OverflowError):
            continue  # not writable as JSON: nothing a file could hold
        try:
            avatar = Avatar.from_file(path)
            # What a view does with it next: its spring bones found and stepped.
            nodes = [n.transform.copy() for n in avatar.asset.nodes]
            springs = SpringBones.of(avatar.asset, nodes)
            if springs is not None:
                springs.step(nodes, Skeleton(avatar.asset).world(nodes), 1 / 30)
            constraints = NodeConstraints.of(avatar.asset, nodes)
            if constraints is not None:
                skeleton = Skeleton(avatar.asset)
                constraints.apply(nodes, partial(skeleton.world, nodes))
        except (EngineError, AvatarKitError):
            pass
        except Exception as exc:  # the point: any other kind of exception is a defect
            pytest.fail(f"{name} with {edits}: {type(exc).__name__}: {exc}")
