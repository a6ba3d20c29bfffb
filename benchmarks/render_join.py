"""Avatars joining a live scene: the kiosk's frame loop at 1280x720 (quality ``auto`` as a
window runs it, a real-time clock paced at 30 fps) with one bundled avatar speaking; the
other three join one by one, 3 s apart, and speak too. Per join: the longest frame in
the second after it beside the median frame of the second before, and how many frames
passed before the newcomer was drawn. What it guards: the render thread does not stall
on an upload's host side (a live App makes it on the ``asset-prep`` thread,
``engine.render.upload_data``); the full collection after a load (``engine.load_gc``)
is part of the join frame either way.

    .venv/bin/python benchmarks/render.py --join [--rounds 3]
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
from render_live import AVATARS, SIZE, SPACING, speech_weights

JOIN_EVERY = 90  # frames (3 s at 30 fps)


def run_once() -> list[tuple[float, float, int]]:
    """Per join: (longest frame after, median frame before, frames until drawn)."""
    from avatarkit.cli.common import open_avatar
    from engine import App, ModelRenderer
    from engine.clock import RealtimeClock

    app = App.headless(SIZE, quality="auto", clock=RealtimeClock(30.0), adaptive=True)
    avatars = [open_avatar(name) for name in AVATARS]
    weights = speech_weights(JOIN_EVERY * len(AVATARS) + 60)
    models: list = []

    def join(k: int) -> None:
        entity = app.scene.create_entity(AVATARS[k])
        entity.transform.translation[:] = ((k - 1.5) * SPACING, 0.0, 0.0)
        models.append(entity.add_component(ModelRenderer(avatars[k].asset)))

    join(0)
    head = np.array(avatars[0].framing.head_center)
    app.scene.camera.look_at(head + [0.0, 0.0, 1.6], head)
    times, joins, landed = [], [], {}
    for frame in range(JOIN_EVERY * (len(AVATARS) - 1) + 30):  # 30 frames after the last
        if frame and frame % JOIN_EVERY == 0:
            joins.append(frame)
            join(len(models))
        for k, model in enumerate(models):
            model.weights[: weights.shape[1]] = weights[frame]
            if k not in landed and model.uploaded:
                landed[k] = frame
        started = time.perf_counter()
        app.step()
        times.append(time.perf_counter() - started)
        time.sleep(max(0.0, 1 / 30 - times[-1]))  # paced as a window is
    app.close()
    return [
        (
            max(times[at : at + 30]) * 1000,
            statistics.median(times[at - 30 : at]) * 1000,
            landed.get(k + 1, -1) - at,
        )
        for k, at in enumerate(joins)
    ]


def main(rounds: int) -> None:
    print(
        f"\navatars joining a live scene, {SIZE[0]}x{SIZE[1]}, quality auto (live), paced "
        f"at 30 fps; load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'round':>5} {'avatars':>7} | {'longest ms':>10} {'median ms':>9} | drawn after")
    for r in range(rounds):
        for k, (longest, median, frames) in enumerate(run_once()):
            print(f"{r:>5} {k + 1}->{k + 2:<4} | {longest:>10.1f} {median:>9.1f} | {frames} frames")
    print(f"load average after: {os.getloadavg()[0]:.2f} (2 cores shared)")
