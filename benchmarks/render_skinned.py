"""Skinned render row: an RPM-sized skinned avatar at 1280x720 beside a bare draw.

The avatar is the project's RPM-shaped one (assets/test/make_rpm_head.py) built at Ready
Player Me's size: about 30,000 triangles, 72 morph targets, 62 joints. Each engine frame
is what a speaking skinned avatar costs: 12 targets active with new weights, the head,
neck and eye bones turned by a new pose (``avatarkit.bones``), the joint palette posed
and uploaded, morphs then skinning in the vertex shader (the weights and the pose of
each frame are worked out before timing, as a controller hands them to its view). The
floor: the same triangles at rest with plain moderngl (the lit shader, no morphs, no
skinning), the same camera and MSAA, frames interleaved one by one in the same process,
both waiting for the GPU. The
camera: the head shot avatarkit frames for the file (``anatomical_framing``). Then the
same frames again, each split at its draw calls (``DrawMarks``): the Python before the
first draw, the draws, and the rasteriser's tail after the last.

    .venv/bin/python benchmarks/render.py --skinned [--frames 100] [--samples 0,4]
"""

from __future__ import annotations

import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import moderngl
import numpy as np
from render import EngineBench, frame_times
from render_live import Bare

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: assets/test
from assets.test.make_rpm_head import build  # noqa: E402
from avatarkit.bones import BoneRig
from engine import load_gltf

ACTIVE = 12
POSES = 600  # frames of input before it repeats


def rpm_sized(path: Path) -> Path:
    """~30k triangles (head 26k, body 3.8k, eyes 0.8k), 72 targets, 62 joints."""
    return build(
        path,
        head_rings=100,
        head_segments=130,
        body_rings=24,
        body_segments=40,
        arm_joints=7,
        finger_joints=16,
        leg_joints=5,
        dense_targets=True,
    )


class SkinnedBench(EngineBench):
    def __init__(self, asset, samples: int) -> None:
        super().__init__(asset, 1, samples)
        model = self.models[0]
        model.entity.transform.translation[:] = 0.0
        self.rig = BoneRig.find(model.nodes, asset)
        assert self.rig is not None
        # The head shot a user's file gets (avatarkit's framing from the eye bones).
        from avatarkit.blendshapes import map_asset
        from avatarkit.framing import anatomical_framing

        framing = anatomical_framing(asset, map_asset(asset))
        head = np.array(framing.head_center)
        self.app.scene.camera.look_at(head + [0.0, 0.0, framing.camera_distance], head)
        self.targets = len(model.weights)
        # The input of each frame, worked out before timing (a controller hands the view
        # its weights and pose): a speaking face, a dozen targets all changing, the head
        # and the eyes turning.
        self.weights = np.zeros((POSES, self.targets), np.float32)
        for k in range(POSES):
            for j in range(ACTIVE):
                self.weights[k, (j * 5 + k) % self.targets] = 0.5 + 0.5 * np.sin(k * 0.2 + j)
        t = np.arange(POSES)[:, None] / 30
        self.heads = np.hstack([0.05 * np.sin(t * 2), 0.2 * np.sin(t), 0.03 * np.sin(t * 3)])
        self.gazes = np.hstack([0.2 * np.sin(t * 5), np.full_like(t, 0.05)])

    def frame(self, k: int) -> None:
        model = self.models[0]
        model.weights[:] = self.weights[k % POSES]
        self.rig.apply(model.nodes, self.heads[k % POSES], self.gazes[k % POSES])
        self.app.step()


class UnskinnedBench(SkinnedBench):
    """The same avatar and frames without skinning (bones still posed, not drawn): its
    primitives lose their joints, so they draw with the shader variant that has no skin
    code (llvmpipe would run a skipped branch's code anyway), and the row shows what
    skinning adds."""

    def __init__(self, asset, samples: int) -> None:
        asset = copy.deepcopy(asset)
        for prim in (p for mesh in asset.meshes for p in mesh.primitives):
            prim.joints = prim.skin_weights = None
        super().__init__(asset, samples)


class DrawMarks:
    """Splits each frame at its draw calls (moderngl's ``VertexArray.render`` wrapped while
    in use): the Python before the first draw, when llvmpipe's rasteriser threads have
    nothing to do; the draws; the wait after the last one, the rasteriser's tail."""

    def __enter__(self) -> DrawMarks:
        self._render = render = moderngl.VertexArray.render
        self.marks: list[tuple[float, float]] = []

        def timed(vao, *args, **kwargs):
            start = time.perf_counter()
            render(vao, *args, **kwargs)
            self.marks.append((start, time.perf_counter()))

        moderngl.VertexArray.render = timed  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc) -> None:
        moderngl.VertexArray.render = self._render  # type: ignore[method-assign]

    def phases(self, bench, k: int) -> tuple[float, float, float]:
        """Milliseconds of frame ``k`` before its first draw, from it to the end of the
        last, and after."""
        self.marks.clear()
        start = time.perf_counter()
        bench.frame(k)
        end = time.perf_counter()
        first, last = self.marks[0][0], self.marks[-1][1]
        return 1000 * (first - start), 1000 * (last - first), 1000 * (end - last)


def phase_line(name: str, rows: list[tuple[float, float, float]]) -> str:
    before, draws, after = (statistics.median(r[i] for r in rows) for i in range(3))
    return (
        f"    {name:<7} before the first draw {before:.2f} ms, draws {draws:.2f}, "
        f"after the last {after:.2f}"
    )


class _Live:  # what render_live.Bare reads
    def __init__(self, bench: SkinnedBench) -> None:
        self.app, self.models = bench.app, bench.models


def main(frames: int, samples_list: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asset = load_gltf(rpm_sized(Path(tmp) / "rpm.glb"))
    joints = len(asset.skins[0].joints)
    for samples in samples_list:
        engine = SkinnedBench(asset, samples)
        bare = Bare(_Live(engine))  # type: ignore[arg-type]
        bare.fbo.release()  # the same MSAA as the engine's frame
        ctx = engine.app.ctx
        bare.fbo = ctx.framebuffer(
            [ctx.renderbuffer(engine.app.size, 4, samples=samples)],
            ctx.depth_renderbuffer(engine.app.size, samples=samples),
        )
        bare.resolved = ctx.framebuffer([ctx.renderbuffer(engine.app.size, 4)]) if samples else None
        unskinned = UnskinnedBench(asset, samples)
        engine_ms, bare_ms, plain_ms = frame_times([engine, bare, unskinned], frames)
        e, b, u = (statistics.median(t) for t in (engine_ms, bare_ms, plain_ms))
        fe, fb, fu = (np.percentile(t, 10) for t in (engine_ms, bare_ms, plain_ms))
        print(
            f"\nskinned avatar, {engine.app.size[0]}x{engine.app.size[1]}, MSAA {samples}x: "
            f"{engine.triangles} triangles, {engine.targets} targets ({ACTIVE} active), "
            f"{joints} joints; {frames} frames each, interleaved; load average "
            f"{os.getloadavg()[0]:.2f}\n"
            f"  median: engine {e:.2f} ms, bare {b:.2f} ms, ratio {e / b:.2f}x | "
            f"fast (10th percentile): engine {fe:.2f} ms, bare {fb:.2f} ms, ratio {fe / fb:.2f}x\n"
            f"  skinning's share: the same frames unskinned {u:.2f} ms median ({e / u:.2f}x), "
            f"{fu:.2f} ms fast ({fe / fu:.2f}x)",
            flush=True,
        )
        with DrawMarks() as marks:  # the same frames again, split at their draws
            split: dict[str, list] = {"engine": [], "bare": []}
            for k in range(frames):
                split["engine"].append(marks.phases(engine, k))
                split["bare"].append(marks.phases(bare, k))
        print("  median phases (the rasteriser idle before the first draw):")
        for name, rows in split.items():
            print(phase_line(name, rows), flush=True)
        unskinned.close()
        engine.close()
