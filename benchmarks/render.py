"""Render benchmark: N avatar-sized meshes at 1280x720, engine vs bare moderngl.

Each mesh: 10,000 triangles, 52 morph targets, 3 of them active and changing every
frame. The engine path is the real thing (App.headless + ModelRenderer, GPU morph
targets, scene graph, lighting). The floor is the same triangles drawn with plain
moderngl in the same process: same shading, same framebuffer (MSAA and resolve), no
morphs, no engine. Both wait for GPU completion every frame (``ctx.finish()``), so the
times are rendering, not command submission. Engine and floor are measured in
alternating rounds; the table shows the median and the best round of each (the best is
the least disturbed by other processes on a busy shared machine) and both ratios.

    .venv/bin/python benchmarks/render.py [--counts 1,2,4,8,16] [--frames 20]
                                          [--samples 0,4] [--size 1280x720]

``--live`` prints the live rows instead (a kiosk's frames at 720p with 1 and 4 speaking
avatars beside a bare draw; see render_live.py); ``--offline`` the offline render rows
(``avatarkit render``'s real-time factor per size and quality beside a bare draw + encode
floor; see render_offline.py); ``--skinned`` the skinned-avatar row (an RPM-sized
avatar: 30k triangles, 72 targets, 62 joints, beside a bare draw; see render_skinned.py);
``--overdraw`` the lit fragments shaded per live frame against the pixels covered;
``--python`` the frame's Python (main-thread CPU outside GL calls; see render_python.py);
``--join`` avatars joining a live scene (the longest frame at each join; see render_join.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import moderngl
import numpy as np

from engine import App, ModelRenderer, load_gltf
from engine.gltf_write import GltfBuilder
from engine.meshes import uv_sphere
from engine.render.shaders import LIT_FRAGMENT

SIZE = (1280, 720)
TARGETS = 52
ACTIVE = 3


def avatar_sized_mesh(path: Path) -> Path:
    """A 10,000-triangle head-sized sphere with 52 smooth random morph targets."""
    mesh = uv_sphere(0.12, rings=50, segments=100)  # 2 * 50 * 100 = 10,000 triangles
    rng = np.random.default_rng(7)
    p = mesh["positions"]
    targets = []
    for _ in range(TARGETS):  # a smooth bump somewhere on the surface
        centre = rng.normal(size=3)
        centre *= 0.12 / np.linalg.norm(centre)
        falloff = np.exp(-np.sum((p - centre) ** 2, axis=1) / 0.003)[:, None]
        targets.append(
            {"POSITION": (mesh["normals"] * falloff * 0.03).astype(np.float32), "NORMAL": None}
        )
    b = GltfBuilder()
    mat = b.add_material((0.8, 0.55, 0.45, 1.0))
    b.add_node(
        "head",
        mesh=b.add_mesh(
            [dict(mesh, material=mat, targets=targets)], "head", [f"t{i}" for i in range(TARGETS)]
        ),
    )
    return b.save(path)


def grid_positions(n: int) -> list[tuple[float, float, float]]:
    cols = int(np.ceil(np.sqrt(n * 16 / 9)))
    rows = int(np.ceil(n / cols))
    return [
        ((i % cols - (cols - 1) / 2) * 0.3, ((rows - 1) / 2 - i // cols) * 0.3, 0.0)
        for i in range(n)
    ]


class EngineBench:
    def __init__(self, asset, n: int, samples: int) -> None:
        self.app = App.headless(SIZE, samples=samples)
        self.app.scene.lighting.background = None  # the floor has no background pass either
        self.app.scene.lighting.clear_color = (0.1, 0.1, 0.12, 1.0)
        self.models = []
        for i, pos in enumerate(grid_positions(n)):
            entity = self.app.scene.create_entity(f"head{i}")
            entity.transform.translation[:] = pos
            self.models.append(entity.add_component(ModelRenderer(asset)))
        extent = np.abs(np.array(grid_positions(n))).max(axis=0) + 0.15
        self.app.scene.camera.frame_bounds(-extent, extent, aspect=self.app.aspect, margin=1.0)
        self.triangles = sum(m.triangle_count for m in self.models)

    def frame(self, k: int) -> None:
        for i, model in enumerate(self.models):
            model.weights[:] = 0
            for j in range(ACTIVE):  # three targets active, weights changing every frame
                model.weights[(i * 7 + j * 11) % TARGETS] = 0.5 + 0.5 * np.sin(k * 0.2 + j)
        self.app.step()

    def close(self) -> None:
        self.app.close()


BARE_VERTEX = """
#version 330
uniform mat4 u_model;
uniform mat3 u_normal_matrix;
uniform mat4 u_view_projection;
in vec3 in_position;
in vec3 in_normal;
out vec3 v_world;
out vec3 v_normal;
out vec2 v_uv;
out vec4 v_color;
void main() {
    v_color = vec4(1.0);
    vec4 world = u_model * vec4(in_position, 1.0);
    v_world = world.xyz;
    v_normal = u_normal_matrix * in_normal;
    v_uv = vec2(0.0);  // the lit shader's plain variant samples no texture
    gl_Position = u_view_projection * world;
}
"""


class BareBench:
    """The floor: plain moderngl, same triangles, same fragment shading, no morphs.

    It uses the engine's GL context (same driver state, no context switches) but none
    of the engine's code: its own program, buffers and framebuffers."""

    def __init__(self, engine: EngineBench, samples: int) -> None:
        ctx = self.ctx = engine.app.ctx
        prim = engine.models[0].asset.meshes[0].primitives[0]
        prog = self.prog = ctx.program(vertex_shader=BARE_VERTEX, fragment_shader=LIT_FRAGMENT)
        vbo = ctx.buffer(np.hstack([prim.positions, prim.normals, prim.uvs]).astype("f4").tobytes())
        ibo = ctx.buffer(prim.indices.astype("u4").tobytes())
        self.vao = ctx.vertex_array(prog, [(vbo, "3f 3f 8x", "in_position", "in_normal")], ibo, 4)
        self.fbo = ctx.framebuffer(
            [ctx.renderbuffer(SIZE, 4, samples=samples)],
            ctx.depth_renderbuffer(SIZE, samples=samples),
        )
        self.resolved = ctx.framebuffer([ctx.texture(SIZE, 4)]) if samples else None
        cam = engine.app.scene.camera
        vp = cam.projection_matrix(SIZE[0] / SIZE[1]) @ cam.view_matrix()
        prog["u_view_projection"].write(np.ascontiguousarray(vp.T, "f4").tobytes())
        prog["u_camera_position"].value = tuple(float(v) for v in cam.position)
        lights = engine.app.scene.lighting.lights()
        prog["u_light_dir"].write(
            np.array([lt.shader_direction() for lt in lights], "f4").tobytes()
        )
        prog["u_light_color"].write(
            np.array([np.multiply(lt.color, lt.intensity) for lt in lights], "f4").tobytes()
        )
        prog["u_ambient"].value = (0.05, 0.05, 0.06)
        prog["u_exposure"].value = 1.0
        prog["u_base_color"].value = (0.8, 0.55, 0.45, 1.0)
        prog["u_normal_matrix"].write(np.eye(3, dtype="f4").tobytes())
        self.models = [
            np.ascontiguousarray(e.entity.world_matrix().T, "f4").tobytes() for e in engine.models
        ]

    def frame(self, k: int) -> None:
        with self.ctx:
            self._draw()

    def _draw(self) -> None:
        ctx = self.ctx
        self.fbo.use()
        self.fbo.clear(0.1, 0.1, 0.12, 1.0, depth=1.0)
        ctx.enable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        for model in self.models:
            self.prog["u_model"].write(model)
            self.vao.render()
        if self.resolved is not None:
            ctx.copy_framebuffer(self.resolved, self.fbo)
        ctx.finish()

    def close(self) -> None:
        pass  # its GL objects go with the engine's context


def frame_times(benches: list, frames: int) -> list[list[float]]:
    """Per-frame milliseconds of each bench, frames interleaved across the benches."""
    times: list[list[float]] = [[] for _ in benches]
    for k in range(frames + 3):
        for bench, out in zip(benches, times, strict=True):
            t0 = time.perf_counter()
            bench.frame(k)
            if k >= 3:  # the first frames upload and compile
                out.append((time.perf_counter() - t0) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1,2,4,8,16")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--samples", default="0,4", help="MSAA sample counts to run (0 = off)")
    parser.add_argument("--size", default="1280x720", help="frame size of the N-mesh rows")
    parser.add_argument("--offline", action="store_true", help="the offline render rows")
    parser.add_argument("--live", action="store_true", help="the live (kiosk) render rows")
    parser.add_argument("--skinned", action="store_true", help="the skinned-avatar row")
    parser.add_argument("--edges", action="store_true", help="edge error per quality")
    parser.add_argument("--overdraw", action="store_true", help="lit fragments per live frame")
    parser.add_argument("--python", action="store_true", help="the frame's Python per scene")
    parser.add_argument("--join", action="store_true", help="avatars joining a live scene")
    parser.add_argument("--rounds", type=int, default=3, help="--join: runs of the scene")
    parser.add_argument("--sizes", default="640x360,1280x720", help="--offline: frame sizes")
    parser.add_argument(
        "--avatars", default="ava", help="--edges: bundled ids or avatar files, comma-separated"
    )
    parser.add_argument(
        "--qualities", default="low,medium,geometric,high", help="--offline: qualities"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="--offline: speech length")
    args = parser.parse_args()
    global SIZE
    SIZE = tuple(int(v) for v in args.size.split("x"))  # type: ignore[assignment]
    if args.live:
        from render_live import main as live

        live(args.frames, [1, 4])
        return
    if args.join:
        from render_join import main as join

        join(args.rounds)
        return
    if args.python:
        from render_python import main as python

        python(args.frames)
        return
    if args.overdraw:
        from render_overdraw import main as overdraw

        overdraw([1, 4])
        return
    if args.skinned:
        from render_skinned import main as skinned

        skinned(args.frames, [int(s) for s in args.samples.split(",")])
        return
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    if args.edges:
        from render_edges import main as edges

        qualities = ["low", "medium", "geometric", "high"]
        edges(sizes, qualities, args.avatars.split(","))  # type: ignore[arg-type]
        return
    if args.offline:
        from render_offline import main as offline

        offline(sizes, args.qualities.split(","), args.seconds)
        return
    with tempfile.TemporaryDirectory() as tmp:
        asset = load_gltf(avatar_sized_mesh(Path(tmp) / "head.glb"))
    for samples in (int(s) for s in args.samples.split(",")):
        print(
            f"\n{SIZE[0]}x{SIZE[1]}, MSAA {samples}x, {TARGETS} targets/mesh, {ACTIVE} active, "
            f"{args.frames} frames each, interleaved; load average {os.getloadavg()[0]:.2f}"
        )
        print(
            f"{'N':>3} {'triangles':>9} | "
            f"{'engine ms':>9} {'bare ms':>8} {'ratio':>5} {'fps':>5} (median) | "
            f"{'engine ms':>9} {'bare ms':>8} {'ratio':>5} {'fps':>5} (fast: 10th percentile)"
        )
        for n in (int(c) for c in args.counts.split(",")):
            engine = EngineBench(asset, n, samples)
            bare = BareBench(engine, samples)
            engine_ms, bare_ms = frame_times([engine, bare], args.frames)
            e, b = statistics.median(engine_ms), statistics.median(bare_ms)
            be, bb = np.percentile(engine_ms, 10), np.percentile(bare_ms, 10)
            print(
                f"{n:>3} {engine.triangles:>9} | {e:>9.2f} {b:>8.2f} {e / b:>5.2f} "
                f"{1000 / e:>5.1f}          | "
                f"{be:>9.2f} {bb:>8.2f} {be / bb:>5.2f} {1000 / be:>5.1f}",
                flush=True,
            )
            bare.close()
            engine.close()
    print(f"\nload average after: {os.getloadavg()[0]:.2f} (2 cores shared)")


if __name__ == "__main__":
    main()
