"""Live render rows: a kiosk's frame loop at 1280x720 with 1 and 4 bundled avatars
speaking, beside a bare draw of the same triangles.

The engine side is what a kiosk window renders each frame (``App`` at quality ``auto``:
FXAA and no MSAA on a software rasteriser, 4x MSAA on a GPU): the avatars' ModelRenderers
with morph weights from the lip-sync model on bundled speech (about 22 targets active),
the background, the post pass, a wait for the frame to complete. The window's own blit
and swap are left out (no display here). The floor, frames interleaved one by one in the
same process: the same avatars' triangles at rest with plain moderngl (the lit shader, no
morphs, no background, no post pass, the same MSAA), at the same camera, glFinish.

    .venv/bin/python benchmarks/render.py --live [--frames 100]
"""

from __future__ import annotations

import os
import statistics
import time

import moderngl
import numpy as np
from render_offline import BARE_VERTEX, speech_clip

AVATARS = ("ava", "kai", "mei", "noor")
SIZE = (1280, 720)
SPACING = 0.26  # metres between busts side by side


def speech_weights(frames: int) -> np.ndarray:
    """ARKit weights per frame from the lip-sync model on bundled speech."""
    import tempfile
    import wave
    from pathlib import Path

    from avatarkit.motion import create_stream

    with tempfile.TemporaryDirectory() as tmp:
        wav = speech_clip(Path(tmp) / "s.wav", frames / 30 + 1)
        with wave.open(str(wav)) as w:
            pcm = w.readframes(-1)
    stream = create_stream(16000, 30)
    out = stream.push(pcm) + stream.finish()
    return np.array([f.weights for f in out[:frames]], np.float32)


class Live:
    def __init__(self, count: int, quality: str, adaptive: bool = False) -> None:
        from avatarkit.cli.common import open_avatar
        from engine import App, ModelRenderer
        from engine.clock import RealtimeClock
        from engine.render.quality import resolve_quality

        # Adaptive: as a kiosk window runs (a real-time clock, engine.render.adaptive).
        clock = RealtimeClock(30.0) if adaptive else None
        self.app = App.headless(SIZE, quality=quality, clock=clock, adaptive=adaptive)
        if quality == "auto" and not adaptive:  # as a window resolves it, held fixed (a
            # headless App's auto is the offline quality)
            self.app.set_quality(resolve_quality("auto", self.app.software, live=True))
        self.avatars = [open_avatar(AVATARS[k % 4]) for k in range(count)]
        self.models = []
        for k, avatar in enumerate(self.avatars):
            entity = self.app.scene.create_entity(f"a{k}")
            entity.transform.translation[0] = (k - (count - 1) / 2) * SPACING
            self.models.append(entity.add_component(ModelRenderer(avatar.asset)))
        head = np.array(self.avatars[0].framing.head_center, np.float32)
        distance = self.avatars[0].framing.camera_distance * (1.0 if count == 1 else 2.6)
        self.app.scene.camera.look_at(head + [0.0, -0.05 * (count > 1), distance], head)
        self.weights = speech_weights(120)

    def frame(self, k: int) -> None:
        for i, (avatar, model) in enumerate(zip(self.avatars, self.models, strict=True)):
            arkit = self.weights[(k + 7 * i) % len(self.weights)]
            model.set_weights(avatar.target_weights(arkit, model.target_names))
        self.app.step()


class Bare:
    """The floor: the avatars' triangles at rest, world transforms baked, plain moderngl."""

    def __init__(self, live: Live) -> None:
        from engine.render.shaders import LIT_FRAGMENT

        ctx = self.ctx = live.app.ctx
        prog = ctx.program(vertex_shader=BARE_VERTEX, fragment_shader=LIT_FRAGMENT)
        self.vaos = []
        for model in live.models:
            asset = model.asset
            place = model.entity.world_matrix()
            for index, local in asset.world_matrices().items():
                mesh = asset.nodes[index].mesh
                world = place @ local
                for prim in asset.meshes[mesh].primitives if mesh is not None else []:
                    n = prim.vertex_count
                    uvs = prim.uvs if prim.uvs is not None else np.zeros((n, 2))
                    pos = prim.positions @ world[:3, :3].T + world[:3, 3]
                    nrm = prim.normals @ np.linalg.inv(world[:3, :3])
                    vbo = ctx.buffer(np.hstack([pos, nrm, uvs]).astype("f4").tobytes())
                    ibo = ctx.buffer(prim.indices.astype("u4").tobytes())
                    content = [(vbo, "3f 3f 8x", "in_position", "in_normal")]
                    self.vaos.append(ctx.vertex_array(prog, content, ibo, 4))
        camera = live.app.scene.camera
        vp = camera.projection_matrix(SIZE[0] / SIZE[1]) @ camera.view_matrix()
        prog["u_view_projection"].write(np.ascontiguousarray(vp.T, "f4").tobytes())
        lights = live.app.scene.lighting.lights()
        prog["u_light_dir"].write(np.array([lt.shader_direction() for lt in lights], "f4"))
        colors = [np.multiply(lt.color, lt.intensity) for lt in lights]
        prog["u_light_color"].write(np.array(colors, "f4").tobytes())
        prog["u_camera_position"].value = tuple(float(v) for v in camera.position)
        prog["u_base_color"].value = (0.8, 0.55, 0.45, 1.0)
        samples = live.app.quality.samples
        self.fbo = ctx.framebuffer(
            [ctx.renderbuffer(SIZE, 4, samples=samples)],
            ctx.depth_renderbuffer(SIZE, samples=samples),
        )
        self.resolved = ctx.framebuffer([ctx.renderbuffer(SIZE, 4)]) if samples else None

    def frame(self, k: int) -> None:
        with self.ctx:
            self.fbo.use()
            self.fbo.clear(0.2, 0.2, 0.25, 1.0, depth=1.0)
            self.ctx.enable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
            for vao in self.vaos:
                vao.render()
            if self.resolved is not None:
                self.ctx.copy_framebuffer(self.resolved, self.fbo)
            self.ctx.finish()


def row(count: int, quality: str, adaptive: bool, frames: int) -> None:
    """One row: ``frames`` engine frames interleaved with the floor's. Adaptive: the
    kiosk's live ``auto`` (engine.render.adaptive), which may settle on another quality
    in its first seconds; the row is then the frames after the warm-up, at the quality it
    settled on (a switch later in the run is printed as such)."""
    live = Live(count, quality, adaptive)
    with live.app.ctx:  # set_quality leaves no context current
        bare = Bare(live)
    warmup = 3 + (250 if adaptive else 0)  # the ladder settles within a few seconds
    wall: dict[str, list[float]] = {"e": [], "b": []}
    cpu: dict[str, list[float]] = {"e": [], "b": []}
    qualities = set()
    for k in range(frames + warmup):
        for key, bench in (("e", live), ("b", bare)):
            w, c = time.perf_counter(), time.process_time()
            bench.frame(k)
            if k >= warmup:
                wall[key].append(1000 * (time.perf_counter() - w))
                cpu[key].append(1000 * (time.process_time() - c))
        if k >= warmup:
            qualities.add(live.app.quality.name)
    e, b = statistics.median(wall["e"]), statistics.median(wall["b"])
    q = live.app.quality
    name = f"{q.name} ({q.samples}x{', FXAA' if q.post_aa else ''})"
    name = f"live: {name}" if adaptive else name
    switched = f"  (switched during the run: {sorted(qualities)})" if len(qualities) > 1 else ""
    print(
        f"{count:>7} {name:>26} | {e:>9.1f} {1000 / e:>5.1f} "
        f"{statistics.median(cpu['e']):>6.1f} | {b:>7.1f} {1000 / b:>5.1f} "
        f"{statistics.median(cpu['b']):>6.1f} | {e / b:>5.2f}{switched}",
        flush=True,
    )
    live.app.close()


def main(frames: int, counts: list[int], quality: str = "auto") -> None:
    print(
        f"\nlive render at {SIZE[0]}x{SIZE[1]}, quality {quality}, bundled avatars speaking; "
        f"{frames} frames each, interleaved with the floor; load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'avatars':>7} {'quality':>26} | {'engine ms':>9} {'fps':>5} {'CPU ms':>6} | "
        f"{'bare ms':>7} {'fps':>5} {'CPU ms':>6} | {'ratio':>5}"
    )
    for count in counts:
        for adaptive in (False, True):
            row(count, quality, adaptive, frames)
    print(f"load average after: {os.getloadavg()[0]:.2f} (2 cores shared)")
