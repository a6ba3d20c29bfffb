"""The frame's Python: main-thread CPU of an engine frame outside its GL draws, flushes and
waits, per scene kind. On a software rasteriser the rasteriser's threads share the two
cores with this work, and the part before a frame's first draw leaves the other core idle,
so it is what separates the engine from a bare draw once the vertex stage is lean
(BENCHMARKS.md, the skinned row). Thread CPU time, not wall time: far steadier than the
frame rows on a shared machine, so a change to the per-frame Python shows here first.

    .venv/bin/python benchmarks/render.py --python [--frames 300]

Rows: the RPM-sized skinned avatar speaking (new weights and pose every frame) and
standing still (nothing changes: what the caches leave), and one and four bundled avatars
speaking as in the live rows (quality medium, 720p).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import moderngl

import engine.app
import engine.backends.headless
import engine.render.renderer

WARMUP = 30


class GlClock:
    """Thread CPU spent inside the GL calls that draw, flush and wait (patched in)."""

    def __init__(self) -> None:
        self.spent = 0.0
        self._patched: list[tuple[object, str, Callable]] = []
        for owner, name in (
            (moderngl.VertexArray, "render"),
            (engine.app, "wait_for_gpu"),
            (engine.backends.headless, "wait_for_gpu"),
            (engine.render.renderer, "flush_gpu"),
        ):
            self._wrap(owner, name)

    def _wrap(self, owner: object, name: str) -> None:
        call = getattr(owner, name)
        self._patched.append((owner, name, call))

        def timed(*args, **kwargs):
            start = time.thread_time()
            try:
                return call(*args, **kwargs)
            finally:
                self.spent += time.thread_time() - start

        setattr(owner, name, timed)

    def restore(self) -> None:
        for owner, name, call in self._patched:
            setattr(owner, name, call)


def python_ms(frame: Callable[[int], None], frames: int) -> tuple[float, float, float]:
    """(median, 10th percentile) ms of the frame's Python, and the median main-thread CPU."""
    clock = GlClock()
    python, total = [], []
    try:
        for k in range(frames + WARMUP):
            clock.spent = 0.0
            start = time.thread_time()
            frame(k)
            spent = time.thread_time() - start
            if k >= WARMUP:
                python.append((spent - clock.spent) * 1000)
                total.append(spent * 1000)
    finally:
        clock.restore()
    return statistics.median(python), sorted(python)[len(python) // 10], statistics.median(total)


def main(frames: int) -> None:
    import tempfile
    from pathlib import Path

    from render_live import Live
    from render_skinned import SkinnedBench, rpm_sized

    from engine import load_gltf

    with tempfile.TemporaryDirectory() as tmp:
        asset = load_gltf(rpm_sized(Path(tmp) / "rpm.glb"))
    skinned = SkinnedBench(asset, 0)
    rows: list[tuple[str, Callable[[int], None], Callable[[], None]]] = [
        ("skinned avatar, speaking", skinned.frame, lambda: None),
        ("skinned avatar, still", lambda k: skinned.app.step(), skinned.close),
    ]
    header = f"{'scene':<28} {'median ms':>10} {'fast ms':>8} {'thread CPU ms':>14}"
    print(
        "\nthe frame's Python (main-thread CPU outside GL draws, flushes and waits), "
        f"{frames} frames each\n{header}"
    )
    for name, frame, close in rows:
        median, fast, total = python_ms(frame, frames)
        print(f"{name:<28} {median:>10.3f} {fast:>8.3f} {total:>14.3f}", flush=True)
        close()
    for count in (1, 4):
        live = Live(count, "medium")
        median, fast, total = python_ms(live.frame, frames)
        name = f"{count} bundled avatar{'s' * (count > 1)}, live"
        print(f"{name:<28} {median:>10.3f} {fast:>8.3f} {total:>14.3f}", flush=True)
        live.app.close()
