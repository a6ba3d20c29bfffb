"""Offline render rows: ``avatarkit render`` speed per size and quality, beside a floor.

The engine side is the whole render as a user runs it (``render_video``: embedded Motion
Server, Direct Mode, the avatar's morphs, the quality's anti-aliasing, threaded encode),
on a speech clip of ``--seconds`` built from the bundled speech. The floor, in the same
process and right after it, is the least the same video can cost: the same avatar's
triangles at rest drawn with plain moderngl (the lit shader, no morphs, no background,
the quality's MSAA, no post pass) at the same camera, read back with ``glReadPixels`` and
encoded with PyAV in one thread, frame by frame. Real-time factor = seconds of video per
second of wall time; CPU is the process's CPU seconds (both cores count, and so do helper
processes'), a figure that other load on a shared machine disturbs less than wall time.
Each size and quality runs three times: ``render_video`` called in this process, by default
(``procs`` 2 where ``avatarkit render`` starts a helper process, see ``render_workers``) and
in one process; then ``avatarkit render`` as a user runs it (``run`` command: a fresh
Python whose start-up, imports and shader compiles count, about a second).

    .venv/bin/python benchmarks/render.py --offline [--sizes 640x360,1280x720]
                                         [--qualities low,medium,geometric,high] [--seconds 10]
"""

from __future__ import annotations

import os
import tempfile
import time
import wave
from pathlib import Path

import moderngl
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FPS = 30

BARE_VERTEX = """
#version 330
uniform mat4 u_view_projection;
in vec3 in_position;
in vec3 in_normal;
out vec3 v_world;
out vec3 v_normal;
out vec2 v_uv;
out vec4 v_color;
void main() {
    v_color = vec4(1.0);
    v_world = in_position;
    v_normal = in_normal;
    v_uv = vec2(0.0);  // the lit shader's plain variant samples no texture
    gl_Position = u_view_projection * vec4(in_position, 1.0);
}
"""


def speech_clip(path: Path, seconds: float) -> Path:
    """Bundled speech WAVs end to end, cut to ``seconds``."""
    from avatarkit.cli.common import read_wav

    parts, rate, total = [], None, 0
    for wav in sorted((ROOT / "assets" / "speech").glob("*.wav")):
        audio = read_wav(wav)
        rate = rate or audio.sample_rate
        if audio.sample_rate == rate:
            parts.append(audio.pcm)
            total += len(audio.pcm)
        if total >= seconds * rate:
            break
    assert rate is not None
    pcm = np.concatenate(parts)[: int(seconds * rate)].astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


def children_cpu() -> float:
    """CPU seconds of this process's finished children (helper processes, a command)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def engine_render(
    wav: Path, out: Path, size: tuple[int, int], quality: str, workers: int | None = None
) -> tuple[float, float, int]:
    """Wall and CPU seconds (helper processes' CPU included), and the processes used."""
    from avatarkit.cli.render import render_video

    wall, cpu = time.perf_counter(), time.process_time() + children_cpu()
    result = render_video("ava", wav, out, size, FPS, quality=quality, workers=workers)
    cpu = time.process_time() + children_cpu() - cpu
    return time.perf_counter() - wall, cpu, result.processes


def command_render(
    wav: Path, out: Path, size: tuple[int, int], quality: str
) -> tuple[float, float, int]:
    """``avatarkit render`` as a user runs it, a fresh Python: start-up and imports count."""
    import re
    import subprocess
    import sys

    command = [sys.executable, "-m", "avatarkit", "render", "--audio", str(wav), "-o", str(out)]
    command += ["--size", f"{size[0]}x{size[1]}", "--quality", quality]
    wall, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    wall, cpu = time.perf_counter() - wall, children_cpu() - cpu
    processes = re.search(r"(\d+) process", done.stdout)
    return wall, cpu, int(processes.group(1)) if processes else 0


def floor_render(
    out: Path, size: tuple[int, int], samples: int, frames: int, rate: int
) -> tuple[float, float]:
    """Bare moderngl draw + glReadPixels + PyAV encode of ``frames`` frames (+ audio)."""
    import av

    from avatarkit.cli.common import open_avatar
    from engine.camera import Camera
    from engine.lighting import Lighting
    from engine.render.shaders import LIT_FRAGMENT

    wall, cpu = time.perf_counter(), time.process_time()
    avatar = open_avatar("ava")
    ctx = moderngl.create_context(standalone=True, backend="egl", require=330)
    prog = ctx.program(vertex_shader=BARE_VERTEX, fragment_shader=LIT_FRAGMENT)
    vaos = []
    asset = avatar.asset
    for index, world in asset.world_matrices().items():
        mesh = asset.nodes[index].mesh
        for prim in asset.meshes[mesh].primitives if mesh is not None else []:
            uvs = prim.uvs if prim.uvs is not None else np.zeros((prim.vertex_count, 2))
            positions = prim.positions @ world[:3, :3].T + world[:3, 3]  # baked: no uniforms
            normals = prim.normals @ np.linalg.inv(world[:3, :3])
            vbo = ctx.buffer(np.hstack([positions, normals, uvs]).astype("f4").tobytes())
            ibo = ctx.buffer(prim.indices.astype("u4").tobytes())
            content = [(vbo, "3f 3f 8x", "in_position", "in_normal")]
            vaos.append(ctx.vertex_array(prog, content, ibo, 4))
    camera = Camera()
    head = np.array(avatar.framing.head_center, np.float32)
    camera.look_at(head + [0.0, 0.0, avatar.framing.camera_distance], head)
    vp = camera.projection_matrix(size[0] / size[1]) @ camera.view_matrix()
    prog["u_view_projection"].write(np.ascontiguousarray(vp.T, "f4").tobytes())
    lights = Lighting().lights()
    prog["u_light_dir"].write(np.array([lt.shader_direction() for lt in lights], "f4").tobytes())
    colors = [np.multiply(lt.color, lt.intensity) for lt in lights]
    prog["u_light_color"].write(np.array(colors, "f4").tobytes())
    prog["u_camera_position"].value = tuple(float(v) for v in camera.position)
    prog["u_base_color"].value = (0.8, 0.55, 0.45, 1.0)
    samples = min(samples, ctx.max_samples) if samples > 1 else 0
    fbo = ctx.framebuffer(
        [ctx.renderbuffer(size, 4, samples=samples)], ctx.depth_renderbuffer(size, samples=samples)
    )
    resolved = ctx.framebuffer([ctx.renderbuffer(size, 4)]) if samples else fbo
    container = av.open(str(out), "w")
    video = container.add_stream("libx264", rate=FPS)
    video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
    video.options = {"crf": "20", "preset": "veryfast"}
    audio = container.add_stream("aac", rate=rate, layout="mono")
    silence = np.zeros((1, rate // FPS), np.int16)
    for k in range(frames):
        fbo.use()
        fbo.clear(0.2, 0.2, 0.25, 1.0, depth=1.0)
        ctx.enable(moderngl.DEPTH_TEST)
        for vao in vaos:
            vao.render()
        if samples:
            ctx.copy_framebuffer(resolved, fbo)
        data = resolved.read(components=3, alignment=1)
        rgb = np.frombuffer(data, np.uint8).reshape(size[1], size[0], 3)[::-1]
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = k
        for packet in video.encode(frame):
            container.mux(packet)
        sound = av.AudioFrame.from_ndarray(silence, format="s16", layout="mono")
        sound.sample_rate, sound.pts = rate, k * (rate // FPS)
        for packet in audio.encode(sound):
            container.mux(packet)
    for stream in (video, audio):
        for packet in stream.encode(None):
            container.mux(packet)
    container.close()
    ctx.release()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(sizes: list[tuple[int, int]], qualities: list[str], seconds: float) -> None:
    from engine.render.quality import QUALITIES

    with tempfile.TemporaryDirectory() as tmp:
        wav = speech_clip(Path(tmp) / "speech.wav", seconds)
        with wave.open(str(wav)) as w:
            rate = w.getframerate()
        frames = int(np.ceil(seconds * FPS))
        print(
            f"\noffline render (avatarkit render, ava, {seconds:g} s of speech at {FPS} fps) "
            f"vs floor (bare draw + readback + PyAV encode); load average "
            f"{os.getloadavg()[0]:.2f}"
        )
        print(
            f"{'size':>9} {'quality':>7} {'run':>7} {'procs':>5} | {'engine s':>8} {'CPU s':>6} "
            f"{'x real':>6} | {'floor s':>7} {'CPU s':>6} {'x real':>6} | {'time ratio':>10} "
            f"{'CPU ratio':>9}"
        )
        for size in sizes:
            for name in qualities:
                quality = QUALITIES[name]
                # The default (auto: a helper process on llvmpipe for this long an input)
                # and one process, side by side, then the floor.
                runs = [
                    ("call", *engine_render(wav, Path(tmp) / "engine.mp4", size, name, w))
                    for w in (None, 1)
                ]
                runs.append(("command", *command_render(wav, Path(tmp) / "cmd.mp4", size, name)))
                f_wall, f_cpu = floor_render(
                    Path(tmp) / "floor.mp4", size, quality.samples, frames, rate
                )
                for how, e_wall, e_cpu, procs in runs:
                    print(
                        f"{size[0]:>4}x{size[1]:<4} {name:>7} {how:>7} {procs:>5} | {e_wall:>8.2f} "
                        f"{e_cpu:>6.2f} {seconds / e_wall:>5.2f}x | {f_wall:>7.2f} {f_cpu:>6.2f} "
                        f"{seconds / f_wall:>5.2f}x | {e_wall / f_wall:>10.2f} "
                        f"{e_cpu / f_cpu:>9.2f}",
                        flush=True,
                    )
    print(f"load average after: {os.getloadavg()[0]:.2f} (2 cores shared)")
