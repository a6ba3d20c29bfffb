"""Spring bones' cost per frame: what ``AvatarView`` adds to a frame's Python for an avatar
whose hair and clothes swing (``avatarkit.spring_bones``).

A VRoid-sized rig is built in memory: a head bone under a neck, 24 hair strands of 6
joints (144 joints, VRoid Studio's hair is 100-200), 4 skirt chains of 5, a sphere on the
head and two capsules on the shoulders as colliders that every hair spring names. Each
frame turns the neck (the head sways, so every strand moves) and steps the springs as the
view does: the model's node matrices, then the step. Beside it, the same frame without
springs (the skeleton's own composing), interleaved frame by frame in one process; thread
CPU time, median and 10th percentile.

    .venv/bin/python benchmarks/spring_bones.py [--frames 600]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from avatarkit.spring_bones import SpringBones  # noqa: E402
from engine import load_gltf  # noqa: E402
from engine.gltf_write import GltfBuilder  # noqa: E402
from engine.meshes import cube  # noqa: E402
from engine.skeleton import Skeleton  # noqa: E402
from engine.transform import quat_from_euler  # noqa: E402

STRANDS, STRAND_JOINTS = 24, 6
SKIRTS, SKIRT_JOINTS = 4, 5


def vroid_sized(path: Path) -> Path:
    b = GltfBuilder()
    hips = b.add_node("J_Bip_C_Hips", translation=(0, 1.0, 0))
    neck = b.add_node("J_Bip_C_Neck", translation=(0, 0.45, 0), parent=hips)
    face = b.add_mesh([dict(cube(0.2), material=b.add_material((0.8, 0.6, 0.5, 1.0)))])
    head = b.add_node("J_Bip_C_Head", mesh=face, translation=(0, 0.1, 0), parent=neck)
    chest = b.add_node("J_Bip_C_Chest", translation=(0, 0.3, 0), parent=hips)
    springs, colliders = (
        [],
        [
            {"node": head, "shape": {"sphere": {"offset": [0, 0.1, 0], "radius": 0.1}}},
            *(
                {
                    "node": chest,
                    "shape": {
                        "capsule": {"offset": [x, 0.1, 0], "tail": [3 * x, 0.08, 0], "radius": 0.05}
                    },
                }  # fmt: skip
                for x in (0.06, -0.06)
            ),
        ],
    )
    setting = {"stiffness": 1.0, "gravityPower": 0.3, "dragForce": 0.4, "hitRadius": 0.02}
    for s in range(STRANDS):
        a = 2 * math.pi * s / STRANDS
        at = (0.1 * math.sin(a), 0.15, 0.1 * math.cos(a))
        chain = [b.add_node(f"J_Sec_Hair{s}_01", translation=at, parent=head)]
        for k in range(1, STRAND_JOINTS):
            step = (0.02 * math.sin(a), -0.05, 0.02 * math.cos(a))
            chain.append(
                b.add_node(f"J_Sec_Hair{s}_{k + 1:02d}", translation=step, parent=chain[-1])
            )
        springs.append({"joints": [{"node": n, **setting} for n in chain], "colliderGroups": [0]})
    for s in range(SKIRTS):
        a = 2 * math.pi * s / SKIRTS
        chain = [
            b.add_node(
                f"J_Sec_Skirt{s}_01",
                translation=(0.15 * math.sin(a), 0, 0.15 * math.cos(a)),
                parent=hips,
            )
        ]
        for k in range(1, SKIRT_JOINTS):
            chain.append(
                b.add_node(
                    f"J_Sec_Skirt{s}_{k + 1:02d}", translation=(0, -0.08, 0.01), parent=chain[-1]
                )
            )
        springs.append({"joints": [{"node": n, **setting} for n in chain], "colliderGroups": []})
    b.doc.extensions = {
        "VRMC_springBone": {
            "specVersion": "1.0",
            "colliders": colliders,
            "colliderGroups": [{"colliders": [0, 1, 2]}],
            "springs": springs,
        }
    }
    b.doc.extensionsUsed = ["VRMC_springBone"]
    return b.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asset = load_gltf(vroid_sized(Path(tmp) / "vroid.glb"))
    nodes = [n.transform.copy() for n in asset.nodes]
    skeleton = Skeleton(asset)
    springs = SpringBones.of(asset, nodes)
    assert springs is not None
    neck = next(i for i, n in enumerate(asset.nodes) if n.name == "J_Bip_C_Neck")
    times: dict[str, list[float]] = {"skeleton only": [], "skeleton + springs": []}
    for frame in range(args.frames + 30):
        t = frame / 30
        for name in times:
            nodes[neck].rotation = quat_from_euler(0.2 * math.sin(3 * t), 0.4 * math.sin(t))
            start = time.thread_time()
            world = skeleton.world(nodes)
            if name != "skeleton only":
                springs.step(nodes, world, 1 / 30)
                world = skeleton.world(nodes)  # as the draw composes it again
            if frame >= 30:
                times[name].append(time.thread_time() - start)
    print(
        f"spring bones: {len(springs.joints)} joints in {len(springs._levels)} levels, "
        f"{len(springs.colliders)} colliders; {len(asset.nodes)} nodes; {args.frames} frames"
    )
    for name, values in times.items():
        ms = np.array(values) * 1e3
        print(
            f"  {name:20s} median {statistics.median(ms):.3f} ms, "
            f"fast (10th percentile) {np.percentile(ms, 10):.3f} ms"
        )
    extra = statistics.median(times["skeleton + springs"]) - statistics.median(
        times["skeleton only"]
    )
    per_joint = extra * 1e6 / len(springs.joints)
    print(f"  the springs add {extra * 1e3:.3f} ms a frame ({per_joint:.2f} us a joint)")


if __name__ == "__main__":
    main()
